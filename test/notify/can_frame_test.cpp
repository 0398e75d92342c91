#include <limits>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "notify/can_frame.h"

using namespace dmsd;

namespace {

std::uint8_t crcOf(std::vector<std::uint8_t> bytes) {
    return crc8SaeJ1850(bytes);
}

} // namespace

TEST_CASE("CRC-8 SAE J1850 matches the published check value and AUTOSAR vectors", "[can]") {
    constexpr std::string_view check = "123456789";
    std::vector<std::uint8_t> ascii(check.begin(), check.end());
    CHECK(crc8SaeJ1850(ascii) == 0x4B);
    // AUTOSAR SWS CRC Library, CRC8 (SAE J1850) test vectors.
    CHECK(crcOf({0x00, 0x00, 0x00, 0x00}) == 0x59);
    CHECK(crcOf({0xF2, 0x01, 0x83}) == 0x37);
    CHECK(crcOf({0x0F, 0xAA, 0x00, 0x55}) == 0x79);
    CHECK(crcOf({0x00, 0xFF, 0x55, 0x11}) == 0xB8);
    CHECK(crcOf({0x33, 0x22, 0x55, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE, 0xFF}) == 0xCB);
    CHECK(crcOf({0x92, 0x6B, 0x55}) == 0x8C);
    CHECK(crcOf({0xFF, 0xFF, 0xFF, 0xFF}) == 0x74);
    CHECK(crcOf({}) == 0x00);
}

TEST_CASE("alert frame encodes hand-computed vectors", "[can]") {
    // Bytes and CRCs computed independently (bitwise CRC in Python).
    AlertFrameFields raised;
    raised.kind = AlertKind::Drowsiness;
    raised.level = AlertLevel::Warning;
    raised.confidence = 83;
    raised.face = FaceState::Sleepy;
    raised.activeMask = alertBit(AlertKind::Drowsiness) | alertBit(AlertKind::PhoneUse);
    raised.counter = 3;
    CHECK(encodeAlertFrame(raised) == CanPayload{0x01, 0x02, 0x53, 0x02, 0x05, 0x00, 0x03, 0x9D});

    AlertFrameFields critical;
    critical.kind = AlertKind::AnalyzerFault;
    critical.level = AlertLevel::Critical;
    critical.confidence = 100;
    critical.face = FaceState::Unknown;
    critical.activeMask = alertBit(AlertKind::AnalyzerFault) | alertBit(AlertKind::Drowsiness);
    critical.counter = 15;
    CHECK(encodeAlertFrame(critical) == CanPayload{0x08, 0x03, 0x64, 0x00, 0x81, 0x00, 0x0F, 0x0D});

    AlertFrameFields cleared;
    cleared.kind = AlertKind::Distraction;
    cleared.level = AlertLevel::Cleared;
    cleared.face = FaceState::Awake;
    CHECK(encodeAlertFrame(cleared) == CanPayload{0x02, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x2D});
}

TEST_CASE("heartbeat frame encodes hand-computed vectors, bytes 1-3 zero", "[can]") {
    HeartbeatFrameFields healthy;
    healthy.cameraOk = true;
    healthy.modelServerOk = true;
    healthy.activeMask = alertBit(AlertKind::CameraFault);
    healthy.counter = 9;
    CHECK(encodeHeartbeatFrame(healthy) ==
          CanPayload{0x03, 0x00, 0x00, 0x00, 0x40, 0x00, 0x09, 0x78});

    HeartbeatFrameFields degraded;
    degraded.degraded = true;
    CHECK(encodeHeartbeatFrame(degraded) ==
          CanPayload{0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x63});
}

TEST_CASE("counter uses the low nibble only, confidence is clamped percent", "[can]") {
    AlertFrameFields fields;
    fields.kind = AlertKind::PhoneUse;
    fields.counter = 0x1F;
    CHECK(encodeAlertFrame(fields)[6] == 0x0F);
    fields.confidence = 250;
    CHECK(encodeAlertFrame(fields)[2] == 100);

    CHECK(confidencePercent(0.834) == 83);
    CHECK(confidencePercent(0.835) == 84);
    CHECK(confidencePercent(1.7) == 100);
    CHECK(confidencePercent(-0.2) == 0);
    CHECK(confidencePercent(std::numeric_limits<double>::quiet_NaN()) == 0);
}

TEST_CASE("frames round-trip through the decoders, corruption is detected", "[can]") {
    for (AlertKind kind : kAllAlertKinds) {
        for (std::uint8_t level = 0; level <= 3; ++level) {
            AlertFrameFields fields;
            fields.kind = kind;
            fields.level = static_cast<AlertLevel>(level);
            fields.confidence = static_cast<std::uint8_t>(level * 33);
            fields.face = static_cast<FaceState>((level + 5) % 8);
            fields.activeMask = static_cast<std::uint16_t>(alertBit(kind) | 0x01);
            fields.counter = static_cast<std::uint8_t>((static_cast<int>(kind) + level) & 0x0F);
            const CanPayload payload = encodeAlertFrame(fields);
            REQUIRE(canCrcValid(payload));
            CHECK(decodeAlertFrame(payload) == fields);
            for (std::size_t byte = 0; byte < 8; ++byte) {
                CanPayload corrupt = payload;
                corrupt[byte] ^= 0x10;
                CHECK_FALSE(decodeAlertFrame(corrupt).has_value());
            }
        }
    }
    HeartbeatFrameFields heartbeat{true, false, true, 0x00FF, 7};
    CHECK(decodeHeartbeatFrame(encodeHeartbeatFrame(heartbeat)) == heartbeat);
    CanPayload corrupt = encodeHeartbeatFrame(heartbeat);
    corrupt[4] ^= 0x01;
    CHECK_FALSE(decodeHeartbeatFrame(corrupt).has_value());
}
