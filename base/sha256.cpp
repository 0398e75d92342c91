#include "base/sha256.h"

#include <memory>

#include <glib.h>

namespace dmsd {

std::string sha256Hex(std::string_view data) {
    const std::unique_ptr<gchar, decltype(&g_free)> hex(
        g_compute_checksum_for_data(G_CHECKSUM_SHA256, reinterpret_cast<const guchar*>(data.data()),
                                    data.size()),
        &g_free);
    return hex ? std::string(hex.get()) : std::string();
}

} // namespace dmsd
