#pragma once

/// \file
/// Settings of the per-frame driver vision, `vision:`: whether it runs, the
/// landmark model, how often it looks and detects, and the thresholds of its
/// signals (eye closure, PERCLOS, yawning, the on-road cone), with their keys,
/// ranges and checks (base/keys.h). docs/vision.md explains each threshold.

#include <optional>
#include <string>
#include <string_view>

#include "base/duration.h"
#include "base/keys.h"

namespace dmsd {

/// Where Debian's libdlib-data installs dlib's 68-point landmark model.
inline constexpr std::string_view kDefaultLandmarkModel =
    "/usr/share/dlib/shape_predictor_68_face_landmarks.dat";

/// Problem with the landmark model file at \a path (missing, not a regular
/// file, unreadable), naming the path; nullopt when it can be read.
std::optional<std::string> landmarkModelProblem(std::string_view path);

/// Thresholds of the per-frame signals (vision/signals.h).
struct SignalThresholds {
    double earClosed = 0.2;          ///< eye aspect ratio below this: eye closed
    Millis blinkMax{500};            ///< a closure at most this long is a blink
    Millis eyesClosedAfter{2000};    ///< eyes closed this long: the closure condition
    Millis perclosWindow{60000};     ///< PERCLOS sliding window (video time)
    double perclosThreshold = 0.15;  ///< PERCLOS at or above this: the PERCLOS condition
    double marYawn = 0.6;            ///< mouth aspect ratio above this: mouth wide open
    Millis yawnMin{1000};            ///< mouth wide open this long: a yawn
    double coneYawDeg = 30.0;        ///< half-width of the on-road cone, yaw
    double conePitchDeg = 20.0;      ///< half-height of the on-road cone, pitch
    double coneCenterYawDeg = 0.0;   ///< head yaw when looking at the road
    double coneCenterPitchDeg = 0.0; ///< head pitch when looking at the road
    Millis offRoadAfter{2000};       ///< head outside the cone this long: the off-road condition
    Millis faceAbsentAfter{2000};    ///< no face this long: the absence condition
    int yawnsDrowsy = 3;             ///< this many yawns within `perclosWindow`: the yawn condition

    friend bool operator==(const SignalThresholds&, const SignalThresholds&) = default;
};

struct VisionSettings {
    bool enabled = true;
    std::string model{kDefaultLandmarkModel};
    int everyNthFrame = 1;    ///< look at every Nth captured frame
    int detectInterval = 5;   ///< frames looked at between full detections
    int downscaleWidth = 320; ///< width of the image the detector sees
    /// Sampling window while vision sees a quiet scene (visionQuiet) and no
    /// alert is raised; 0: off (every window is `sampling.interval`).
    Millis quietInterval{0};
    SignalThresholds signals;

    friend bool operator==(const VisionSettings&, const VisionSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.boolean("enabled", s.enabled);
        k.text("model", s.model, "path of a dlib 68-point shape predictor (.dat)");
        k.integer("every_nth_frame", s.everyNthFrame, 1, 100);
        k.integer("detect_interval", s.detectInterval, 1, 1000);
        k.integer("downscale_width", s.downscaleWidth, 80, 7680);
        k.duration("quiet_interval", s.quietInterval, 0ms, 1min);
        k.number("ear_closed", s.signals.earClosed, 0.0, 1.0);
        k.duration("blink_max", s.signals.blinkMax, 0ms, 10s);
        k.duration("eyes_closed_after", s.signals.eyesClosedAfter, 100ms, 1min);
        k.duration("perclos_window", s.signals.perclosWindow, 1s, 10min);
        k.number("perclos_threshold", s.signals.perclosThreshold, 0.0, 1.0);
        k.number("mar_yawn", s.signals.marYawn, 0.0, 3.0);
        k.duration("yawn_min", s.signals.yawnMin, 0ms, 1min);
        k.number("cone_yaw", s.signals.coneYawDeg, 1.0, 90.0);
        k.number("cone_pitch", s.signals.conePitchDeg, 1.0, 90.0);
        k.number("cone_center_yaw", s.signals.coneCenterYawDeg, -90.0, 90.0);
        k.number("cone_center_pitch", s.signals.coneCenterPitchDeg, -90.0, 90.0);
        k.duration("off_road_after", s.signals.offRoadAfter, 100ms, 1min);
        k.duration("face_absent_after", s.signals.faceAbsentAfter, 100ms, 1min);
        k.integer("yawns_drowsy", s.signals.yawnsDrowsy, 1, 100);
        // The model file is checked only when vision is on: a board without
        // the model may still run model-only with `enabled: false`.
        k.crossCheck(
            {"model"},
            [&s]() -> std::optional<std::string> {
                if (!s.enabled) {
                    return std::nullopt;
                }
                return landmarkModelProblem(s.model);
            },
            "a readable dlib 68-point shape predictor file, or enabled: false");
    }
};

} // namespace dmsd
