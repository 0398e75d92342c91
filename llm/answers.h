#pragma once

/// \file
/// Typed answers of the five analyses (CONTRACT.md section 7). Dependency-free so
/// that the decision engine can consume them without knowing anything of HTTP.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd {

/// The five analyses. Order is the canonical order used in output.
enum class AnalysisKind : std::uint8_t {
    FaceState,
    Attention,
    HandPosition,
    GeneralScene,
    ImpairedDriving,
};

inline constexpr std::size_t kAnalysisCount = 5;
inline constexpr std::array<AnalysisKind, kAnalysisCount> kAllAnalyses = {
    AnalysisKind::FaceState, AnalysisKind::Attention, AnalysisKind::HandPosition,
    AnalysisKind::GeneralScene, AnalysisKind::ImpairedDriving};

/// Contract name: "face_state", "attention", "hand_position", "general_scene",
/// "impaired_driving" (also the configuration key under `analyses:`).
constexpr std::string_view analysisName(AnalysisKind kind) {
    constexpr std::array<std::string_view, kAnalysisCount> names = {
        "face_state", "attention", "hand_position", "general_scene", "impaired_driving"};
    return names[static_cast<std::size_t>(kind)];
}

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

enum class Gaze : std::uint8_t { Road, Mirror, Dashboard, Phone, Passenger, Down, Away, Unknown };
constexpr std::string_view gazeName(Gaze gaze) {
    constexpr std::array<std::string_view, 8> names = {
        "road", "mirror", "dashboard", "phone", "passenger", "down", "away", "unknown"};
    return names[static_cast<std::size_t>(gaze)];
}

enum class Holding : std::uint8_t { Nothing, Phone, Food, Drink, Cigarette, Other };
constexpr std::string_view holdingName(Holding holding) {
    constexpr std::array<std::string_view, 6> names = {"nothing", "phone",     "food",
                                                       "drink",   "cigarette", "other"};
    return names[static_cast<std::size_t>(holding)];
}

enum class Concern : std::uint8_t { Low, Moderate, High };
constexpr std::string_view concernName(Concern concern) {
    constexpr std::array<std::string_view, 3> names = {"LOW", "MODERATE", "HIGH"};
    return names[static_cast<std::size_t>(concern)];
}

struct FaceStateAnswer {
    FaceState state = FaceState::Unknown;
    bool eyesClosed = false;
    bool yawning = false;
    double confidence = 0.0; ///< 0..1
};

struct AttentionAnswer {
    bool lookingAtRoad = true;
    Gaze gaze = Gaze::Unknown;
    bool eyesOpen = true;
    double confidence = 0.0;
};

struct HandPositionAnswer {
    int handsOnWheel = 0; ///< 0..2
    Holding holding = Holding::Nothing;
    double confidence = 0.0;
};

struct GeneralSceneAnswer {
    std::string description;
    bool driverVisible = true;
    int occupants = 0;
};

struct ImpairedDrivingAnswer {
    Concern concern = Concern::Low;
    std::vector<std::string> indicators;
    double confidence = 0.0;
};

/// Why an analysis has no answer. Kept as a value: a failed request is reported
/// in place of its answer (CONTRACT.md section 6), never thrown.
struct AnalysisError {
    enum class Kind : std::uint8_t {
        ConnectionFailed, ///< refused, reset, DNS
        Timeout,          ///< connect, first byte, idle gap or overall deadline
        HttpStatus,       ///< 4xx/5xx with Ollama's {"error": ...} text
        ServerError,      ///< {"error": ...} line after output started
        MalformedBody,    ///< not HTTP/JSON as Ollama sends it, or too large
        InvalidAnswer,    ///< the model's content holds no usable answer object
        Cancelled,        ///< superseded or shutting down
    };
    Kind kind = Kind::InvalidAnswer;
    int httpStatus = 0;  ///< for HttpStatus
    std::string message; ///< human-readable, names the URL/analysis at fault
};

/// An analysis outcome: either its typed answer or the error in its place.
template <class T>
struct Outcome {
    std::optional<T> answer;
    std::optional<AnalysisError> error;
    bool ok() const { return answer.has_value(); }
    static Outcome success(T value) { return Outcome{std::move(value), std::nullopt}; }
    static Outcome failure(AnalysisError e) { return Outcome{std::nullopt, std::move(e)}; }
};

/// All answers of one sequence. An absent optional means "not asked"
/// (the analysis is disabled); a present one holds an answer or an error.
struct SequenceAnswers {
    std::optional<Outcome<FaceStateAnswer>> faceState;
    std::optional<Outcome<AttentionAnswer>> attention;
    std::optional<Outcome<HandPositionAnswer>> handPosition;
    std::optional<Outcome<GeneralSceneAnswer>> generalScene;
    std::optional<Outcome<ImpairedDrivingAnswer>> impairedDriving;
};

} // namespace dmsd
