#pragma once

/// \file
/// How long a video is, for the progress of `dmsd analyze` (sequences
/// expected = duration / sampling interval). Asked of GStreamer's
/// GstDiscoverer, which prerolls the file (demuxes and decodes its first
/// frame) and reads the container's duration; bounded by a timeout.

#include <chrono>
#include <optional>
#include <string>

namespace dmsd::batch {

/// Duration of the video file \a path in seconds; nullopt when the container
/// does not say, the file cannot be read or the probe takes longer than
/// \a timeout (Capture reports a bad file properly; this only estimates).
std::optional<double>
probeDurationSeconds(const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5));

} // namespace dmsd::batch
