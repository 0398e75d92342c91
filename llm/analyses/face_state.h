#pragma once

/// \file
/// `face_state`: the driver's face across the frames. A state (AWAKE,
/// SLEEPY, TIRED, ...), whether the eyes are closed, whether the driver
/// yawns, and how sure the model is. DROWSINESS reads it (docs/alerts.md).

#include <array>
#include <cstdint>
#include <string_view>

#include "llm/answers.h"

namespace dmsd {

/// Face state; the value is the CAN face state code (byte 3).
enum class FaceState : std::uint8_t {
    Unknown = 0,
    Awake = 1,
    Sleepy = 2,
    Joyful = 3,
    Exhausted = 4,
    Tired = 5,
    Angry = 6,
    Neutral = 7,
};

/// "UNKNOWN", "AWAKE", "SLEEPY", ...
constexpr std::string_view faceStateName(FaceState state) {
    constexpr std::array<std::string_view, 8> names = {"UNKNOWN",   "AWAKE", "SLEEPY", "JOYFUL",
                                                       "EXHAUSTED", "TIRED", "ANGRY",  "NEUTRAL"};
    return names[static_cast<std::size_t>(state)];
}

struct FaceStateAnswer {
    static constexpr AnalysisKind kKind = AnalysisKind::FaceState;
    FaceState state = FaceState::Unknown;
    bool eyesClosed = false;
    bool yawning = false;
    double confidence = 0.0; ///< 0..1
};

class Analysis;
const Analysis& faceStateAnalysis();

} // namespace dmsd
