#include "vision/evidence_frames.h"

#include <memory>
#include <utility>

#include "pipeline/jpeg_encoder.h"

namespace dmsd {

bool isNotable(const DriverSignals& before, const DriverSignals& now,
               const SignalThresholds& thresholds) {
    const auto rising = [](bool was, bool is) {
        return !was && is;
    };
    return visionOnset(before, now, thresholds) ||
           rising(before.eyesClosedLong, now.eyesClosedLong) ||
           rising(before.perclosHigh, now.perclosHigh) ||
           rising(before.offRoadLong, now.offRoadLong) ||
           rising(before.faceAbsentLong, now.faceAbsentLong) ||
           rising(before.yawningOften, now.yawningOften);
}

std::optional<EvidenceFrame> notableFrame(const Frame& frame,
                                          const std::optional<DriverSignals>& before,
                                          const DriverSignals& now,
                                          const SignalThresholds& thresholds) {
    if (!isNotable(before.value_or(DriverSignals{}), now, thresholds)) {
        return std::nullopt;
    }
    std::optional<JpegImage> image = encodeI420(frame.planes(), kEvidenceJpegQuality);
    if (!image) {
        return std::nullopt; // a picture is a courtesy: the alert does not wait for it
    }
    return EvidenceFrame{frame.id(), frame.ptsS(), frame.meta().capturedAt, std::move(*image)};
}

void EvidenceFrames::add(EvidenceFrame frame) {
    frames_.push_back(std::move(frame));
    while (frames_.size() > kKept) {
        frames_.pop_front();
    }
    auto sequence = std::make_shared<EncodedSequence>();
    sequence->tStartS = frames_.front().ptsS;
    sequence->tEndS = frames_.back().ptsS;
    sequence->lastFrameAt = frames_.back().capturedAt;
    for (const EvidenceFrame& kept : frames_) {
        SampledFrameInfo info;
        info.frameId = kept.frameId;
        info.ptsSeconds = kept.ptsS;
        info.capturedAt = kept.capturedAt;
        sequence->frames.push_back(info);
        sequence->images.push_back(kept.image);
    }
    sequence_ = std::move(sequence);
}

void EvidenceFrames::clear() {
    frames_.clear();
    sequence_.reset();
}

} // namespace dmsd
