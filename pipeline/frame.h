#pragma once

/// \file
/// A captured I420 frame as the consumer sees it: read-only plane views plus
/// identity and timing. Backed either by a mapped GstBuffer from the capture
/// (referenced, never copied) or by owned memory (synthetic frames in tests,
/// the mosaic).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "pipeline/gst_handles.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// Read-only view of the three planes of an I420 image.
struct I420View {
    std::array<const std::uint8_t*, 3> data{};
    std::array<int, 3> stride{};
    int width = 0;
    int height = 0;

    int chromaWidth() const { return (width + 1) / 2; }
    int chromaHeight() const { return (height + 1) / 2; }
    const std::uint8_t* row(int plane, int y) const {
        return data[static_cast<std::size_t>(plane)] +
               static_cast<std::ptrdiff_t>(y) * stride[static_cast<std::size_t>(plane)];
    }
};

/// Identity and timing of a frame.
struct FrameMeta {
    std::uint64_t id = 0;    ///< monotonically increasing per capture session
    double ptsS = 0.0;       ///< presentation time, video time (seconds)
    double durationS = 0.0;  ///< nominal duration (1/fps); 0 if unknown
    SteadyTime capturedAt{}; ///< when the frame left the appsink
};

class Frame;
using FramePtr = std::shared_ptr<const Frame>;

/// An immutable I420 frame.
class Frame {
public:
    /// Wraps a captured sample: keeps a reference and maps its planes.
    /// \return nullptr when the buffer cannot be mapped as \a info describes.
    static FramePtr fromSample(GstSamplePtr sample, const GstVideoInfo& info,
                               const FrameMeta& meta);
    /// Builds a frame over owned, tightly packed I420 memory (Y then U then V).
    /// \a i420 must hold at least width*height + 2*ceil(w/2)*ceil(h/2) bytes.
    static FramePtr fromI420(std::vector<std::uint8_t> i420, int width, int height,
                             const FrameMeta& meta);
    /// A synthetic frame of uniform colour (Y, U, V values); for tests and benchmarks.
    static FramePtr solid(int width, int height, std::uint8_t y, std::uint8_t u, std::uint8_t v,
                          const FrameMeta& meta);

    const I420View& planes() const { return view_; }
    const FrameMeta& meta() const { return meta_; }
    std::uint64_t id() const { return meta_.id; }
    double ptsS() const { return meta_.ptsS; }
    int width() const { return view_.width; }
    int height() const { return view_.height; }

    /// Size of a tightly packed I420 image.
    static std::size_t i420Size(int width, int height);

    // Public for std::make_shared; use the factories.
    struct Private {};
    Frame(Private, const FrameMeta& meta) : meta_(meta) {}

private:
    FrameMeta meta_;
    I420View view_;
    GstSamplePtr sample_;
    std::optional<VideoFrameMap> map_;
    std::vector<std::uint8_t> owned_;
};

} // namespace dmsd
