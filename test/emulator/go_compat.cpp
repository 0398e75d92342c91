#include "test/emulator/go_compat.h"

#include <array>
#include <charconv>
#include <cmath>
#include <ctime>
#include <system_error>

#include <boost/json.hpp>

namespace dmsd::emulator {
namespace json = boost::json;

namespace {

constexpr char kHex[] = "0123456789abcdef";

void appendUnicodeEscape(std::string& out, unsigned code) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) {
        out += kHex[(code >> shift) & 0xF];
    }
}

/// Length of the valid UTF-8 sequence at \a s[i], or 0 when invalid (Go then writes U+FFFD).
std::size_t utf8SequenceLength(std::string_view s, std::size_t i, unsigned& codePoint) {
    auto byte = [&](std::size_t k) {
        return static_cast<unsigned char>(s[k]);
    };
    unsigned c = byte(i);
    std::size_t len = 0;
    unsigned min = 0;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        codePoint = c & 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        codePoint = c & 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        codePoint = c & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > s.size()) {
        return 0;
    }
    for (std::size_t k = 1; k < len; ++k) {
        unsigned cc = byte(i + k);
        if ((cc & 0xC0) != 0x80) {
            return 0;
        }
        codePoint = (codePoint << 6) | (cc & 0x3F);
    }
    if (codePoint < min || codePoint > 0x10FFFF || (codePoint >= 0xD800 && codePoint <= 0xDFFF)) {
        return 0;
    }
    return len;
}

void appendGoString(std::string& out, std::string_view s, bool htmlEscape) {
    out += '"';
    std::size_t i = 0;
    while (i < s.size()) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            default:
                if (c < 0x20 || (htmlEscape && (c == '<' || c == '>' || c == '&'))) {
                    appendUnicodeEscape(out, c);
                } else {
                    out += static_cast<char>(c);
                }
            }
            ++i;
            continue;
        }
        unsigned codePoint = 0;
        std::size_t len = utf8SequenceLength(s, i, codePoint);
        if (len == 0) {
            out += "\\ufffd";
            ++i;
            continue;
        }
        if (codePoint == 0x2028 || codePoint == 0x2029) {
            appendUnicodeEscape(out, codePoint);
        } else {
            out.append(s.substr(i, len));
        }
        i += len;
    }
    out += '"';
}

void appendGoFloat(std::string& out, double d) {
    std::array<char, 64> buf{};
    double magnitude = std::fabs(d);
    bool exponent = magnitude != 0 && (magnitude < 1e-6 || magnitude >= 1e21);
    auto [end, ec] =
        std::to_chars(buf.data(), buf.data() + buf.size(), d,
                      exponent ? std::chars_format::scientific : std::chars_format::fixed);
    std::string text(buf.data(), ec == std::errc() ? end : buf.data());
    if (exponent) {
        // Go writes e-7 where C++ writes e-07.
        std::size_t n = text.size();
        if (n >= 4 && text[n - 4] == 'e' && text[n - 3] == '-' && text[n - 2] == '0') {
            text.erase(n - 2, 1);
        }
    }
    out += text;
}

void appendGo(std::string& out, const json::value& v, bool htmlEscape) {
    switch (v.kind()) {
    case json::kind::null:
        out += "null";
        break;
    case json::kind::bool_:
        out += v.get_bool() ? "true" : "false";
        break;
    case json::kind::int64:
        out += std::to_string(v.get_int64());
        break;
    case json::kind::uint64:
        out += std::to_string(v.get_uint64());
        break;
    case json::kind::double_:
        appendGoFloat(out, v.get_double());
        break;
    case json::kind::string:
        appendGoString(out, v.get_string(), htmlEscape);
        break;
    case json::kind::array: {
        out += '[';
        bool first = true;
        for (const auto& e : v.get_array()) {
            if (!first) {
                out += ',';
            }
            first = false;
            appendGo(out, e, htmlEscape);
        }
        out += ']';
        break;
    }
    case json::kind::object: {
        out += '{';
        bool first = true;
        for (const auto& kv : v.get_object()) {
            if (!first) {
                out += ',';
            }
            first = false;
            appendGoString(out, kv.key(), htmlEscape);
            out += ':';
            appendGo(out, kv.value(), htmlEscape);
        }
        out += '}';
        break;
    }
    }
}

