#include "config/yaml_tree.h"

#include <optional>
#include <sstream>
#include <unordered_map>

#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

namespace dmsd::config {

const Entry* Node::find(std::string_view key) const {
    for (const Entry& entry : entries) {
        if (entry.key == key) {
            return &entry;
        }
    }
    return nullptr;
}

namespace {

// Bounds that keep hostile or broken input cheap: a configuration needs a
// handful of levels and a few hundred nodes; aliases could otherwise expand
// a small file into an exponential tree.
constexpr int kMaxDepth = 32;
constexpr int kMaxNodesPerFile = 20000;

Location locationOf(const YAML::Mark& mark, int file, const Location& fallback) {
    if (mark.is_null() || mark.line < 0) {
        return fallback;
    }
    return {file, mark.line + 1, mark.column + 1};
}

Location locationOf(const YAML::Node& node, int file, const Location& fallback) {
    return locationOf(node.Mark(), file, fallback);
}

// ---------------------------------------------------------------------------
// Counting documents without YAML::LoadAll.
//
// yaml-cpp 0.7 (Debian bookworm) can stop on a token it never consumes, such
// as a stray ',' at the top level: each further document it reports is then an
// empty one at the same place, and YAML::LoadAll appends them until memory
// runs out (fixed upstream in 0.8 by jbeder/yaml-cpp#1319; found here by the
// configuration fuzzer). The event parser is therefore asked for at most three
// documents, and a document that starts where the previous one did is a
// parser that made no progress: a syntax error at that place.

class FirstMark final : public YAML::EventHandler {
public:
    std::optional<YAML::Mark> mark;

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  const std::string&) override {
        note(m);
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        note(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
        note(m);
    }
    void OnMapEnd() override {}

private:
    void note(const YAML::Mark& m) {
        if (!mark) {
            mark = m;
        }
    }
};

struct DocumentCount {
    enum class Kind { Empty, One, Several, Stuck } kind = Kind::Empty;
    YAML::Mark at; ///< Several: where the second document starts; Stuck: the culprit
};

/// Throws YAML::ParserException for syntax errors, as YAML::Load does.
DocumentCount countDocuments(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    FirstMark first;
    if (!parser.HandleNextDocument(first)) {
        return {};
    }
    FirstMark second;
    if (!parser.HandleNextDocument(second)) {
        return {DocumentCount::Kind::One, {}};
    }
    const auto samePlace = [](const FirstMark& a, const FirstMark& b) {
        return a.mark && b.mark && a.mark->pos == b.mark->pos;
    };
    if (samePlace(first, second)) {
        return {DocumentCount::Kind::Stuck, *first.mark};
    }
    FirstMark third;
    if (parser.HandleNextDocument(third) && samePlace(second, third)) {
        return {DocumentCount::Kind::Stuck, *second.mark};
    }
    return {DocumentCount::Kind::Several, second.mark.value_or(YAML::Mark::null_mark())};
}

std::string unexpectedAt(const std::string& text, const YAML::Mark& mark) {
    if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text.size()) {
        const unsigned char c =
            static_cast<unsigned char>(text[static_cast<std::size_t>(mark.pos)]);
        if (c >= 0x21 && c < 0x7f) {
            return fmt::format("YAML syntax error: unexpected '{}'", static_cast<char>(c));
        }
        return fmt::format("YAML syntax error: unexpected byte 0x{:02x}", c);
    }
    return "YAML syntax error: unexpected token";
}

class TreeBuilder {
public:
    TreeBuilder(int file, std::vector<RawError>& errors) : file_(file), errors_(errors) {}

