#include "llm/analyses/answer_reader.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "base/json.h"

namespace dmsd {

namespace json = boost::json;

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return s;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

} // namespace

std::string normaliseAnswerWord(std::string_view s) {
    s = trim(s);
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == ' ' || c == '-') {
            out += '_';
        } else {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

const json::value* findAnswerKey(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end()) {
        return &it->value();
    }
    for (const auto& kv : o) {
        if (iequals(kv.key(), key) || normaliseAnswerWord(kv.key()) == key) {
            return &kv.value();
        }
    }
    return nullptr;
}

AnalysisError FieldReader::error() const {
    return AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                         fmt::format("{}: {}", analysis_, error_)};
}

void FieldReader::fail(std::string message) {
    if (error_.empty()) {
        error_ = std::move(message);
    }
}

const json::value* FieldReader::get(std::string_view key, bool required) {
    const json::value* v = findAnswerKey(o_, key);
    if (v == nullptr || v->is_null()) {
        if (required) {
            fail(fmt::format("missing field '{}'", key));
        }
        return nullptr;
    }
    return v;
}

void FieldReader::boolean(std::string_view key, bool required, bool& out) {
    const json::value* v = get(key, required);
    if (v == nullptr) {
        return;
    }
    if (v->is_bool()) {
        out = v->get_bool();
        return;
    }
    if (v->is_string()) {
        const std::string s = normaliseAnswerWord(v->get_string());
        if (s == "true" || s == "yes") {
            out = true;
            return;
        }
        if (s == "false" || s == "no") {
            out = false;
            return;
        }
    }
    fail(fmt::format("field '{}' is not a boolean: {}", key, writeJson(*v)));
}

std::optional<double> FieldReader::number(std::string_view key, bool required) {
    const json::value* v = get(key, required);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (v->is_number()) {
        boost::system::error_code ec;
        const double d = v->to_number<double>(ec);
        if (!ec && std::isfinite(d)) {
            return d;
        }
    }
    if (v->is_string()) {
        // "0.8" is harmless; "high" is not a number.
        const std::string_view s = trim(v->get_string());
        double d = 0;
        auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
        if (ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(d)) {
            return d;
        }
    }
    fail(fmt::format("field '{}' is not a number: {}", key, writeJson(*v)));
    return std::nullopt;
}

void FieldReader::confidence(std::string_view key, double& out) {
    auto d = number(key, false);
    if (!d) {
        return;
    }
    if (*d >= 0.0 && *d <= 1.0) {
        out = *d;
    } else if (*d > 1.0 && *d <= 100.0) {
        out = *d / 100.0; // a percentage
    } else {
        fail(fmt::format("field '{}' out of range 0..1: {}", key, *d));
    }
}

void FieldReader::integer(std::string_view key, bool required, int lo, int hi, int& out) {
    const json::value* v = get(key, required);
    if (v == nullptr) {
        return;
    }
    auto d = number(key, required);
    if (!d) {
        return;
    }
    if (std::floor(*d) != *d) {
        fail(fmt::format("field '{}' is not an integer: {}", key, *d));
        return;
    }
    if (*d < lo || *d > hi) {
        fail(fmt::format("field '{}' out of range {}..{}: {}", key, lo, hi, *d));
        return;
    }
    out = static_cast<int>(*d);
}

std::optional<std::string> FieldReader::text(std::string_view key, bool required) {
    const json::value* v = get(key, required);
    if (v == nullptr) {
        return std::nullopt;
    }
    if (!v->is_string()) {
        fail(fmt::format("field '{}' is not a string: {}", key, writeJson(*v)));
        return std::nullopt;
    }
    return std::string(v->get_string());
}

} // namespace dmsd
