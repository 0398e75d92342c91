#include "notify/can_frame.h"

#include <cmath>

#include <boost/crc.hpp>

namespace dmsd {
namespace {

void finish(CanPayload& payload, std::uint16_t mask, std::uint8_t counter) {
    payload[4] = static_cast<std::uint8_t>(mask & 0xFF);
    payload[5] = static_cast<std::uint8_t>(mask >> 8);
    payload[6] = static_cast<std::uint8_t>(counter & 0x0F);
    payload[7] = crc8SaeJ1850(std::span<const std::uint8_t>(payload.data(), 7));
}

std::uint16_t maskOf(const CanPayload& payload) {
    return static_cast<std::uint16_t>(payload[4] | (payload[5] << 8));
}

} // namespace

std::uint8_t crc8SaeJ1850(std::span<const std::uint8_t> bytes) {
    // Boost.CRC: width 8, polynomial 0x1D, initial 0xFF, final XOR 0xFF, not reflected.
    boost::crc_optimal<8, 0x1D, 0xFF, 0xFF, false, false> crc;
    crc.process_bytes(bytes.data(), bytes.size());
    return static_cast<std::uint8_t>(crc.checksum());
}

std::uint8_t confidencePercent(double confidence) {
    if (!(confidence > 0.0)) { // also catches NaN
        return 0;
    }
    if (confidence >= 1.0) {
        return 100;
    }
    return static_cast<std::uint8_t>(std::lround(confidence * 100.0));
}

CanPayload encodeAlertFrame(const AlertFrameFields& fields) {
    CanPayload payload{};
    payload[0] = fields.kind ? static_cast<std::uint8_t>(*fields.kind) : 0;
    payload[1] = static_cast<std::uint8_t>(fields.level);
    payload[2] = fields.confidence > 100 ? 100 : fields.confidence;
    payload[3] = static_cast<std::uint8_t>(fields.face);
    finish(payload, fields.activeMask, fields.counter);
    return payload;
}

CanPayload encodeHeartbeatFrame(const HeartbeatFrameFields& fields) {
    CanPayload payload{};
    payload[0] =
        static_cast<std::uint8_t>((fields.cameraOk ? 0x01 : 0) | (fields.modelServerOk ? 0x02 : 0) |
                                  (fields.degraded ? 0x04 : 0));
    finish(payload, fields.activeMask, fields.counter);
    return payload;
}

bool canCrcValid(const CanPayload& payload) {
    return payload[7] == crc8SaeJ1850(std::span<const std::uint8_t>(payload.data(), 7));
}

std::optional<AlertFrameFields> decodeAlertFrame(const CanPayload& payload) {
    if (!canCrcValid(payload) || payload[0] > kAlertKindCount || payload[1] > 3 ||
        payload[2] > 100 || payload[3] > 7 || (payload[6] & 0xF0) != 0) {
        return std::nullopt;
    }
    AlertFrameFields fields;
    if (payload[0] != 0) {
        fields.kind = static_cast<AlertKind>(payload[0]);
    }
    fields.level = static_cast<AlertLevel>(payload[1]);
    fields.confidence = payload[2];
    fields.face = static_cast<FaceState>(payload[3]);
    fields.activeMask = maskOf(payload);
    fields.counter = payload[6];
    return fields;
}

std::optional<HeartbeatFrameFields> decodeHeartbeatFrame(const CanPayload& payload) {
    if (!canCrcValid(payload) || (payload[0] & 0xF8) != 0 || payload[1] != 0 || payload[2] != 0 ||
        payload[3] != 0 || (payload[6] & 0xF0) != 0) {
        return std::nullopt;
    }
    HeartbeatFrameFields fields;
    fields.cameraOk = (payload[0] & 0x01) != 0;
    fields.modelServerOk = (payload[0] & 0x02) != 0;
    fields.degraded = (payload[0] & 0x04) != 0;
    fields.activeMask = maskOf(payload);
    fields.counter = payload[6];
    return fields;
}

} // namespace dmsd
