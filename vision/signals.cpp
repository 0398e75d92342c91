#include "vision/signals.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace dmsd {
namespace {

double distance(const Point2& a, const Point2& b) {
    return std::hypot(a.x - b.x, a.y - b.y);
}

double seconds(Millis value) {
    return std::chrono::duration<double>(value).count();
}

const Point2& at(const FaceLandmarks& landmarks, int index) {
    return landmarks[static_cast<std::size_t>(index)];
}

} // namespace

double eyeAspectRatio(const FaceLandmarks& landmarks, int first) {
    const double width = distance(at(landmarks, first), at(landmarks, first + 3));
    if (width <= 0.0) {
        return 0.0;
    }
    const double heights = distance(at(landmarks, first + 1), at(landmarks, first + 5)) +
                           distance(at(landmarks, first + 2), at(landmarks, first + 4));
    return heights / (2.0 * width);
}

double mouthAspectRatio(const FaceLandmarks& landmarks) {
    const double width = distance(at(landmarks, 60), at(landmarks, 64));
    if (width <= 0.0) {
        return 0.0;
    }
    const double heights = distance(at(landmarks, 61), at(landmarks, 67)) +
                           distance(at(landmarks, 62), at(landmarks, 66)) +
                           distance(at(landmarks, 63), at(landmarks, 65));
    return heights / (2.0 * width);
}

bool visionQuiet(const DriverSignals& s) {
    return s.facePresent.value && s.facePresent.confidence > 0.0 && !s.eyesClosed.value &&
           !s.outsideCone && !s.yawning && !s.eyesClosedLong && !s.perclosHigh && !s.offRoadLong &&
           !s.faceAbsentLong && !s.yawningOften;
}

bool visionOnset(const DriverSignals& before, const DriverSignals& now,
                 const SignalThresholds& thresholds) {
    // Durations are differences of frame times: a microsecond of slack keeps
    // a sum of frame periods that lands on the threshold from missing it.
    constexpr double kSlackS = 1e-6;
    const double blinkS = seconds(thresholds.blinkMax) - kSlackS;
    const bool eyesClosing =
        now.eyesClosed.value && before.eyesClosedS < blinkS && now.eyesClosedS >= blinkS;
    const bool turningAway = !before.outsideCone && now.outsideCone;
    const double gapS = SignalTracker::kMaxGapS - kSlackS;
    const bool faceLost = !now.outsideCone && before.faceAbsentS < gapS && now.faceAbsentS >= gapS;
    return eyesClosing || turningAway || faceLost;
}

SignalTracker::SignalTracker(const SignalThresholds& thresholds) : thresholds_(thresholds) {
}

const DriverSignals& SignalTracker::update(const FaceObservation& face, double tS) {
    // Video time never goes backwards in the frame path; a frame that claims
    // otherwise is taken as simultaneous rather than allowed to undo durations.
    if (lastT_ && tS < *lastT_) {
        tS = *lastT_;
    }
    lastT_ = tS;
    signals_.tS = tS;
    signals_.blinked = false;

    const bool present = face.present;
    const double confidence = present ? std::clamp(face.confidence, 0.0, 1.0) : 0.0;
    // A state seen at the last face is held across a short gap (a missed
    // detection, a skipped frame), never across a long one.
    const bool held = lastFaceAt_ && tS - *lastFaceAt_ <= kMaxGapS;

    signals_.facePresent.value = present;
    // An absence is as certain as the detector that looked: the analyzer
    // reports no face only after a whole-picture search found none, and
    // repeats that verdict until its next search (detect_interval frames).
    signals_.facePresent.confidence = present ? confidence : 1.0;
    if (present) {
        faceLostAt_.reset();
        signals_.faceAbsentS = 0.0;
    } else {
        if (!faceLostAt_) {
            faceLostAt_ = tS;
        }
        signals_.faceAbsentS = tS - *faceLostAt_;
    }

    updateEyes(face, confidence, tS, held);
    updateMouth(face, confidence, tS, held);
    updatePose(face, confidence, tS);
    trimWindow(tS);

    const double measured = measuredS_;
    signals_.perclos.value = measured > 0.0 ? std::clamp(closedS_ / measured, 0.0, 1.0) : 0.0;
    signals_.perclos.confidence =
        std::clamp(measured / seconds(thresholds_.perclosWindow), 0.0, 1.0);

    signals_.eyesClosedLong =
        signals_.eyesClosed.value && signals_.eyesClosedS >= seconds(thresholds_.eyesClosedAfter);
    signals_.perclosHigh = signals_.perclos.confidence >= 0.5 &&
                           signals_.perclos.value >= thresholds_.perclosThreshold;
    signals_.offRoadLong =
        signals_.outsideCone && signals_.outsideConeS >= seconds(thresholds_.offRoadAfter);
    // A head that turned out of the cone and then out of the detector's reach
    // is looking away (offRoadLong), not gone: only a face lost from inside
    // the cone is an empty seat or a covered camera.
    signals_.faceAbsentLong = !present && !signals_.outsideCone &&
                              signals_.faceAbsentS >= seconds(thresholds_.faceAbsentAfter);
    signals_.yawningOften = signals_.yawnsInWindow >= thresholds_.yawnsDrowsy;

    if (present) {
        lastFaceAt_ = tS;
    }
    return signals_;
}

