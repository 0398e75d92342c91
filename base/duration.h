#pragma once

/// \file
/// Durations as configuration files and messages spell them: a number of
/// seconds (`2`, `0.5`) or a number with a unit (`500ms`, `2s`, `1.5s`, `5m`,
/// `1h`), exact to the millisecond.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace dmsd {

using Millis = std::chrono::milliseconds;

/// Accepted duration forms, for messages.
inline constexpr std::string_view kDurationSyntax =
    "seconds as a number, or a number with unit ms, s, m or h: 500ms, 2s, 1.5s, 5m";

/// Not negative, a whole number of milliseconds, at most 30 days; nullopt for
/// anything else.
std::optional<Millis> parseDuration(std::string_view text);

/// Shortest exact spelling: "500ms", "2s", "1500ms", "5m", "1h", "0s".
std::string formatDuration(Millis duration);

} // namespace dmsd
