#include <catch2/catch.hpp>

#include "alerts/alert_types.h"
#include "alerts/settings.h"

using namespace dmsd;

TEST_CASE("alert kind codes, names and bits follow docs/interfaces.md sections 3 and 5") {
    CHECK(static_cast<int>(AlertKind::Drowsiness) == 1);
    CHECK(static_cast<int>(AlertKind::AnalyzerFault) == 8);
    CHECK(alertKindName(AlertKind::PhoneUse) == "PHONE_USE");
    CHECK(alertKindKey(AlertKind::HandsOffWheel) == "hands_off_wheel");
    CHECK(alertBit(AlertKind::Drowsiness) == 0x0001);
    CHECK(alertBit(AlertKind::AnalyzerFault) == 0x0080);
    CHECK(parseAlertKind("DRIVER_NOT_VISIBLE") == AlertKind::DriverNotVisible);
    CHECK(parseAlertKind("camera_fault") == AlertKind::CameraFault);
    CHECK_FALSE(parseAlertKind("sleepy").has_value());
    CHECK(alertLevelName(AlertLevel::Critical) == "critical");
}

TEST_CASE("the alert settings carry the drowsiness defaults") {
    const AlertsSettings alerts;
    const AlertRule& rule = alerts[AlertKind::Drowsiness];
    CHECK(rule.raiseAfter.count() == 3000);
    CHECK(rule.clearAfter.count() == 6000);
    CHECK(rule.criticalAfter.count() == 10000);
    CHECK(rule.cooldown.count() == 30000);
}
