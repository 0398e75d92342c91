#pragma once

/// \file
/// `alerts:`: the hysteresis of each alert kind (raise_after, clear_after,
/// critical_after, cooldown), its built-in defaults and their grounding
/// (docs/alerts.md), with the keys, ranges and checks (base/keys.h).

#include <array>
#include <chrono>
#include <optional>
#include <string>

#include "alerts/alert_types.h"
#include "base/keys.h"

namespace dmsd {

/// Hysteresis of one alert kind.
struct AlertRule {
    std::chrono::milliseconds raiseAfter{3000};
    std::chrono::milliseconds clearAfter{6000};
    std::chrono::milliseconds criticalAfter{10000};
    std::chrono::milliseconds cooldown{30000};

    friend bool operator==(const AlertRule&, const AlertRule&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.duration("raise_after", s.raiseAfter, 0ms, 1h);
        k.duration("clear_after", s.clearAfter, 0ms, 1h);
        k.duration("critical_after", s.criticalAfter, 0ms, 1h);
        k.duration("cooldown", s.cooldown, 0ms, 24h);
        k.crossCheck(
            {"critical_after", "raise_after"}, [&s] { return escalationProblem(s); },
            "critical_after >= raise_after");
    }

    /// An alert must be raised before it can become critical; nullopt when it can.
    static std::optional<std::string> escalationProblem(const AlertRule& rule);
};

/// Built-in defaults per kind; the reasoning and sources are in docs/alerts.md.
/// Order: raise_after, clear_after, critical_after, cooldown.
constexpr AlertRule defaultAlertRule(AlertKind kind) {
    using std::chrono::milliseconds;
    switch (kind) {
    case AlertKind::Drowsiness: // Euro NCAP: eyes closed > 3 s is sleep
        return {milliseconds{3000}, milliseconds{6000}, milliseconds{10000}, milliseconds{30000}};
    case AlertKind::Distraction: // Euro NCAP long distraction 3 s, unresponsive 6 s; 2 s back
        return {milliseconds{3000}, milliseconds{2000}, milliseconds{6000}, milliseconds{5000}};
    case AlertKind::PhoneUse: // fleet practice: handled for 2 s; Euro NCAP 6 s gaze away
        return {milliseconds{2000}, milliseconds{4000}, milliseconds{6000}, milliseconds{10000}};
    case AlertKind::HandsOffWheel: // UN R79 as in openpilot's wheel-touch policy: 15 s / 30 s
        return {milliseconds{15000}, milliseconds{4000}, milliseconds{30000}, milliseconds{30000}};
    case AlertKind::ImpairedDriving: // non-transient: several consistent answers, rare repeats
        return {milliseconds{10000}, milliseconds{30000}, milliseconds{60000},
                milliseconds{300000}};
    case AlertKind::DriverNotVisible: // Euro NCAP: tell the driver of degradation within 10 s
        return {milliseconds{4000}, milliseconds{4000}, milliseconds{10000}, milliseconds{10000}};
    case AlertKind::CameraFault:
        return {milliseconds{3000}, milliseconds{5000}, milliseconds{10000}, milliseconds{10000}};
    case AlertKind::AnalyzerFault:
        return {milliseconds{6000}, milliseconds{5000}, milliseconds{30000}, milliseconds{10000}};
    }
    return {};
}

/// `alerts:`, one section per kind.
struct AlertsSettings {
    std::array<AlertRule, kAlertKindCount> rules = [] {
        std::array<AlertRule, kAlertKindCount> r{};
        for (AlertKind kind : kAllAlertKinds) {
            r[alertIndex(kind)] = defaultAlertRule(kind);
        }
        return r;
    }();
    const AlertRule& operator[](AlertKind kind) const { return rules[alertIndex(kind)]; }
    AlertRule& operator[](AlertKind kind) { return rules[alertIndex(kind)]; }

    friend bool operator==(const AlertsSettings&, const AlertsSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        for (AlertKind kind : kAllAlertKinds) {
            k.section(alertKindKey(kind), s[kind]);
        }
    }
};

} // namespace dmsd
