#include "test/support/log_line.h"

#include <cctype>

namespace dmsd::test {

namespace {

bool isNameChar(char c) {
    return std::isupper(static_cast<unsigned char>(c)) != 0 ||
           std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '_';
}

/// Reads " NAME=value" pairs from \a rest to its end; false if it does not parse.
bool readFields(std::string_view rest, LogLine& out) {
    while (!rest.empty()) {
        if (rest.front() != ' ') {
            return false;
        }
        rest.remove_prefix(1);
        const std::size_t equals = rest.find('=');
        if (equals == 0 || equals == std::string_view::npos ||
            std::isupper(static_cast<unsigned char>(rest.front())) == 0) {
            return false;
        }
        const std::string name(rest.substr(0, equals));
        for (char c : name) {
            if (!isNameChar(c)) {
                return false;
            }
        }
        rest.remove_prefix(equals + 1);
        std::string value;
        if (!rest.empty() && rest.front() == '"') {
            std::size_t i = 1;
            bool closed = false;
            for (; i < rest.size(); ++i) {
                const char c = rest[i];
                if (c == '\\' && i + 1 < rest.size()) {
                    const char next = rest[++i];
                    value += next == 'n' ? '\n' : next == 't' ? '\t' : next;
                } else if (c == '"') {
                    closed = true;
                    break;
                } else {
                    value += c;
                }
            }
            if (!closed) {
                return false;
            }
            rest.remove_prefix(i + 1);
        } else {
            const std::size_t space = rest.find(' ');
            value = std::string(rest.substr(0, space));
            rest.remove_prefix(space == std::string_view::npos ? rest.size() : space);
        }
        if (out.fields.contains(name)) {
            return false;
        }
        out.fields[name] = value;
        out.order.push_back(name);
    }
    return true;
}

} // namespace

std::optional<std::string> LogLine::field(const std::string& name) const {
    const auto it = fields.find(name);
    if (it == fields.end()) {
        return std::nullopt;
    }
    return it->second;
}

bool LogLine::warningOrWorse() const {
    return label == "critical" || label == "error" || label == "warning";
}

std::optional<LogLine> parseLogLine(std::string_view line) {
    LogLine out;
    for (std::string_view label : {"critical", "error", "warning", "debug"}) {
        if (line.starts_with(label) && line.substr(label.size()).starts_with(": ")) {
            out.label = std::string(label);
            line.remove_prefix(label.size() + 2);
            break;
        }
    }
    // The fields start at the first " NAME=" from which the rest reads back
    // as fields; a message may itself hold '=' or capitals.
    for (std::size_t at = line.find(' '); at != std::string_view::npos;
         at = line.find(' ', at + 1)) {
        LogLine candidate = out;
        if (readFields(line.substr(at), candidate)) {
            candidate.message = std::string(line.substr(0, at));
            return candidate;
        }
    }
    out.message = std::string(line);
    return out;
}

std::vector<LogLine> parseLogLines(std::string_view text) {
    std::vector<LogLine> out;
    while (!text.empty()) {
        const std::size_t newline = text.find('\n');
        const std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (line.empty()) {
            continue;
        }
        if (auto parsed = parseLogLine(line)) {
            out.push_back(std::move(*parsed));
        }
    }
    return out;
}

} // namespace dmsd::test
