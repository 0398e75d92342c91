#include "config/reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "base/can_id.h"
#include "base/redact.h"
#include "base/text.h"
#include "base/utf8.h"

namespace dmsd::config {

Section::Section(std::vector<RawError>& errors, const Node* node, std::string path, Location where,
                 bool crossChecks)
    : errors_(errors), node_(node), path_(std::move(path)), where_(where),
      crossChecks_(crossChecks), failed_(std::make_shared<std::set<std::string>>()) {
}

std::string Section::path(std::string_view key) const {
    return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
}

std::string Section::joined(const std::vector<std::string>& names) {
    return fmt::format("{}", fmt::join(names, ", "));
}

const Node* Section::take(std::string_view key) {
    known_.emplace_back(key);
    if (!isMap()) {
        return nullptr;
    }
    const Entry* entry = node_->find(key);
    return entry ? &entry->value : nullptr;
}

std::optional<Location> Section::setAt(std::string_view key) const {
    const Node* node = node_;
    while (true) {
        if (node == nullptr || node->kind != Node::Kind::Map) {
            return std::nullopt;
        }
        const std::size_t dot = key.find('.');
        const Entry* entry = node->find(key.substr(0, dot));
        if (entry == nullptr) {
            return std::nullopt;
        }
        if (dot == std::string_view::npos) {
            return entry->value.loc;
        }
        node = &entry->value;
        key.remove_prefix(dot + 1);
    }
}

Section Section::nested(std::string_view key) {
    const Node* node = take(key);
    Section child(errors_, node, path(key), node ? node->loc : where_, crossChecks_);
    child.failed_ = failed_;
    return child;
}

void Section::finish() {
    if (node_ == nullptr || node_->kind == Node::Kind::Null) {
        return;
    }
    if (!isMap()) {
        fail(node_->loc, path_,
             fmt::format("expected a map of settings, got {}", describeNode(*node_)),
             joined(known_));
        return;
    }
    for (const Entry& entry : node_->entries) {
        if (std::find(known_.begin(), known_.end(), entry.key) != known_.end()) {
            continue;
        }
        if (std::size_t offset = 0; auto problem = utf8Problem(entry.key, {}, offset)) {
            fail(entry.keyLoc, path(entry.key), "unknown key: " + *problem, joined(known_));
            continue;
        }
        std::string message = "unknown key";
        if (auto near = nearMiss(entry.key, known_)) {
            message += fmt::format("; did you mean '{}'?", *near);
        }
        fail(entry.keyLoc, path(entry.key), message, joined(known_));
    }
}

void Section::fail(const Location& loc, std::string_view keyPath, std::string message,
                   std::string_view accepted) {
    if (!accepted.empty()) {
        message += fmt::format(" (accepted: {})", accepted);
    }
    // Messages quote the values and keys they are about: whatever bytes those
    // hold, what is reported is text, and holds no secret.
    errors_.push_back({loc, safeText(keyPath), redactSecrets(safeText(message))});
}

void Section::failValue(std::string_view key, const Node& node, std::string message,
                        std::string_view accepted) {
    failed_->insert(path(key));
    fail(node.loc, path(key), std::move(message), accepted);
}

bool Section::scalar(std::string_view key, std::string_view accepted, const Node*& node) {
    node = take(key);
    if (node == nullptr) {
        return true;
    }
    if (node->kind == Node::Kind::Scalar) {
        // Every value is UTF-8 text without control characters (line breaks and
        // tabs aside, which only free text accepts: see text()): it may reach
        // the journal and D-Bus, which require valid UTF-8.
        std::size_t offset = 0;
        if (auto problem = utf8Problem(node->text, "\t\n", offset)) {
            failValue(key, *node, fmt::format("{} (byte {} of the value)", *problem, offset + 1),
                      accepted);
            node = nullptr;
            return false;
        }
        return true;
    }
    const std::string message =
        node->kind == Node::Kind::Null
            ? std::string("missing value")
            : fmt::format("expected a single value, got {}", describeNode(*node));
    failValue(key, *node, message, accepted);
    node = nullptr;
    return false;
}

bool Section::parseInteger(std::string_view key, const Node& node, const std::string& accepted,
                           long long& value) {
    std::string_view text = node.text;
    if (text.starts_with('+')) {
        text.remove_prefix(1);
    }
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || end != text.data() + text.size() ||
        (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
        failValue(key, node, fmt::format("expected a whole number, got \"{}\"", node.text),
                  accepted);
        return false;
    }
    if (ec == std::errc::result_out_of_range) {
        failValue(key, node, fmt::format("{} is out of range", node.text), accepted);
        return false;
    }
    return true;
}

void Section::number(std::string_view key, double& out, double min, double max) {
    const std::string accepted = fmt::format("{}..{}", min, max);
    const Node* node = nullptr;
    if (!scalar(key, accepted, node) || node == nullptr) {
        return;
    }
    std::string_view text = node->text;
    if (text.starts_with('+')) {
        text.remove_prefix(1);
    }
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
        !std::isfinite(value)) {
        failValue(key, *node, fmt::format("expected a number, got \"{}\"", node->text), accepted);
        return;
    }
    if (value < min || value > max) {
        failValue(key, *node, fmt::format("{} is out of range", node->text), accepted);
        return;
    }
    out = value;
}

