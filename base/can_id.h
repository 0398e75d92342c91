#pragma once

/// \file
/// CAN identifiers as configuration files and messages spell them: hex
/// (`0x6D0`) or decimal, classic 11-bit ids.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace dmsd {

/// Largest classic (11-bit) CAN identifier.
inline constexpr std::uint32_t kMaxCanId = 0x7FF;

/// A non-negative integer in hex (`0x6D0`, `0X6d0`) or decimal (`1744`); any
/// magnitude up to 2^32-1 (the range check is the caller's). nullopt otherwise.
std::optional<std::uint32_t> parseCanId(std::string_view text);

/// "0x6D0".
std::string formatCanId(std::uint32_t id);

} // namespace dmsd