int base64Value(char c) {
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

std::string goQuoteChar(char c) {
    if (c == '\'') {
        return "'\\''";
    }
    if (c == '"') {
        return "'\"'";
    }
    switch (c) {
    case '\n':
        return "'\\n'";
    case '\r':
        return "'\\r'";
    case '\t':
        return "'\\t'";
    default:
        break;
    }
    unsigned char u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) {
        std::string s = "'\\x";
        s += kHex[u >> 4];
        s += kHex[u & 0xF];
        return s + "'";
    }
    return std::string("'") + c + "'";
}

/// A validator following Go's encoding/json scanner, for its error texts. The
/// request decoder (gin's ShouldBindJSON) is a json.Decoder, so truncation reads
/// "unexpected EOF" and bytes after the first value are not looked at.
class GoSyntaxChecker {
public:
    explicit GoSyntaxChecker(std::string_view s) : s_(s) {}

    std::string check() {
        value(0);
        return error_;
    }

private:
    bool eof() const { return i_ >= s_.size(); }

    bool fail(std::string_view context) {
        if (error_.empty()) {
            if (eof()) {
                error_ = "unexpected EOF";
            } else {
                error_ = "invalid character " + goQuoteChar(s_[i_]) + " " + std::string(context);
            }
        }
        return false;
    }

    void skipSpace() {
        while (!eof() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) {
            ++i_;
        }
    }

    bool value(int depth) {
        if (depth > 10000) {
            error_ = "exceeded max depth";
            return false;
        }
        skipSpace();
        if (eof()) {
            return fail("");
        }
        char c = s_[i_];
        switch (c) {
        case '{':
            return object(depth + 1);
        case '[':
            return array(depth + 1);
        case '"':
            return string();
        case 't':
            return literal("true");
        case 'f':
            return literal("false");
        case 'n':
            return literal("null");
        default:
            if (c == '-' || (c >= '0' && c <= '9')) {
                return number();
            }
            return fail("looking for beginning of value");
        }
    }

    bool object(int depth) {
        ++i_;
        skipSpace();
        if (!eof() && s_[i_] == '}') {
            ++i_;
            return true;
        }
        for (;;) {
            skipSpace();
            if (eof() || s_[i_] != '"') {
                return fail("looking for beginning of object key string");
            }
            if (!string()) {
                return false;
            }
            skipSpace();
            if (eof() || s_[i_] != ':') {
                return fail("after object key");
            }
            ++i_;
            if (!value(depth)) {
                return false;
            }
            skipSpace();
            if (eof()) {
                return fail("");
            }
            if (s_[i_] == ',') {
                ++i_;
                continue;
            }
            if (s_[i_] == '}') {
                ++i_;
                return true;
            }
            return fail("after object key:value pair");
        }
    }

    bool array(int depth) {
        ++i_;
        skipSpace();
        if (!eof() && s_[i_] == ']') {
            ++i_;
            return true;
        }
        for (;;) {
            if (!value(depth)) {
                return false;
            }
            skipSpace();
            if (eof()) {
                return fail("");
            }
            if (s_[i_] == ',') {
                ++i_;
                continue;
            }
            if (s_[i_] == ']') {
                ++i_;
                return true;
            }
            return fail("after array element");
        }
    }

