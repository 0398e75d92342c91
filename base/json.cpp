#include "base/json.h"

#include <array>
#include <charconv>
#include <cmath>
#include <iterator>

#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include "base/utf8.h"

namespace dmsd {

namespace json = boost::json;

void appendJsonNumber(std::string& out, double value) {
    if (!std::isfinite(value)) {
        out += "null";
        return;
    }
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        fmt::format_to(std::back_inserter(out), "{:.1f}", value);
        return;
    }
    // Shortest text that reads back as the same double, in fixed notation:
    // fmt's "{}" would write 1e-05 for 0.00001.
    std::array<char, 400> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                      std::chars_format::fixed);
    out.append(buffer.data(), result.ptr);
}

void appendJsonString(std::string& out, std::string_view text) {
    // Boost.JSON does the escaping; only numbers are formatted here. It copies
    // bytes that are not UTF-8 as they are: whatever came in (a model's answer,
    // a file name), what dmsd writes is valid JSON text.
    if (!isValidUtf8(text)) {
        const std::string valid = validUtf8(text);
        out += json::serialize(json::string_view(valid.data(), valid.size()));
        return;
    }
    out += json::serialize(json::string_view(text.data(), text.size()));
}

void appendJson(std::string& out, const json::value& value) {
    switch (value.kind()) {
    case json::kind::null:
        out += "null";
        break;
    case json::kind::bool_:
        out += value.get_bool() ? "true" : "false";
        break;
    case json::kind::int64:
        fmt::format_to(std::back_inserter(out), "{}", value.get_int64());
        break;
    case json::kind::uint64:
        fmt::format_to(std::back_inserter(out), "{}", value.get_uint64());
        break;
    case json::kind::double_:
        appendJsonNumber(out, value.get_double());
        break;
    case json::kind::string:
        appendJsonString(out, value.get_string());
        break;
    case json::kind::array: {
        out += '[';
        bool first = true;
        for (const json::value& element : value.get_array()) {
            if (!first) {
                out += ',';
            }
            first = false;
            appendJson(out, element);
        }
        out += ']';
        break;
    }
    case json::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& member : value.get_object()) {
            if (!first) {
                out += ',';
            }
            first = false;
            appendJsonString(out, member.key());
            out += ':';
            appendJson(out, member.value());
        }
        out += '}';
        break;
    }
    }
}

std::string writeJson(const json::value& value) {
    std::string out;
    appendJson(out, value);
    return out;
}

namespace {

void appendPretty(std::string& out, const json::value& value, std::size_t indent) {
    if (!value.is_object() || value.get_object().empty()) {
        appendJson(out, value);
        return;
    }
    out += "{\n";
    const json::object& object = value.get_object();
    std::size_t i = 0;
    for (const auto& member : object) {
        out.append(indent + 2, ' ');
        appendJsonString(out, member.key());
        out += ": ";
        appendPretty(out, member.value(), indent + 2);
        out += ++i < object.size() ? ",\n" : "\n";
    }
    out.append(indent, ' ');
    out += '}';
}

} // namespace

std::string writeJsonPretty(const json::value& value) {
    std::string out;
    appendPretty(out, value, 0);
    return out;
}

} // namespace dmsd
