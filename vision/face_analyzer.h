#pragma once

/// \file
/// `FaceAnalyzer`: finds the driver's face in a luma (Y) plane and measures
/// it. dlib's HOG frontal face detector every `vision.detect_interval`
/// frames: around the tracked face, or over the plane downscaled to
/// `vision.downscale_width` when no face is known or none is found there;
/// in between, the box follows the image (OpenCV's phase correlation of the
/// face's content from frame to frame); dlib's 68-point shape predictor on the
/// full-resolution plane (through LandmarkModel, vision/landmark_model.h);
/// head pose from six landmarks with OpenCV's solvePnP against a generic 3D
/// face. dlib and OpenCV stay behind the pimpl: this header includes neither.

#include <cstdint>
#include <memory>
#include <string>
#include <variant>

#include "pipeline/frame.h"
#include "vision/settings.h"
#include "vision/signals.h"

namespace dmsd {

/// A read-only 8-bit grey image: the Y plane of a frame, or any luma buffer.
struct LumaView {
    const std::uint8_t* data = nullptr;
    int stride = 0; ///< bytes from one row to the next
    int width = 0;
    int height = 0;
};

/// The Y plane of \a frame (no copy; valid while the frame lives).
LumaView lumaOf(const Frame& frame);

/// Where a frame's face detector looked.
enum class DetectArea {
    None,       ///< nowhere: the face was tracked
    AroundFace, ///< around the tracked face only (a scheduled re-detection that found it)
    Full,       ///< the whole downscaled picture (no face known, or none around it)
};

/// Thread CPU time one `analyze()` spent in each step, in microseconds.
struct AnalysisCost {
    DetectArea detectArea = DetectArea::None;
    std::int64_t trackUs = 0; ///< the phase correlation that follows the face
    /// The correlation's peak response, 0..1 (0 when no face was followed):
    /// below 0.15 the face is taken as lost (docs/vision.md).
    double trackResponse = 0.0;
    std::int64_t detectUs = 0;    ///< the detector with its small copy (0 on a tracked frame)
    std::int64_t landmarksUs = 0; ///< the shape predictor
    std::int64_t poseUs = 0;      ///< solvePnP
    std::int64_t totalUs() const { return trackUs + detectUs + landmarksUs + poseUs; }
};

/// What the analyzer of one stream found in one frame.
struct FaceAnalysis {
    FaceObservation face;
    AnalysisCost cost;
};

/// The detector, landmark model and pose solver of one video
/// stream (it remembers the face between frames). Not thread-safe: one
/// thread uses it. Loading reads a 95 MiB model (0.9 s of CPU in bench_vision).
class FaceAnalyzer {
public:
    /// Loads the model of \a settings.model. The error says what failed and
    /// names the path (missing, unreadable, not a dlib shape predictor).
    static std::variant<std::unique_ptr<FaceAnalyzer>, std::string>
    open(const VisionSettings& settings);

    ~FaceAnalyzer();
    FaceAnalyzer(const FaceAnalyzer&) = delete;
    FaceAnalyzer& operator=(const FaceAnalyzer&) = delete;

    /// Analyses the next frame of the stream. Throws what dlib or OpenCV
    /// throw (std::exception); `VisionStage` turns that into its failed state.
    FaceAnalysis analyze(const LumaView& luma);

    /// Forgets the tracked face: the next frame runs the full detector.
    void reset();

    struct Impl;

private:
    explicit FaceAnalyzer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

/// CPU time of the calling thread, in microseconds (CLOCK_THREAD_CPUTIME_ID).
std::int64_t threadCpuUs();

} // namespace dmsd
