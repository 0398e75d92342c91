#pragma once

/// \file
/// What the per-frame vision says at one frame, as the alert engine reads it:
/// the vision module's conditions (eyes closed long, PERCLOS high, yawning
/// often, head off the road long, face absent long) and the measurements the
/// alert evidence cites. alerts/ does not link vision/ (it would bring dlib
/// and OpenCV into every program that decides alerts): daemon/ and batch/
/// fill this struct from vision's `DriverSignals` with `visionEvidenceOf()`.
/// The fusion rules are in docs/alerts.md.

namespace dmsd {

/// One frame's vision reading (video or engine time is passed beside it).
struct VisionEvidence {
    bool facePresent = false;
    double faceConfidence = 0.0; ///< 0..1
    double faceAbsentS = 0.0;    ///< time since the last face (0 while present)
    bool faceAbsentLong = false; ///< no face for at least `vision.face_absent_after`

    bool eyesMeasured = false; ///< the eye state was measured at this frame
    double eyesConfidence = 0.0;
    bool eyesClosed = false;
    double eyesClosedS = 0.0;    ///< how long the current closure has lasted
    bool eyesClosedLong = false; ///< closed at least `vision.eyes_closed_after`
    double perclos = 0.0;
    bool perclosHigh = false; ///< PERCLOS at least `vision.perclos_threshold`
    int yawnsInWindow = 0;
    bool yawningOften = false; ///< at least `vision.yawns_drowsy` yawns in the window

    bool poseMeasured = false;
    double poseConfidence = 0.0;
    double yawDeg = 0.0;
    double pitchDeg = 0.0;
    bool outsideCone = false;
    double outsideConeS = 0.0; ///< how long the head has pointed outside the cone
    bool offRoadLong = false;  ///< outside the cone at least `vision.off_road_after`
};

/// Reads vision's `DriverSignals` (vision/signals.h) into a `VisionEvidence`.
/// A template so that this header needs no vision/ header: it is instantiated
/// by daemon/ and batch/, which link both modules.
template <class Signals>
VisionEvidence visionEvidenceOf(const Signals& s) {
    VisionEvidence v;
    v.facePresent = s.facePresent.value;
    v.faceConfidence = s.facePresent.confidence;
    v.faceAbsentS = s.faceAbsentS;
    v.faceAbsentLong = s.faceAbsentLong;
    v.eyesMeasured = s.facePresent.value && s.eyesClosed.confidence > 0.0;
    v.eyesConfidence = s.eyesClosed.confidence;
    v.eyesClosed = s.eyesClosed.value;
    v.eyesClosedS = s.eyesClosedS;
    v.eyesClosedLong = s.eyesClosedLong;
    v.perclos = s.perclos.value;
    v.perclosHigh = s.perclosHigh;
    v.yawnsInWindow = s.yawnsInWindow;
    v.yawningOften = s.yawningOften;
    v.poseMeasured = s.facePresent.value && s.pose.confidence > 0.0;
    v.poseConfidence = s.pose.confidence;
    v.yawDeg = s.pose.value.yawDeg;
    v.pitchDeg = s.pose.value.pitchDeg;
    v.outsideCone = s.outsideCone;
    v.outsideConeS = s.outsideConeS;
    v.offRoadLong = s.offRoadLong;
    return v;
}

} // namespace dmsd
