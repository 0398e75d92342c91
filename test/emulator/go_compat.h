#pragma once

/// \file
/// Small pieces of Go behaviour the emulator reproduces byte for byte, because
/// Ollama is a Go program: encoding/json output (HTML escaping, float format),
/// encoding/base64 StdEncoding errors, time.ParseDuration, RFC3339Nano times
/// and the texts of the JSON decoder's syntax errors.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace dmsd::emulator {

/// Compact JSON like Go's json.Marshal. With \a htmlEscape (Go's default, used
/// for every response body) '<', '>' and '&' become \u003c, \u003e, \u0026 and
/// U+2028/U+2029 are escaped too. Floats use Go's shortest 'f'/'e' format.
std::string goMarshal(const boost::json::value& value, bool htmlEscape = true);

/// Result of decoding standard base64 like Go's base64.StdEncoding.
struct Base64Result {
    bool ok = false;
    std::size_t errorByte = 0; ///< offset Go reports: "illegal base64 data at input byte N"
};

/// Decodes \a in (standard alphabet, padding required, '\r' and '\n' ignored) into \a out.
Base64Result decodeBase64Std(std::string_view in, std::string& out);

/// Go's time.ParseDuration ("5m", "1h30m", "-1m", "300ms"); nullopt and \a error
/// set to Go's message (e.g. `time: missing unit in duration "-1"`) when invalid.
std::optional<std::chrono::nanoseconds> parseGoDuration(std::string_view text, std::string& error);

/// time.Now().UTC().Format(time.RFC3339Nano): trailing zeros of the fraction trimmed.
std::string rfc3339Nano(std::chrono::system_clock::time_point when);

/// The text Go's encoding/json gives for a syntax error in \a body, e.g.
/// "invalid character 'x' looking for beginning of value" or
/// "unexpected end of JSON input"; empty when \a body parses.
std::string goJsonSyntaxError(std::string_view body);

/// Go's name of a JSON value's kind in unmarshal errors: "string", "number", "array", ...
std::string_view goJsonKind(const boost::json::value& value);

} // namespace dmsd::emulator
