#include "base/base64.h"

#include <array>

namespace dmsd {

void appendBase64(std::string& out, const unsigned char* data, std::size_t size) {
    static constexpr std::array<char, 64> alphabet = {
        'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', 'P',
        'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'a', 'b', 'c', 'd', 'e', 'f',
        'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p', 'q', 'r', 's', 't', 'u', 'v',
        'w', 'x', 'y', 'z', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '+', '/'};
    const std::size_t start = out.size();
    // resize once and write through a raw pointer: this is the hot loop of the
    // request path (a 640x480 JPEG is ~40 kB, four per request).
    out.resize(start + base64EncodedSize(size));
    char* dst = out.data() + start;
    std::size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8) | data[i + 2];
        *dst++ = alphabet[(v >> 18) & 63];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
        *dst++ = alphabet[v & 63];
    }
    const std::size_t rest = size - i;
    if (rest == 1) {
        const unsigned v = unsigned{data[i]} << 16;
        *dst++ = alphabet[(v >> 18) & 63];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = '=';
        *dst++ = '=';
    } else if (rest == 2) {
        const unsigned v = (unsigned{data[i]} << 16) | (unsigned{data[i + 1]} << 8);
        *dst++ = alphabet[(v >> 18) & 63];
        *dst++ = alphabet[(v >> 12) & 63];
        *dst++ = alphabet[(v >> 6) & 63];
        *dst++ = '=';
    }
}

std::string base64(const unsigned char* data, std::size_t size) {
    std::string out;
    appendBase64(out, data, size);
    return out;
}

} // namespace dmsd