    bool string() {
        ++i_;
        for (;;) {
            if (eof()) {
                return fail("");
            }
            char c = s_[i_];
            if (c == '"') {
                ++i_;
                return true;
            }
            if (c == '\\') {
                ++i_;
                if (eof()) {
                    return fail("");
                }
                char e = s_[i_];
                if (e == 'u') {
                    ++i_;
                    for (int k = 0; k < 4; ++k) {
                        if (eof()) {
                            return fail("");
                        }
                        if (!std::isxdigit(static_cast<unsigned char>(s_[i_]))) {
                            return fail("in \\u hexadecimal character escape");
                        }
                        ++i_;
                    }
                    continue;
                }
                if (std::string_view("\"\\/bfnrt").find(e) == std::string_view::npos) {
                    return fail("in string escape code");
                }
                ++i_;
                continue;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return fail("in string literal");
            }
            ++i_;
        }
    }

    bool literal(std::string_view word) {
        ++i_;
        for (std::size_t k = 1; k < word.size(); ++k) {
            if (eof()) {
                return fail("");
            }
            if (s_[i_] != word[k]) {
                return fail("in literal " + std::string(word) + " (expecting " +
                            goQuoteChar(word[k]) + ")");
            }
            ++i_;
        }
        return true;
    }

    bool digits() {
        bool any = false;
        while (!eof() && s_[i_] >= '0' && s_[i_] <= '9') {
            ++i_;
            any = true;
        }
        return any;
    }

    bool number() {
        if (s_[i_] == '-') {
            ++i_;
            if (eof() || !(s_[i_] >= '0' && s_[i_] <= '9')) {
                return fail("in numeric literal");
            }
        }
        if (s_[i_] == '0') {
            ++i_;
        } else {
            digits();
        }
        if (!eof() && s_[i_] == '.') {
            ++i_;
            if (!digits()) {
                return fail("after decimal point in numeric literal");
            }
        }
        if (!eof() && (s_[i_] == 'e' || s_[i_] == 'E')) {
            ++i_;
            if (!eof() && (s_[i_] == '+' || s_[i_] == '-')) {
                ++i_;
            }
            if (!digits()) {
                return fail("in exponent of numeric literal");
            }
        }
        return true;
    }

    std::string_view s_;
    std::size_t i_ = 0;
    std::string error_;
};

} // namespace

std::string goMarshal(const json::value& value, bool htmlEscape) {
    std::string out;
    appendGo(out, value, htmlEscape);
    return out;
}

Base64Result decodeBase64Std(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size() / 4 * 3);
    const std::size_t n = in.size();
    std::size_t si = 0;
    auto skipNewlines = [&] {
        while (si < n && (in[si] == '\r' || in[si] == '\n')) {
            ++si;
        }
    };
    for (;;) {
        std::array<int, 4> quantum{};
        std::size_t j = 0;
        while (j < 4) {
            if (si == n) {
                if (j == 0) {
                    return {true, 0};
                }
                return {false, si - j};
            }
            char c = in[si++];
            if (c == '\r' || c == '\n') {
                continue;
            }
            int v = base64Value(c);
            if (v >= 0) {
                quantum[j++] = v;
                continue;
            }
            if (c != '=' || j < 2) {
                return {false, si - 1};
            }
            // Padding: "xx==" or "xxx=", then nothing but newlines.
            skipNewlines();
            if (j == 2) {
                if (si == n) {
                    return {false, n};
                }
                if (in[si] != '=') {
                    return {false, si - 1};
                }
                ++si;
                skipNewlines();
            }
            if (si < n) {
                return {false, si};
            }
            out += static_cast<char>((quantum[0] << 2) | (quantum[1] >> 4));
            if (j == 3) {
                out += static_cast<char>(((quantum[1] & 0xF) << 4) | (quantum[2] >> 2));
            }
            return {true, 0};
        }
        out += static_cast<char>((quantum[0] << 2) | (quantum[1] >> 4));
        out += static_cast<char>(((quantum[1] & 0xF) << 4) | (quantum[2] >> 2));
        out += static_cast<char>(((quantum[2] & 0x3) << 6) | quantum[3]);
    }
}