void Section::boolean(std::string_view key, bool& out) {
    const std::string_view accepted = "true, false";
    const Node* node = nullptr;
    if (!scalar(key, accepted, node) || node == nullptr) {
        return;
    }
    std::string text = node->text;
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (text == "true" || text == "yes" || text == "on") {
        out = true;
    } else if (text == "false" || text == "no" || text == "off") {
        out = false;
    } else {
        failValue(key, *node, fmt::format("expected true or false, got \"{}\"", node->text),
                  accepted);
    }
}

std::optional<std::string> Section::textProblem(const std::string& text, TextCheck check,
                                                bool allowEmpty) {
    if (!allowEmpty && text.empty()) {
        return "empty value";
    }
    // Only free text (allowEmpty: the prompts) may span lines; a name, path or
    // address with a line break or tab would forge lines in the journal.
    if (!allowEmpty && text.find_first_of("\t\n") != std::string::npos) {
        return "must be one line without tabs";
    }
    if (check != nullptr) {
        return check(text);
    }
    return std::nullopt;
}

void Section::text(std::string_view key, std::string& out, std::string_view accepted,
                   TextCheck check, bool allowEmpty) {
    const Node* node = nullptr;
    if (!scalar(key, accepted, node) || node == nullptr) {
        return;
    }
    if (auto problem = textProblem(node->text, check, allowEmpty)) {
        failValue(key, *node, *problem, accepted);
        return;
    }
    out = node->text;
}

void Section::textList(std::string_view key, std::string& first, std::vector<std::string>& more,
                       std::string_view accepted, TextCheck check) {
    const std::string listAccepted = fmt::format("{}, or a list of distinct ones", accepted);
    const Node* node = take(key);
    if (node == nullptr) {
        return;
    }
    if (node->kind != Node::Kind::Sequence) {
        // One value: what the key always took, checked as text() checks it.
        known_.pop_back(); // scalar() takes the key again
        std::string value = first;
        const std::size_t errorsBefore = errors_.size();
        text(key, value, node->kind == Node::Kind::Scalar ? accepted : listAccepted, check);
        if (errors_.size() == errorsBefore) {
            first = std::move(value);
            more.clear();
        }
        return;
    }
    if (node->items.empty()) {
        failValue(key, *node, "empty list", listAccepted);
        return;
    }
    std::vector<std::string> values;
    bool ok = true;
    for (std::size_t i = 0; i < node->items.size(); ++i) {
        const Node& item = node->items[i];
        const std::string itemKey = fmt::format("{}[{}]", key, i);
        std::optional<std::string> problem;
        if (item.kind != Node::Kind::Scalar) {
            problem = fmt::format("expected a single value, got {}", describeNode(item));
        } else if (std::size_t offset = 0; auto bad = utf8Problem(item.text, "\t\n", offset)) {
            problem = fmt::format("{} (byte {} of the value)", *bad, offset + 1);
        } else if (auto wrong = textProblem(item.text, check, false)) {
            problem = std::move(wrong);
        } else if (std::find(values.begin(), values.end(), item.text) != values.end()) {
            problem = fmt::format("\"{}\" is listed twice", item.text);
        }
        if (problem) {
            failed_->insert(path(key));
            fail(item.loc, path(itemKey), *problem, accepted);
            ok = false;
            continue;
        }
        values.push_back(item.text);
    }
    if (ok) {
        first = values.front();
        more.assign(values.begin() + 1, values.end());
    }
}

