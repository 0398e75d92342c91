#include "base/duration.h"

#include <cstdint>

#include <fmt/format.h>

namespace dmsd {
namespace {

bool isDigit(char c) {
    return c >= '0' && c <= '9';
}

} // namespace

std::optional<Millis> parseDuration(std::string_view text) {
    // Integer arithmetic throughout: "0.1s" must be exactly 100 ms, not 99.
    std::size_t pos = 0;
    std::uint64_t whole = 0;
    std::size_t wholeDigits = 0;
    while (pos < text.size() && isDigit(text[pos])) {
        if (++wholeDigits > 12) {
            return std::nullopt;
        }
        whole = whole * 10 + static_cast<std::uint64_t>(text[pos] - '0');
        ++pos;
    }
    std::uint64_t fraction = 0;
    std::uint64_t scale = 1;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t fractionDigits = 0;
        while (pos < text.size() && isDigit(text[pos])) {
            if (++fractionDigits > 9) {
                return std::nullopt;
            }
            fraction = fraction * 10 + static_cast<std::uint64_t>(text[pos] - '0');
            scale *= 10;
            ++pos;
        }
        if (fractionDigits == 0) {
            return std::nullopt;
        }
    }
    if (wholeDigits == 0) {
        return std::nullopt;
    }
    const std::string_view unit = text.substr(pos);
    std::uint64_t unitMs = 0;
    if (unit.empty() || unit == "s") {
        unitMs = 1000;
    } else if (unit == "ms") {
        unitMs = 1;
    } else if (unit == "m") {
        unitMs = 60'000;
    } else if (unit == "h") {
        unitMs = 3'600'000;
    } else {
        return std::nullopt;
    }
    using Wide = unsigned __int128;
    const Wide scaled = (static_cast<Wide>(whole) * scale + fraction) * unitMs;
    if (scaled % scale != 0) {
        return std::nullopt; // finer than a millisecond
    }
    const Wide ms = scaled / scale;
    constexpr std::uint64_t kMaxMs = 30ull * 24 * 3'600'000;
    if (ms > kMaxMs) {
        return std::nullopt;
    }
    return Millis{static_cast<std::int64_t>(ms)};
}

std::string formatDuration(Millis duration) {
    const auto ms = duration.count();
    if (ms == 0) {
        return "0s";
    }
    if (ms % 3'600'000 == 0) {
        return fmt::format("{}h", ms / 3'600'000);
    }
    if (ms % 60'000 == 0) {
        return fmt::format("{}m", ms / 60'000);
    }
    if (ms % 1000 == 0) {
        return fmt::format("{}s", ms / 1000);
    }
    return fmt::format("{}ms", ms);
}

} // namespace dmsd
