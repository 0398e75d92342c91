#pragma once

/// \file
/// SHA-256 through GLib's GChecksum (GLib comes with GStreamer), for the
/// content hash that names a configuration without a `version:`.

#include <string>
#include <string_view>

namespace dmsd {

/// SHA-256 of \a data as 64 lowercase hex digits.
std::string sha256Hex(std::string_view data);

} // namespace dmsd