void Section::duration(std::string_view key, Millis& out, Millis min, Millis max) {
    const std::string range = fmt::format("{}..{}", formatDuration(min), formatDuration(max));
    const Node* node = nullptr;
    if (!scalar(key, fmt::format("{}; {}", range, kDurationSyntax), node) || node == nullptr) {
        return;
    }
    const auto value = parseDuration(node->text);
    if (!value) {
        failValue(key, *node, fmt::format("invalid duration \"{}\"", node->text), kDurationSyntax);
        return;
    }
    if (*value < min || *value > max) {
        failValue(key, *node, fmt::format("{} is out of range", node->text), range);
        return;
    }
    out = *value;
}

void Section::canId(std::string_view key, std::uint32_t& out) {
    const std::string accepted =
        fmt::format("0..{}, as hex like 0x6D0 or decimal", formatCanId(kMaxCanId));
    const Node* node = nullptr;
    if (!scalar(key, accepted, node) || node == nullptr) {
        return;
    }
    const auto value = parseCanId(node->text);
    if (!value) {
        failValue(key, *node, fmt::format("expected a CAN id, got \"{}\"", node->text), accepted);
        return;
    }
    if (*value > kMaxCanId) {
        failValue(key, *node, fmt::format("{} does not fit in an 11-bit CAN id", node->text),
                  accepted);
        return;
    }
    out = *value;
}

void Section::optionalInteger(std::string_view key, std::optional<int>& out, int min, int max) {
    const Node* node = take(key);
    if (node != nullptr && node->kind == Node::Kind::Null) {
        out.reset(); // an explicit null unsets a value an earlier file gave
        return;
    }
    if (node == nullptr) {
        return;
    }
    int value = 0;
    const std::size_t errorsBefore = errors_.size();
    integer(key, value, min, max);
    if (errors_.size() == errorsBefore) {
        out = value;
    }
}

void Section::failChoice(std::string_view key, const Node& node,
                         const std::vector<std::string>& names) {
    std::string message = fmt::format("unknown value \"{}\"", node.text);
    if (auto near = nearMiss(node.text, names)) {
        message += fmt::format("; did you mean '{}'?", *near);
    }
    failValue(key, node, message, joined(names));
}

void Section::crossCheck(std::initializer_list<std::string_view> keys, const CrossCheck& check,
                         std::string_view accepted) {
    if (!crossChecks_) {
        return;
    }
    for (std::string_view key : keys) {
        if (failed_->contains(path(key))) {
            return;
        }
    }
    const std::optional<std::string> problem = check();
    if (!problem) {
        return;
    }
    // The message points at the value the last file changed.
    std::optional<std::pair<std::string, Location>> culprit;
    for (std::string_view key : keys) {
        if (const auto loc = setAt(key); loc && (!culprit || culprit->second < *loc)) {
            culprit.emplace(path(key), *loc);
        }
    }
    if (culprit) {
        fail(culprit->second, culprit->first, *problem, accepted);
        return;
    }
    // No file set any of the keys: the built-in defaults themselves do not
    // hold here (the default vision model is not installed, for instance).
    // Reported at the section, naming the first key, rather than passed over.
    fail(where_, path(*keys.begin()), *problem, accepted);
}

std::string Section::describeNode(const Node& node) {
    switch (node.kind) {
    case Node::Kind::Null:
        return "nothing";
    case Node::Kind::Scalar:
        return fmt::format("\"{}\"", node.text);
    case Node::Kind::Sequence:
        return "a list";
    case Node::Kind::Map:
        return "a map";
    }
    return "?";
}

} // namespace dmsd::config