void SignalTracker::updateEyes(const FaceObservation& face, double faceConfidence, double tS,
                               bool held) {
    if (!face.present) {
        signals_.earRight.confidence = 0.0;
        signals_.earLeft.confidence = 0.0;
        signals_.eyesClosed.confidence = 0.0;
        if (!held) {
            // Unmeasured too long: the closure (if any) is no longer known.
            closedSince_.reset();
            signals_.eyesClosed.value = false;
        }
        signals_.eyesClosedS = closedSince_ ? tS - *closedSince_ : 0.0;
        return;
    }

    // The far eye shrinks as the head turns; its ratio means less the more
    // it turns (and nothing beyond 60 degrees). Without a pose, half trust.
    const double turn =
        face.pose ? std::clamp(1.0 - std::abs(face.pose->yawDeg) / 60.0, 0.0, 1.0) : 0.5;
    const double eyeConfidence = faceConfidence * turn;
    signals_.earRight = {eyeAspectRatio(face.landmarks, 36), eyeConfidence};
    signals_.earLeft = {eyeAspectRatio(face.landmarks, 42), eyeConfidence};
    const double ear = (signals_.earRight.value + signals_.earLeft.value) / 2.0;
    const bool closed = ear < thresholds_.earClosed;

    // PERCLOS: the time since the previous face frame carries that frame's
    // state (sample and hold), when the gap is short enough to be measured.
    if (held) {
        addSpan(*lastFaceAt_, tS, lastClosed_);
    } else {
        closedSince_.reset();
    }
    lastClosed_ = closed;

    if (closed) {
        if (!closedSince_) {
            closedSince_ = tS;
        }
        signals_.eyesClosedS = tS - *closedSince_;
    } else {
        if (closedSince_) {
            // The closure lasted from its first closed frame to this first
            // open one; a short one is a blink.
            if (tS - *closedSince_ <= seconds(thresholds_.blinkMax)) {
                signals_.blinked = true;
                ++signals_.blinks;
            }
            closedSince_.reset();
        }
        signals_.eyesClosedS = 0.0;
    }
    signals_.eyesClosed = {closed, eyeConfidence};
}

void SignalTracker::addSpan(double start, double end, bool closed) {
    if (end <= start) {
        return;
    }
    spans_.push_back({start, end, closed});
    measuredS_ += end - start;
    if (closed) {
        closedS_ += end - start;
    }
}

void SignalTracker::trimWindow(double tS) {
    const double windowStart = tS - seconds(thresholds_.perclosWindow);
    while (!spans_.empty() && spans_.front().start < windowStart) {
        Span& front = spans_.front();
        const double cut = std::min(front.end, windowStart) - front.start;
        measuredS_ -= cut;
        if (front.closed) {
            closedS_ -= cut;
        }
        if (front.end <= windowStart) {
            spans_.pop_front();
        } else {
            front.start = windowStart;
        }
    }
    if (spans_.empty()) {
        // No rounding residue survives an empty window.
        measuredS_ = 0.0;
        closedS_ = 0.0;
    }
    measuredS_ = std::max(measuredS_, 0.0);
    closedS_ = std::clamp(closedS_, 0.0, measuredS_);

    while (!yawnStarts_.empty() && yawnStarts_.front() < windowStart) {
        yawnStarts_.pop_front();
    }
    signals_.yawnsInWindow = static_cast<int>(yawnStarts_.size());
}

void SignalTracker::updateMouth(const FaceObservation& face, double faceConfidence, double tS,
                                bool held) {
    if (!face.present) {
        signals_.mar.confidence = 0.0;
        if (!held) {
            mouthOpenSince_.reset();
            yawnCounted_ = false;
            signals_.yawning = false;
        }
        return;
    }
    if (!held) {
        mouthOpenSince_.reset();
        yawnCounted_ = false;
    }
    signals_.mar = {mouthAspectRatio(face.landmarks), faceConfidence};
    if (signals_.mar.value <= thresholds_.marYawn) {
        mouthOpenSince_.reset();
        yawnCounted_ = false;
        signals_.yawning = false;
        return;
    }
    if (!mouthOpenSince_) {
        mouthOpenSince_ = tS;
    }
    // Talking and laughing open the mouth briefly; a yawn holds it open.
    signals_.yawning = tS - *mouthOpenSince_ >= seconds(thresholds_.yawnMin);
    if (signals_.yawning && !yawnCounted_) {
        yawnCounted_ = true;
        ++signals_.yawns;
        yawnStarts_.push_back(*mouthOpenSince_);
    }
}

void SignalTracker::updatePose(const FaceObservation& face, double faceConfidence, double tS) {
    if (face.present && face.pose) {
        const HeadPose& pose = *face.pose;
        signals_.pose = {pose, faceConfidence};
        lastOutside_ =
            std::abs(pose.yawDeg - thresholds_.coneCenterYawDeg) > thresholds_.coneYawDeg ||
            std::abs(pose.pitchDeg - thresholds_.coneCenterPitchDeg) > thresholds_.conePitchDeg;
    } else {
        signals_.pose.confidence = 0.0;
        // A head that left the cone and then the frontal detector's reach
        // (turned further away) is still away: the exit goes on. A face lost
        // from inside the cone is an absence, not a glance away.
        if (!lastOutside_) {
            outsideSince_.reset();
        }
    }
    if (lastOutside_) {
        if (!outsideSince_) {
            outsideSince_ = tS;
        }
        signals_.outsideCone = true;
        signals_.outsideConeS = tS - *outsideSince_;
    } else {
        outsideSince_.reset();
        signals_.outsideCone = false;
        signals_.outsideConeS = 0.0;
    }
}

} // namespace dmsd
