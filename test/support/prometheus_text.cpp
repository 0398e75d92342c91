#include "test/support/prometheus_text.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

namespace dmsd::test {

namespace {

bool validName(std::string_view name, bool metric) {
    if (name.empty()) {
        return false;
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        const bool letter =
            std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || (metric && c == ':');
        if (!letter && (i == 0 || std::isdigit(static_cast<unsigned char>(c)) == 0)) {
            return false;
        }
    }
    return true;
}

std::optional<double> parseValue(std::string_view text) {
    if (text == "+Inf" || text == "Inf") {
        return INFINITY;
    }
    if (text == "-Inf") {
        return -INFINITY;
    }
    if (text == "NaN") {
        return NAN;
    }
    double value = 0;
    const auto result = std::from_chars(text.data(), text.data() + text.size(), value);
    if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

/// The family a sample belongs to: its name, or without a histogram suffix.
std::string familyOf(const std::string& name, const std::map<std::string, std::string>& types) {
    for (std::string_view suffix : {"_bucket", "_sum", "_count"}) {
        if (name.ends_with(suffix)) {
            const std::string base = name.substr(0, name.size() - suffix.size());
            const auto it = types.find(base);
            if (it != types.end() && it->second == "histogram") {
                return base;
            }
        }
    }
    return name;
}

} // namespace

std::optional<double> PromText::value(const std::string& name,
                                      const std::map<std::string, std::string>& labels) const {
    for (const PromSample& sample : samples) {
        if (sample.name == name && sample.labels == labels) {
            return sample.value;
        }
    }
    return std::nullopt;
}

PromText parsePromText(std::string_view text) {
    PromText out;
    std::set<std::string> helped;
    std::set<std::string> seen;     // name + labels
    std::set<std::string> finished; // families whose samples ended
    std::string current;            // family of the latest line
    std::size_t lineNo = 0;
    auto fail = [&](const std::string& what) {
        out.errors.push_back("line " + std::to_string(lineNo) + ": " + what);
    };
    auto enter = [&](const std::string& family) {
        if (family != current) {
            if (finished.contains(family)) {
                fail("samples of " + family + " are not together");
            }
            if (!current.empty()) {
                finished.insert(current);
            }
            current = family;
        }
    };
    while (!text.empty()) {
        ++lineNo;
        const std::size_t newline = text.find('\n');
        if (newline == std::string_view::npos) {
            fail("the last line has no newline");
        }
        const std::string line(text.substr(0, newline));
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        if (line.empty()) {
            continue;
        }
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) {
            const std::string rest = line.substr(7);
            const std::size_t space = rest.find(' ');
            const std::string name = rest.substr(0, space);
            const std::string arg = space == std::string::npos ? "" : rest.substr(space + 1);
            if (!validName(name, true)) {
                fail("bad metric name " + name);
            }
            enter(name);
            if (line[2] == 'H') {
                if (!helped.insert(name).second) {
                    fail("second HELP for " + name);
                }
                if (arg.empty()) {
                    fail("empty HELP for " + name);
                }
            } else {
                if (out.types.contains(name)) {
                    fail("second TYPE for " + name);
                }
                if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" &&
                    arg != "untyped") {
                    fail("unknown type " + arg);
                }
                if (arg == "counter" && !name.ends_with("_total")) {
                    fail("counter " + name + " does not end in _total");
                }
                out.types[name] = arg;
            }
            continue;
        }
        if (line.starts_with("#")) {
            continue;
        }
        PromSample sample;
        std::size_t i = 0;
        while (i < line.size() && line[i] != '{' && line[i] != ' ') {
            ++i;
        }
        sample.name = line.substr(0, i);
        if (!validName(sample.name, true)) {
            fail("bad metric name " + sample.name);
        }
        if (i < line.size() && line[i] == '{') {
            ++i;
            while (i < line.size() && line[i] != '}') {
                const std::size_t equals = line.find('=', i);
                if (equals == std::string::npos || equals + 1 >= line.size() ||
                    line[equals + 1] != '"') {
                    fail("bad label in " + line);
                    break;
                }
                const std::string label = line.substr(i, equals - i);
                if (!validName(label, false) || label.starts_with("__")) {
                    fail("bad label name " + label);
                }
                std::string value;
                std::size_t j = equals + 2;
                for (; j < line.size() && line[j] != '"'; ++j) {
                    if (line[j] == '\\' && j + 1 < line.size()) {
                        const char next = line[++j];
                        if (next != '\\' && next != '"' && next != 'n') {
                            fail("bad escape in " + line);
                        }
                        value += next == 'n' ? '\n' : next;
                    } else {
                        value += line[j];
                    }
                }
                if (j >= line.size()) {
                    fail("unterminated label value in " + line);
                    break;
                }
                if (sample.labels.contains(label)) {
                    fail("duplicate label " + label);
                }
                sample.labels[label] = value;
                i = j + 1;
                if (i < line.size() && line[i] == ',') {
                    ++i;
                }
            }
            ++i; // '}'
        }
        if (i >= line.size() || line[i] != ' ') {
            fail("no value in " + line);
            continue;
        }
        const std::string valueText = line.substr(i + 1);
        const auto value = parseValue(valueText.substr(0, valueText.find(' ')));
        if (!value) {
            fail("bad value in " + line);
            continue;
        }
        sample.value = *value;
        const std::string family = familyOf(sample.name, out.types);
        if (!out.types.contains(family)) {
            fail("sample " + sample.name + " before its TYPE");
        }
        enter(family);
        std::string key = sample.name;
        for (const auto& [k, v] : sample.labels) {
            key += "\x1f" + k + "=" + v;
        }
        if (!seen.insert(key).second) {
            fail("duplicate sample " + line);
        }
        out.samples.push_back(std::move(sample));
    }
    // Histograms: increasing bounds, non-decreasing counts, +Inf == _count, _sum.
    for (const auto& [family, type] : out.types) {
        if (type != "histogram") {
            continue;
        }
        double lastBound = -INFINITY;
        double lastCount = 0;
        std::optional<double> inf;
        for (const PromSample& sample : out.samples) {
            if (sample.name != family + "_bucket") {
                continue;
            }
            const auto le = sample.labels.find("le");
            if (le == sample.labels.end()) {
                out.errors.push_back(family + ": bucket without le");
                continue;
            }
            const auto bound = parseValue(le->second);
            if (!bound || *bound <= lastBound) {
                out.errors.push_back(family + ": le " + le->second + " not increasing");
            }
            if (sample.value < lastCount) {
                out.errors.push_back(family + ": bucket counts decrease at le " + le->second);
            }
            lastBound = bound.value_or(lastBound);
            lastCount = sample.value;
            if (bound && std::isinf(*bound)) {
                inf = sample.value;
            }
        }
        const auto count = out.value(family + "_count");
        if (!inf || !count || *inf != *count) {
            out.errors.push_back(family + ": no +Inf bucket equal to _count");
        }
        if (!out.value(family + "_sum")) {
            out.errors.push_back(family + ": no _sum");
        }
    }
    return out;
}

std::string promtoolPath() {
    for (const char* candidate : {"/usr/bin/promtool", "/usr/local/bin/promtool"}) {
        if (std::filesystem::exists(candidate)) {
            return candidate;
        }
    }
    return {};
}

} // namespace dmsd::test
