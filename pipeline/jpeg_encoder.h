#pragma once

/// \file
/// JPEG encoding straight from the I420 planes (TurboJPEG
/// tjCompressFromYUVPlanes: no colour conversion, strides respected), each
/// frame at most once (scaled down to encode.max_side first, with OpenCV's
/// area interpolation), and the mosaic layout (the sequence's frames tiled
/// into one I420 image, encoded once).

#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "pipeline/frame.h"
#include "pipeline/motion_sampler.h"
#include "pipeline/sequence.h"
#include "pipeline/settings.h"

namespace dmsd {

/// TurboJPEG flags used for every encode (also by the benchmark's raw call).
inline constexpr int kJpegFlags = 2048 /* TJFLAG_FASTDCT */;

/// Encodes one I420 image with this thread's compressor handle (created on
/// first use, one per thread). Thread-safe; no caching.
/// \param error receives TurboJPEG's message on failure (may be null).
std::optional<JpegImage> encodeI420(const I420View& image, int quality,
                                    std::string* error = nullptr);

/// encodeI420() of \a image scaled down (OpenCV area interpolation) so that
/// its longer side is at most \a maxSide (encode.max_side; 0: as it is).
std::optional<JpegImage> encodeI420Scaled(const I420View& image, int quality, int maxSide,
                                          std::string* error);

/// Grid of a mosaic: `columns` x `rows` tiles of `tileWidth` x `tileHeight`.
struct MosaicLayout {
    int columns = 1;
    int rows = 1;
    int tileWidth = 0;
    int tileHeight = 0;
    int width() const { return columns * tileWidth; }
    int height() const { return rows * tileHeight; }
};

/// Layout for \a count frames of \a frameWidth x \a frameHeight: columns =
/// ceil(sqrt(count)), rows = ceil(count / columns), each tile the frame
/// scaled by 1/columns (even sizes), so the mosaic is as wide as one frame
/// (2x2 of 320x240 for four 640x480 frames).
MosaicLayout mosaicLayout(std::size_t count, int frameWidth, int frameHeight);

/// Tiles \a frames (box-filtered down to the tile size, on the Y, U and V
/// planes) into one I420 frame; unused tiles are black. Null if \a frames is
/// empty. The mosaic is laid out for the first frame scaled to \a maxSide
/// (encode.max_side; 0: its own size), so it is no larger than one such frame.
FramePtr composeMosaic(const std::vector<FramePtr>& frames, int maxSide = 0);

/// Encodes frames and sequences for one consumer thread. Not thread-safe
/// (its cache is not locked); the makeMosaic function it puts in an
/// EncodedSequence may be called from any thread.
class JpegEncoder {
public:
    explicit JpegEncoder(EncodeSettings settings, std::size_t cacheEntries = 16);

    /// The frame's JPEG, encoded now or taken from the cache (by frame id).
    std::optional<JpegImage> encode(const Frame& frame);
    /// Encodes the sequence in the configured layout. Null on an encoder
    /// failure (lastError() says why).
    EncodedSequencePtr encodeSequence(const SampledSequence& sequence);

    const std::string& lastError() const { return lastError_; }
    std::uint64_t framesEncoded() const { return framesEncoded_; }
    std::uint64_t cacheHits() const { return cacheHits_; }
    const EncodeSettings& settings() const { return settings_; }

private:
    EncodeSettings settings_;
    std::size_t cacheEntries_;
    // LRU keyed by frame id: a frame shared by two sequences (or asked for
    // again for a snapshot) is not encoded twice.
    std::list<std::pair<std::uint64_t, JpegImage>> lru_;
    std::unordered_map<std::uint64_t, decltype(lru_)::iterator> index_;
    std::string lastError_;
    std::uint64_t framesEncoded_ = 0;
    std::uint64_t cacheHits_ = 0;
};

} // namespace dmsd
