#pragma once

/// \file
/// How long a video is, for the progress estimate of `dmsd analyze`
/// (sequences expected = duration / sampling interval). Demuxes only: the
/// container is parsed up to its first buffers, nothing is decoded.

#include <optional>
#include <string>

namespace dmsd::batch {

/// Duration of the video file \a path in seconds; nullopt when the container
/// does not say, or the file cannot be read (Capture reports that properly).
std::optional<double> probeDurationSeconds(const std::string& path);

} // namespace dmsd::batch
