#pragma once

/// \file
/// Value syntaxes of the configuration (durations, CAN ids, URLs, capture
/// sources, D-Bus buses) and the small text tools the loader needs ("did you
/// mean", hashing). Pure functions, no I/O; each check returns the problem as
/// a message, or nothing when the value is fine.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/settings.h"

namespace dmsd::config {

/// Accepted duration forms, for messages.
inline constexpr std::string_view kDurationSyntax =
    "seconds as a number, or a number with unit ms, s, m or h: 500ms, 2s, 1.5s, 5m";

/// A duration: a number of seconds (`2`, `0.5`) or a number with a unit
/// (`500ms`, `2s`, `1.5s`, `5m`, `1h`). Not negative, a whole number of
/// milliseconds, at most 30 days. nullopt for anything else.
std::optional<Millis> parseDuration(std::string_view text);

/// Shortest exact spelling: "500ms", "2s", "1500ms", "5m", "1h", "0s".
std::string formatDuration(Millis duration);

/// Largest classic (11-bit) CAN identifier.
inline constexpr std::uint32_t kMaxCanId = 0x7FF;

/// A non-negative integer in hex (`0x6D0`, `0X6d0`) or decimal (`1744`); any
/// magnitude up to 2^32-1 (the range check is the caller's). nullopt otherwise.
std::optional<std::uint32_t> parseCanId(std::string_view text);

/// "0x6D0".
std::string formatCanId(std::uint32_t id);

/// Problem with a model-server URL, which must be `http(s)://HOST[:PORT]` with
/// at most a trailing "/" as path, no user info, query or fragment.
std::optional<std::string> urlProblem(std::string_view url);

/// Problem with a capture source `SCHEME:REST` (v4l2, file, test, pipeline).
std::optional<std::string> sourceProblem(std::string_view source);

/// Problem with a D-Bus bus setting: "system", "session" or a D-Bus address
/// (`transport:key=value,...[;...]`).
std::optional<std::string> busProblem(std::string_view bus);

/// Problem with a network interface name (1..15 characters, no '/', no blanks).
std::optional<std::string> interfaceProblem(std::string_view name);

/// Optimal-string-alignment distance (a transposition counts 1), case-insensitive.
std::size_t editDistance(std::string_view a, std::string_view b);

/// The candidate nearest to \a word when it is a plausible typo of it.
std::optional<std::string> nearMiss(std::string_view word,
                                    const std::vector<std::string>& candidates);

/// SHA-256 of \a data as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);

} // namespace dmsd::config
