#pragma once

/// \file
/// The one JSON writer of everything dmsd emits: `analyze` lines, GetStatus,
/// D-Bus alert details, journal evidence, snapshot sidecars, the effective
/// configuration, `dmsd sample` lines. Boost.JSON holds and escapes the
/// values; numbers are written the way people write them: `0.9` and `4.0`,
/// never Boost's `9E-1` and `4E0`; a non-finite double is `null`.

#include <string>
#include <string_view>

#include <boost/json/value.hpp>

namespace dmsd {

/// \a value as one line of compact JSON.
std::string writeJson(const boost::json::value& value);

/// Appends \a value as compact JSON to \a out.
void appendJson(std::string& out, const boost::json::value& value);

/// \a value indented for people: objects one member a line (two spaces a
/// level), arrays and empty objects on one line. Ends without a newline.
std::string writeJsonPretty(const boost::json::value& value);

/// Appends a JSON number for \a value: the shortest text that reads back as
/// the same double, with ".0" on whole numbers; `null` when not finite.
void appendJsonNumber(std::string& out, double value);

/// Appends \a text as a quoted, escaped JSON string.
void appendJsonString(std::string& out, std::string_view text);

} // namespace dmsd