    Node build(const YAML::Node& node, const Location& fallback, int depth) {
        Node out;
        out.loc = locationOf(node, file_, fallback);
        if (++nodes_ > kMaxNodesPerFile) {
            if (!tooMany_) {
                tooMany_ = true;
                errors_.push_back({out.loc, "",
                                   fmt::format("more than {} values (are aliases expanding?); a "
                                               "configuration file needs far fewer",
                                               kMaxNodesPerFile)});
            }
            return out;
        }
        if (depth > kMaxDepth) {
            errors_.push_back(
                {out.loc, "", fmt::format("nested deeper than {} levels", kMaxDepth)});
            return out;
        }
        switch (node.Type()) {
        case YAML::NodeType::Scalar:
            out.kind = Node::Kind::Scalar;
            out.text = node.Scalar();
            break;
        case YAML::NodeType::Sequence:
            out.kind = Node::Kind::Sequence;
            for (const YAML::Node& item : node) {
                out.items.push_back(build(item, out.loc, depth + 1));
            }
            break;
        case YAML::NodeType::Map: {
            out.kind = Node::Kind::Map;
            std::unordered_map<std::string, Location> keys;
            for (const auto& pair : node) {
                const Location keyLoc = locationOf(pair.first, file_, out.loc);
                if (!pair.first.IsScalar()) {
                    errors_.push_back(
                        {keyLoc, "", "a key must be a plain name, not a list or map"});
                    continue;
                }
                // A value-less key ("capture:") reports the key's position, which is
                // where a technician looks; yaml-cpp gives the next line.
                Node value = pair.second.IsNull() ? Node{} : build(pair.second, keyLoc, depth + 1);
                if (pair.second.IsNull()) {
                    value.loc = keyLoc;
                    ++nodes_;
                }
                const std::string key = pair.first.Scalar();
                // An index, not a scan: a hostile file may hold thousands of keys.
                const auto [seen, fresh] = keys.try_emplace(key, keyLoc);
                if (!fresh) {
                    errors_.push_back({keyLoc, key,
                                       fmt::format("duplicate key; it is already set at line {}, "
                                                   "column {} of this file",
                                                   seen->second.line, seen->second.column)});
                    continue;
                }
                out.entries.push_back({key, keyLoc, std::move(value)});
            }
            break;
        }
        default:
            break;
        }
        return out;
    }

private:
    int file_;
    std::vector<RawError>& errors_;
    int nodes_ = 0;
    bool tooMany_ = false;
};

} // namespace

bool parseYaml(int file, std::string_view text, Node& root, std::vector<RawError>& errors) {
    if (text.size() > kMaxFileBytes) {
        errors.push_back(
            {{file, 0, 0},
             "",
             fmt::format("larger than {} KiB; is this the right file?", kMaxFileBytes / 1024)});
        return false;
    }
    const std::string source(text);
    YAML::Node document;
    try {
        const DocumentCount count = countDocuments(source);
        switch (count.kind) {
        case DocumentCount::Kind::Empty:
            return false; // an empty file (or one of comments) changes nothing
        case DocumentCount::Kind::Stuck:
            errors.push_back({{file, count.at.line + 1, count.at.column + 1},
                              "",
                              unexpectedAt(source, count.at)});
            return false;
        case DocumentCount::Kind::Several:
            errors.push_back({locationOf(count.at, file, {file, 0, 0}), "",
                              "more than one YAML document ('---'); put each in its own file"});
            return false;
        case DocumentCount::Kind::One:
            break;
        }
        document = YAML::Load(source);
    } catch (const YAML::ParserException& e) {
        errors.push_back({{file, e.mark.line + 1, e.mark.column + 1},
                          "",
                          fmt::format("YAML syntax error: {}", e.msg)});
        return false;
    } catch (const std::exception& e) {
        errors.push_back({{file, 0, 0}, "", fmt::format("cannot parse YAML: {}", e.what())});
        return false;
    }
    if (document.IsNull()) {
        return false;
    }
    try {
        TreeBuilder builder(file, errors);
        root = builder.build(document, {file, 1, 1}, 0);
    } catch (const std::exception& e) {
        errors.push_back({{file, 0, 0}, "", fmt::format("cannot read YAML: {}", e.what())});
        return false;
    }
    return true;
}

void merge(Node& into, Node&& from) {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < into.entries.size(); ++i) {
        index.emplace(into.entries[i].key, i);
    }
    for (Entry& entry : from.entries) {
        const auto found = index.find(entry.key);
        Entry* existing = found == index.end() ? nullptr : &into.entries[found->second];
        if (!existing) {
            index.emplace(entry.key, into.entries.size());
            into.entries.push_back(std::move(entry));
        } else if (existing->value.kind == Node::Kind::Map && entry.value.kind == Node::Kind::Map) {
            merge(existing->value, std::move(entry.value));
        } else if (existing->value.kind == Node::Kind::Map &&
                   entry.value.kind == Node::Kind::Null) {
            // keep the earlier section
        } else {
            existing->keyLoc = entry.keyLoc;
            existing->value = std::move(entry.value);
        }
    }
}

} // namespace dmsd::config
