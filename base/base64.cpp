#include "base/base64.h"

#include <glib.h>

namespace dmsd {

void appendBase64(std::string& out, const unsigned char* data, std::size_t size) {
    const std::size_t start = out.size();
    // GLib writes at most (size / 3 + 1) * 4 + 4 bytes (its documented bound);
    // the string is sized once and trimmed to what was written.
    out.resize(start + (size / 3 + 1) * 4 + 4);
    char* dst = out.data() + start;
    gint state = 0;
    gint save = 0;
    std::size_t written = g_base64_encode_step(data, size, FALSE, dst, &state, &save);
    written += g_base64_encode_close(FALSE, dst + written, &state, &save);
    out.resize(start + written);
}

std::string base64(const unsigned char* data, std::size_t size) {
    std::string out;
    appendBase64(out, data, size);
    return out;
}

} // namespace dmsd
