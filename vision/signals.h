#pragma once

/// \file
/// The per-frame driver signals, as pure logic: fed what the face analyzer
/// saw in one frame (68 landmarks, head pose, confidence) and the frame's
/// video time, `SignalTracker` says whether a face is present, the eye
/// aspect ratio of each eye, blinks, how long the eyes have been closed,
/// PERCLOS over a sliding window of video time, the mouth aspect ratio and
/// yawns, head yaw and pitch and how long the head has been outside the
/// on-road cone, each with a confidence in 0..1. No clock, no I/O, no dlib:
/// unit tests drive it with synthetic landmark sequences. docs/vision.md
/// grounds each signal.

#include <array>
#include <cstdint>
#include <deque>
#include <optional>

#include "vision/settings.h"

namespace dmsd {

/// A point in image pixels (x right, y down).
struct Point2 {
    double x = 0.0;
    double y = 0.0;
};

/// The 68 landmarks of the iBUG 300-W layout, in image pixels. Indexes as in
/// the dataset, 0-based: jaw 0-16, brows 17-26, nose 27-35, the driver's
/// right eye 36-41 (on the image's left), left eye 42-47, outer lips 48-59,
/// inner lips 60-67.
using FaceLandmarks = std::array<Point2, 68>;

/// Head orientation relative to the camera, in degrees. yaw > 0: the face
/// turns toward the image's right (the driver's left); pitch > 0: the face
/// tilts up (chin up); roll > 0: the head tilts counter-clockwise as the
/// image shows it.
struct HeadPose {
    double yawDeg = 0.0;
    double pitchDeg = 0.0;
    double rollDeg = 0.0;
};

/// A face box in image pixels.
struct FaceBox {
    double left = 0.0;
    double top = 0.0;
    double width = 0.0;
    double height = 0.0;
};

/// What the face analyzer saw in one frame.
struct FaceObservation {
    bool present = false;    ///< a face was detected or tracked
    double confidence = 0.0; ///< 0..1: the score of the detection that found it (docs/vision.md)
    /// This frame ran the detector; else the face was tracked, or none is
    /// known and the whole-picture search waits for its turn (every
    /// `detect_interval` frames: the absence is the last search's).
    bool detected = false;
    FaceBox box;                  ///< where the face is (valid when present)
    FaceLandmarks landmarks{};    ///< valid when present
    std::optional<HeadPose> pose; ///< when present and solvePnP converged
};

/// Eye aspect ratio (Soukupová & Čech 2016) of the six points of one eye,
/// p1..p6 = \a first .. \a first+5: (|p2-p6| + |p3-p5|) / (2 |p1-p4|).
/// 0 when the eye's corners coincide.
double eyeAspectRatio(const FaceLandmarks& landmarks, int first);

/// Mouth aspect ratio over the inner lips (60-67):
/// (|61-67| + |62-66| + |63-65|) / (2 |60-64|). 0 when the corners coincide.
double mouthAspectRatio(const FaceLandmarks& landmarks);

/// A measured value and how far to trust it (0: not measured this frame).
template <class T>
struct Measured {
    T value{};
    double confidence = 0.0;
};

/// Everything the vision says about the driver at one frame.
struct DriverSignals {
    double tS = 0.0; ///< video time of the frame

    Measured<bool> facePresent;
    double faceAbsentS = 0.0; ///< how long no face has been seen (0 while present)

    Measured<double> earRight; ///< the driver's right eye (landmarks 36-41)
    Measured<double> earLeft;  ///< the driver's left eye (landmarks 42-47)
    Measured<bool> eyesClosed; ///< the mean EAR of both eyes below `ear_closed`
    double eyesClosedS = 0.0;  ///< how long the current closure has lasted (0 when open)
    bool blinked = false;      ///< a closure of at most `blink_max` ended at this frame
    std::uint64_t blinks = 0;  ///< blinks since the start

    Measured<double> perclos; ///< fraction of the measured window with eyes closed;
                              ///< confidence: the measured share of the window

    Measured<double> mar;    ///< mouth aspect ratio
    bool yawning = false;    ///< the mouth has been wide open at least `yawn_min`
    std::uint64_t yawns = 0; ///< yawns since the start
    int yawnsInWindow = 0;   ///< yawns begun within the last `perclos_window`

    Measured<HeadPose> pose;   ///< head yaw, pitch and roll
    bool outsideCone = false;  ///< the head points outside the on-road cone
    double outsideConeS = 0.0; ///< how long it has (0 when inside)

    // The conditions the thresholds define (the alert engine's inputs).
    bool eyesClosedLong = false; ///< eyesClosedS >= `eyes_closed_after`
    bool perclosHigh = false;    ///< perclos >= `perclos_threshold`, half the window measured
    bool offRoadLong = false;    ///< outsideConeS >= `off_road_after`
    bool faceAbsentLong = false; ///< no face for `face_absent_after`, lost from inside the cone
    bool yawningOften = false;   ///< yawnsInWindow >= `yawns_drowsy`
};

/// Nothing for the model to add that vision would not see first: a face
/// present, the eyes open, the head inside the cone, no yawn, none of the
/// engine's vision conditions. `vision.quiet_interval` stretches the
/// sampling window while this holds (docs/vision.md, "Quiet scenes").
bool visionQuiet(const DriverSignals& signals);

/// A vision onset worth asking the model about at once (the daemon and
/// `analyze` close the sampling window early on it): between two successive
/// frames' signals, the eyes stayed closed past `blink_max` (not a blink),
/// the head left the on-road cone, or the face has been lost for
/// `SignalTracker::kMaxGapS` from inside the cone (not a missed detection).
bool visionOnset(const DriverSignals& before, const DriverSignals& now,
                 const SignalThresholds& thresholds);

/// Turns a stream of observations into `DriverSignals`. Time is the frames'
/// video time (seconds, never decreasing); durations and the PERCLOS window
/// are measured in it, not in frame counts, so a skipped frame or a lower
/// frame rate changes no threshold.
class SignalTracker {
public:
    explicit SignalTracker(const SignalThresholds& thresholds);

    /// The signals at the frame of video time \a tS that showed \a face.
    const DriverSignals& update(const FaceObservation& face, double tS);

    /// The signals of the last update (all zero before the first).
    const DriverSignals& current() const { return signals_; }

    /// Longest gap between two observations over which a state is held;
    /// beyond it the time is unmeasured (PERCLOS) and runs restart.
    static constexpr double kMaxGapS = 0.5;

private:
    struct Span {
        double start;
        double end;
        bool closed;
    };

    void updateEyes(const FaceObservation& face, double faceConfidence, double tS, bool held);
    void addSpan(double start, double end, bool closed);
    void trimWindow(double tS);
    void updateMouth(const FaceObservation& face, double faceConfidence, double tS, bool held);
    void updatePose(const FaceObservation& face, double faceConfidence, double tS);

    SignalThresholds thresholds_;
    DriverSignals signals_;
    std::optional<double> lastT_;

    std::optional<double> faceLostAt_;
    std::optional<double> lastFaceAt_; ///< video time of the last frame with a face
    std::optional<double> closedSince_;
    bool lastClosed_ = false; ///< eye state at lastFaceAt_

    std::deque<Span> spans_; ///< measured eye states over the PERCLOS window
    double measuredS_ = 0.0;
    double closedS_ = 0.0;

    std::optional<double> mouthOpenSince_;
    bool yawnCounted_ = false;
    std::deque<double> yawnStarts_;

    std::optional<double> outsideSince_;
    bool lastOutside_ = false; ///< the last measured pose was outside the cone
};

} // namespace dmsd
