#include "base/can_id.h"

#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace dmsd {

std::optional<std::uint32_t> parseCanId(std::string_view text) {
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    if (text.empty() || text.size() > 10) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc{} || end != text.data() + text.size() ||
        value > std::numeric_limits<std::uint32_t>::max()) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(value);
}

std::string formatCanId(std::uint32_t id) {
    return fmt::format("0x{:03X}", id);
}

} // namespace dmsd
