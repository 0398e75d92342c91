#pragma once

/// \file
/// The pictures of vision's alerts. Vision decides on single frames, not on
/// the sampled sequences the model sees, so its alerts are shown with frames
/// of their own: `notableFrame()` encodes (as JPEG, on the thread that ran
/// the analysis) only a frame whose signals mark an onset (eyes closing past
/// a blink, the head leaving the cone, the face lost) or a condition turning
/// on (the alert engine's inputs) - a handful per episode, never every
/// frame; `EvidenceFrames` keeps the last two, so that an alert raised by
/// vision is shown with the onset and the frame it was decided on (a
/// snapshot in `dmsd run`, evidence in `dmsd analyze --evidence`).

#include <cstddef>
#include <deque>
#include <optional>

#include "pipeline/frame.h"
#include "pipeline/sequence.h"
#include "vision/signals.h"

namespace dmsd {

/// JPEG quality of vision's evidence frames (as `encode.jpeg_quality`'s default).
inline constexpr int kEvidenceJpegQuality = 85;

/// A frame kept as evidence, with its identity and timing.
struct EvidenceFrame {
    std::uint64_t frameId = 0;
    double ptsS = 0.0;
    SteadyTime capturedAt{};
    JpegImage image;
};

/// True when the step from \a before to \a now is worth a picture: an onset
/// (`visionOnset`) or one of the engine's vision conditions turning on.
bool isNotable(const DriverSignals& before, const DriverSignals& now,
               const SignalThresholds& thresholds);

/// \a frame as evidence when the step from \a before (none: the first frame)
/// to \a now is notable and the frame encodes; nullopt otherwise.
std::optional<EvidenceFrame> notableFrame(const Frame& frame,
                                          const std::optional<DriverSignals>& before,
                                          const DriverSignals& now,
                                          const SignalThresholds& thresholds);

/// The last notable frames of one video or camera session, as the sequence
/// a snapshot writes (sequence id 0: not a model sequence; motion 0).
class EvidenceFrames {
public:
    static constexpr std::size_t kKept = 2;

    void add(EvidenceFrame frame);
    void clear();
    /// The kept frames, oldest first; null when there are none.
    const EncodedSequencePtr& sequence() const { return sequence_; }

private:
    std::deque<EvidenceFrame> frames_;
    EncodedSequencePtr sequence_;
};

} // namespace dmsd
