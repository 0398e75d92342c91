#include "base/utf8.h"

#include <fmt/format.h>

namespace dmsd {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD"; // U+FFFD

/// Length of the valid UTF-8 sequence at the start of \a text, 0 if invalid;
/// \a codePoint receives its value.
std::size_t sequenceLength(std::string_view text, char32_t& codePoint) {
    const auto byte = [&](std::size_t i) {
        return static_cast<unsigned char>(text[i]);
    };
    const unsigned char lead = byte(0);
    if (lead < 0x80) {
        codePoint = lead;
        return 1;
    }
    std::size_t length = 0;
    char32_t min = 0;
    if ((lead & 0xE0) == 0xC0) {
        length = 2;
        codePoint = lead & 0x1F;
        min = 0x80;
    } else if ((lead & 0xF0) == 0xE0) {
        length = 3;
        codePoint = lead & 0x0F;
        min = 0x800;
    } else if ((lead & 0xF8) == 0xF0) {
        length = 4;
        codePoint = lead & 0x07;
        min = 0x10000;
    } else {
        return 0;
    }
    if (text.size() < length) {
        return 0;
    }
    for (std::size_t i = 1; i < length; ++i) {
        if ((byte(i) & 0xC0) != 0x80) {
            return 0;
        }
        codePoint = (codePoint << 6) | (byte(i) & 0x3F);
    }
    if (codePoint < min || codePoint > 0x10FFFF || (codePoint >= 0xD800 && codePoint <= 0xDFFF)) {
        return 0;
    }
    return length;
}

bool isControl(char32_t c) {
    return c < 0x20 || c == 0x7F || (c >= 0x80 && c <= 0x9F);
}

/// Copies \a text, replacing invalid bytes and, if \a controls, control
/// characters other than LF and TAB.
std::string repaired(std::string_view text, bool controls) {
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        char32_t c = 0;
        const std::size_t length = sequenceLength(text, c);
        if (length == 0) {
            out += kReplacement;
            text.remove_prefix(1);
            continue;
        }
        if (controls && isControl(c) && c != '\n' && c != '\t') {
            out += kReplacement;
        } else {
            out.append(text.substr(0, length));
        }
        text.remove_prefix(length);
    }
    return out;
}

} // namespace

std::optional<std::string> utf8Problem(std::string_view text, std::string_view allowedControls,
                                       std::size_t& offset) {
    for (offset = 0; offset < text.size();) {
        char32_t c = 0;
        const std::size_t length = sequenceLength(text.substr(offset), c);
        if (length == 0) {
            return fmt::format("byte 0x{:02X} is not valid UTF-8",
                               static_cast<unsigned char>(text[offset]));
        }
        if (isControl(c) &&
            (c > 0x7F || allowedControls.find(static_cast<char>(c)) == std::string_view::npos)) {
            return fmt::format("control character U+{:04X} is not allowed",
                               static_cast<unsigned>(c));
        }
        offset += length;
    }
    return std::nullopt;
}

bool isValidUtf8(std::string_view text) {
    while (!text.empty()) {
        char32_t c = 0;
        const std::size_t length = sequenceLength(text, c);
        if (length == 0) {
            return false;
        }
        text.remove_prefix(length);
    }
    return true;
}

std::string validUtf8(std::string_view text) {
    return isValidUtf8(text) ? std::string(text) : repaired(text, false);
}

std::string safeText(std::string_view text) {
    return repaired(text, true);
}

} // namespace dmsd
