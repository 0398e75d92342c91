#pragma once

/// \file
/// The YAML of one configuration file as a tree that remembers where each
/// value came from (file, line, column), and the merge of such trees (maps
/// merge key by key; scalars and lists replace). Internal to config/: the
/// reader and the loader build on it.

#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace dmsd::config {

/// Files larger than this are refused: a configuration is a few kB.
inline constexpr std::size_t kMaxFileBytes = 1 << 20;

struct Location {
    int file = -1; ///< index into the loader's names; -1: not tied to a file
    int line = 0;  ///< 1-based; 0: whole file
    int column = 0;

    friend bool operator<(const Location& a, const Location& b) {
        return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
    }
};

struct Entry;

struct Node {
    enum class Kind { Null, Scalar, Sequence, Map };
    Kind kind = Kind::Null;
    std::string text; ///< Scalar
    Location loc;
    std::vector<Node> items;    ///< Sequence
    std::vector<Entry> entries; ///< Map, in file order

    const Entry* find(std::string_view key) const;
};

struct Entry {
    std::string key;
    Location keyLoc;
    Node value;
};

/// A problem found while reading, before file names are attached.
struct RawError {
    Location loc;
    std::string keyPath;
    std::string message;
};

/// Parses \a text, file number \a file, into \a root. Returns false when the
/// file holds no tree (empty, comments only, or an error, appended to \a errors).
/// Bounds nesting, the number of values (alias bombs) and the file size.
bool parseYaml(int file, std::string_view text, Node& root, std::vector<RawError>& errors);

/// Merges \a from into \a into: maps key by key, everything else replaces. An
/// empty section ("capture:" with nothing below) in a later file leaves the
/// earlier one alone.
void merge(Node& into, Node&& from);

} // namespace dmsd::config
