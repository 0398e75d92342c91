#pragma once

/// \file
/// Reads one section of the YAML tree into a settings struct through the
/// struct's own `describe()` (base/keys.h): each value is checked against its
/// type, range and rule, every problem is collected with the file, line,
/// column and key path it concerns, and unknown keys are reported with a
/// "did you mean". Internal to config/.

#include <charconv>
#include <initializer_list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/duration.h"
#include "base/keys.h"
#include "config/yaml_tree.h"

namespace dmsd::config {

class Section {
public:
    /// \a crossChecks false reads a single file on its own: its values against
    /// the defaults would give misleading combinations.
    Section(std::vector<RawError>& errors, const Node* node, std::string path, Location where,
            bool crossChecks);

    /// "capture.width" for \a key "width" of section "capture".
    std::string path(std::string_view key) const;

    /// Registers \a key as known and returns its value node, if present.
    const Node* take(std::string_view key);

    /// Where the value of \a key (dotted: reaching into sub-sections) was set, if it was.
    std::optional<Location> setAt(std::string_view key) const;

    /// Finds the scalar value of \a key: false when the value is not a scalar
    /// (reported); true with \a node nullptr when the key is absent.
    bool scalar(std::string_view key, std::string_view accepted, const Node*& node);

    void fail(const Location& loc, std::string_view keyPath, std::string message,
              std::string_view accepted = {});

    /// Reports unknown keys (with a near miss) and a section that is not a map.
    void finish();

    // The Keys protocol (base/keys.h). A value that is wrong is reported and
    // leaves the default in place; an absent key leaves the default too.

    template <class T>
    void integer(std::string_view key, T& out, T min, T max, ValueCheck<T> check = nullptr) {
        const std::string range = fmt::format("{}..{}", min, max);
        const Node* node = nullptr;
        if (!scalar(key, range, node) || node == nullptr) {
            return;
        }
        long long value = 0;
        if (!parseInteger(key, *node, range, value)) {
            return;
        }
        // Every integer setting's range fits in long long.
        if (value < static_cast<long long>(min) || value > static_cast<long long>(max)) {
            failValue(key, *node, fmt::format("{} is out of range", node->text), range);
            return;
        }
        const T typed = static_cast<T>(value);
        if (check != nullptr) {
            if (auto problem = check(typed)) {
                failValue(key, *node, problem->message,
                          problem->accepted.empty()
                              ? range
                              : fmt::format("{} in {}", problem->accepted, range));
                return;
            }
        }
        out = typed;
    }

    void number(std::string_view key, double& out, double min, double max);
    void boolean(std::string_view key, bool& out);
    void text(std::string_view key, std::string& out, std::string_view accepted,
              TextCheck check = nullptr, bool allowEmpty = false);
    /// One value, or a YAML list of distinct values (each checked like text();
    /// messages name the item, `key[1]`): \a first is the only or first
    /// value, \a more the rest (empty for one value).
    void textList(std::string_view key, std::string& first, std::vector<std::string>& more,
                  std::string_view accepted, TextCheck check);
    void duration(std::string_view key, Millis& out, Millis min, Millis max);
    void canId(std::string_view key, std::uint32_t& out);
    void optionalInteger(std::string_view key, std::optional<int>& out, int min, int max);

    template <class E>
    void choice(std::string_view key, E& out, ChoiceNames<E> choices) {
        std::vector<std::string> names;
        for (const auto& choice : choices) {
            names.emplace_back(choice.first);
        }
        const Node* node = nullptr;
        if (!scalar(key, joined(names), node) || node == nullptr) {
            return;
        }
        for (const auto& [name, value] : choices) {
            if (node->text == name) {
                out = value;
                return;
            }
        }
        failChoice(key, *node, names);
    }

    template <class Sub>
    void section(std::string_view key, Sub& sub) {
        Section child = nested(key);
        Sub::describe(sub, child);
        child.finish();
    }

    void crossCheck(std::initializer_list<std::string_view> keys, const CrossCheck& check,
                    std::string_view accepted);

    static std::string joined(const std::vector<std::string>& names);

private:
    bool isMap() const { return node_ != nullptr && node_->kind == Node::Kind::Map; }
    Section nested(std::string_view key);
    bool parseInteger(std::string_view key, const Node& node, const std::string& accepted,
                      long long& value);
    /// Reports a wrong value of \a key and remembers the key as failed.
    void failValue(std::string_view key, const Node& node, std::string message,
                   std::string_view accepted);
    /// The problem of one text value (empty, several lines, \a check), if any.
    static std::optional<std::string> textProblem(const std::string& text, TextCheck check,
                                                  bool allowEmpty);
    void failChoice(std::string_view key, const Node& node, const std::vector<std::string>& names);
    static std::string describeNode(const Node& node);

    std::vector<RawError>& errors_;
    const Node* node_;
    std::string path_;
    Location where_;
    bool crossChecks_;
    std::vector<std::string> known_;
    /// Key paths whose value was wrong in this read (shared by the sections of one read).
    std::shared_ptr<std::set<std::string>> failed_;
};

} // namespace dmsd::config