std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view text, std::string& error) {
// GCC 12 at -O3 reports a bogus -Wrestrict inside libstdc++ for
// "literal" + std::string (GCC bug 105329, also 105651); clang has no
// -Wrestrict.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
    const std::string quoted = "\"" + std::string(text) + "\"";
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    std::string_view s = text;
    bool negative = false;
    if (!s.empty() && (s[0] == '-' || s[0] == '+')) {
        negative = s[0] == '-';
        s.remove_prefix(1);
    }
    if (s == "0") {
        return std::chrono::nanoseconds(0);
    }
    if (s.empty()) {
        error = "time: invalid duration " + quoted;
        return std::nullopt;
    }
    long double total = 0;
    while (!s.empty()) {
        std::size_t k = 0;
        long double value = 0;
        bool anyDigits = false;
        while (k < s.size() && s[k] >= '0' && s[k] <= '9') {
            value = value * 10 + (s[k] - '0');
            ++k;
            anyDigits = true;
        }
        if (k < s.size() && s[k] == '.') {
            ++k;
            long double scale = 0.1L;
            while (k < s.size() && s[k] >= '0' && s[k] <= '9') {
                value += (s[k] - '0') * scale;
                scale /= 10;
                ++k;
                anyDigits = true;
            }
        }
        if (!anyDigits) {
            error = "time: invalid duration " + quoted;
            return std::nullopt;
        }
        std::size_t u = k;
        while (u < s.size() && s[u] != '.' && !(s[u] >= '0' && s[u] <= '9')) {
            ++u;
        }
        std::string_view unit = s.substr(k, u - k);
        if (unit.empty()) {
            error = "time: missing unit in duration " + quoted;
            return std::nullopt;
        }
        long double ns = 0;
        if (unit == "ns") {
            ns = 1;
        } else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") {
            ns = 1e3L;
        } else if (unit == "ms") {
            ns = 1e6L;
        } else if (unit == "s") {
            ns = 1e9L;
        } else if (unit == "m") {
            ns = 60e9L;
        } else if (unit == "h") {
            ns = 3600e9L;
        } else {
            error = "time: unknown unit \"" + std::string(unit) + "\" in duration " + quoted;
            return std::nullopt;
        }
        total += value * ns;
        s.remove_prefix(u);
    }
    if (total > 9.2e18L) {
        error = "time: invalid duration " + quoted;
        return std::nullopt;
    }
    auto ns = static_cast<std::int64_t>(total);
    return std::chrono::nanoseconds(negative ? -ns : ns);
}

std::string rfc3339Nano(std::chrono::system_clock::time_point when) {
    using namespace std::chrono;
    auto sinceEpoch = when.time_since_epoch();
    auto secs = floor<seconds>(sinceEpoch);
    auto nanos = duration_cast<nanoseconds>(sinceEpoch - secs).count();
    std::time_t t = static_cast<std::time_t>(secs.count());
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    std::array<char, 64> buf{};
    std::size_t len = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%S", &tm);
    std::string out(buf.data(), len);
    if (nanos != 0) {
        std::array<char, 16> frac{};
        std::snprintf(frac.data(), frac.size(), ".%09lld", static_cast<long long>(nanos));
        std::string f(frac.data());
        while (f.back() == '0') {
            f.pop_back();
        }
        out += f;
    }
    out += 'Z';
    return out;
}

std::string goJsonSyntaxError(std::string_view body) {
    return GoSyntaxChecker(body).check();
}

std::string_view goJsonKind(const json::value& value) {
    switch (value.kind()) {
    case json::kind::null:
        return "null";
    case json::kind::bool_:
        return "bool";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
        return "number";
    case json::kind::string:
        return "string";
    case json::kind::array:
        return "array";
    case json::kind::object:
        return "object";
    }
    return "value";
}

} // namespace dmsd::emulator
