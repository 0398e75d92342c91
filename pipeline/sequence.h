#pragma once

/// \file
/// What the frame path hands to the analysis: a sampled sequence of frames,
/// JPEG-encoded once. Dependency-free (no GStreamer types) so that llm/, the
/// snapshot writer and the batch output can use it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace dmsd {

using SteadyTime = std::chrono::steady_clock::time_point;

/// One encoded JPEG image, shared (never copied) between the request body
/// builder, the response cache key and the snapshot writer.
struct JpegImage {
    std::shared_ptr<const std::vector<unsigned char>> bytes;
    int width = 0;
    int height = 0;
    /// The same bytes in base64 as request bodies carry them, made once per
    /// frame by encodeI420 (on the frame path's thread, not the event loop),
    /// so the five requests of a sequence do not encode it five times.
    /// Null: the body builder encodes `bytes` itself.
    std::shared_ptr<const std::string> base64 = nullptr;
};

/// Identity and timing of one frame chosen for a sequence.
struct SampledFrameInfo {
    std::uint64_t frameId = 0;     ///< monotonically increasing per capture session
    double ptsSeconds = 0.0;       ///< presentation time in the video/stream
    std::uint64_t contentHash = 0; ///< hash of the subsampled Y plane (cache key)
    SteadyTime capturedAt{};       ///< when the frame left the appsink (or was decoded)
    double motion = 0.0;           ///< mean absolute luma difference to the previous frame, 0..1
};

/// A sequence ready to be asked about.
struct EncodedSequence {
    std::uint64_t sequenceId = 0;
    double tStartS = 0.0; ///< window start, video time
    double tEndS = 0.0;   ///< window end, video time
    std::vector<SampledFrameInfo> frames;
    /// One image per frame (layout separate) or a single tiled image (mosaic).
    std::vector<JpegImage> images;
    bool mosaic = false;
    /// Capture time of the sequence's last frame: latency is measured from here.
    SteadyTime lastFrameAt{};
    /// Largest mean absolute luma difference of the window to the last
    /// analysed frame, 0..1 (1 for the first sequence).
    double motion = 0.0;
    /// Builds the mosaic of the same frames on demand (used when the server
    /// refuses several images per request). Empty when not available.
    std::function<std::optional<JpegImage>()> makeMosaic;
};

using EncodedSequencePtr = std::shared_ptr<const EncodedSequence>;

} // namespace dmsd
