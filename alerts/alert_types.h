#pragma once

/// \file
/// Alert kinds and levels of docs/interfaces.md section 3, with the numeric codes that
/// section 5 (CAN) fixes. Dependency-free: the configuration, the decision engine
/// and every notifier share these definitions.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

namespace dmsd {

/// Alert kind; the value is the CAN kind code (byte 0), 0 meaning none.
enum class AlertKind : std::uint8_t {
    Drowsiness = 1,
    Distraction = 2,
    PhoneUse = 3,
    HandsOffWheel = 4,
    ImpairedDriving = 5,
    DriverNotVisible = 6,
    CameraFault = 7,
    AnalyzerFault = 8,
};

inline constexpr std::size_t kAlertKindCount = 8;
inline constexpr std::array<AlertKind, kAlertKindCount> kAllAlertKinds = {
    AlertKind::Drowsiness,    AlertKind::Distraction,     AlertKind::PhoneUse,
    AlertKind::HandsOffWheel, AlertKind::ImpairedDriving, AlertKind::DriverNotVisible,
    AlertKind::CameraFault,   AlertKind::AnalyzerFault,
};

/// Index 0..7 for per-kind arrays.
constexpr std::size_t alertIndex(AlertKind kind) {
    return static_cast<std::size_t>(kind) - 1;
}

/// Bit of the kind in the active-kinds bitmask (CAN bytes 4-5): bit (code-1).
constexpr std::uint16_t alertBit(AlertKind kind) {
    return static_cast<std::uint16_t>(1u << alertIndex(kind));
}

/// Contract name: "DROWSINESS", "PHONE_USE", ...
constexpr std::string_view alertKindName(AlertKind kind) {
    constexpr std::array<std::string_view, kAlertKindCount> names = {
        "DROWSINESS",       "DISTRACTION",        "PHONE_USE",    "HANDS_OFF_WHEEL",
        "IMPAIRED_DRIVING", "DRIVER_NOT_VISIBLE", "CAMERA_FAULT", "ANALYZER_FAULT"};
    return names[alertIndex(kind)];
}

/// Configuration key under `alerts:`: "drowsiness", "phone_use", ...
constexpr std::string_view alertKindKey(AlertKind kind) {
    constexpr std::array<std::string_view, kAlertKindCount> keys = {
        "drowsiness",       "distraction",        "phone_use",    "hands_off_wheel",
        "impaired_driving", "driver_not_visible", "camera_fault", "analyzer_fault"};
    return keys[alertIndex(kind)];
}

/// Parses either spelling ("PHONE_USE" or "phone_use").
inline std::optional<AlertKind> parseAlertKind(std::string_view text) {
    for (AlertKind kind : kAllAlertKinds) {
        if (text == alertKindName(kind) || text == alertKindKey(kind)) {
            return kind;
        }
    }
    return std::nullopt;
}

/// Alert level; the value is the CAN level code (byte 1).
enum class AlertLevel : std::uint8_t {
    Cleared = 0,
    Info = 1,
    Warning = 2,
    Critical = 3,
};

/// Contract name: "info", "warning", "critical" ("cleared" for Cleared).
constexpr std::string_view alertLevelName(AlertLevel level) {
    switch (level) {
    case AlertLevel::Cleared:
        return "cleared";
    case AlertLevel::Info:
        return "info";
    case AlertLevel::Warning:
        return "warning";
    case AlertLevel::Critical:
        return "critical";
    }
    return "cleared";
}

/// Time base of the decision engine: milliseconds on a monotonic axis chosen by
/// the caller (steady clock in `run`, video time in `analyze`).
using EngineTime = std::chrono::milliseconds;

/// What decided a transition: the model's answers, the per-frame vision, both
/// (each of them holds the alert), or the health of dmsd's own inputs
/// (CAMERA_FAULT, ANALYZER_FAULT). docs/alerts.md, Fusion.
enum class AlertSource : std::uint8_t {
    Model,
    Health,
    Vision,
    Both,
};

/// "model", "health", "vision", "both" (the `source` of `dmsd analyze`'s alert lines).
constexpr std::string_view alertSourceName(AlertSource source) {
    switch (source) {
    case AlertSource::Health:
        return "health";
    case AlertSource::Vision:
        return "vision";
    case AlertSource::Both:
        return "both";
    case AlertSource::Model:
        break;
    }
    return "model";
}

/// One transition of one alert kind, as every notifier receives it.
struct AlertEvent {
    enum class Type : std::uint8_t {
        Raised,       ///< cleared -> warning (or higher)
        LevelChanged, ///< level changed while raised (escalation to critical)
        Cleared,      ///< raised -> cleared
    };
    Type type = Type::Raised;
    AlertKind kind = AlertKind::Drowsiness;
    AlertLevel level = AlertLevel::Warning; ///< new level (Cleared for Type::Cleared)
    double confidence = 0.0;                ///< 0..1
    EngineTime at{0};                       ///< engine time of the transition
    std::uint64_t sequenceId = 0;           ///< sequence whose evidence decided it (0: none)
    AlertSource source = AlertSource::Model;
    boost::json::object evidence; ///< which analyses said what (docs/alerts.md)
};

/// An alert currently raised.
struct ActiveAlert {
    AlertKind kind = AlertKind::Drowsiness;
    AlertLevel level = AlertLevel::Warning;
    double confidence = 0.0;
    EngineTime since{0};                     ///< engine time it was raised
    AlertSource source = AlertSource::Model; ///< which source holds it now
};

/// Bitmask (alertBit) of the given active alerts.
inline std::uint16_t activeMask(const std::vector<ActiveAlert>& alerts) {
    std::uint16_t mask = 0;
    for (const ActiveAlert& alert : alerts) {
        mask = static_cast<std::uint16_t>(mask | alertBit(alert.kind));
    }
    return mask;
}

} // namespace dmsd
