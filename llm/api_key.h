#pragma once

/// \file
/// `llm.api_key_file`: reading the API key sent to the model server as
/// `Authorization: Bearer KEY`. The file is judged before it is read: a
/// regular file (never a FIFO or a device, base/input_file.h), not readable or
/// writable by group or others, at most kMaxApiKeyBytes, one line of printable
/// ASCII. Every message names the key and the path, never the key itself.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dmsd {

/// The largest key file accepted (keys are tens to hundreds of bytes).
inline constexpr std::size_t kMaxApiKeyBytes = 4096;

/// The key in \a path (without its trailing line break), or nullopt with the
/// reason in \a problem ("llm.api_key_file \"/etc/dmsd/key\" is accessible by ...").
std::optional<std::string> readApiKeyFile(std::string_view path, std::string& problem);

} // namespace dmsd
