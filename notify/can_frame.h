#pragma once

/// \file
/// Pure encoders and decoders of the two CAN frames of docs/interfaces.md section 5
/// (alert frame and heartbeat frame: classic CAN, 8 data bytes, standard ids).
/// No I/O: the SocketCAN side lives in notify/can_notifier.h. The bit layout
/// is also described by docs/dmsd.dbc; test/platform/can_dbc_test.cpp keeps the
/// two in step.

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "alerts/alert_types.h"
#include "llm/analyses/face_state.h"
#include "llm/answers.h"

namespace dmsd {

/// The 8 data bytes of one classic CAN frame.
using CanPayload = std::array<std::uint8_t, 8>;

/// One frame as dmsd sends it: an 11-bit standard id and 8 data bytes.
struct CanFrame {
    std::uint32_t id = 0;
    CanPayload data{};
};

/// CRC-8 SAE J1850: polynomial 0x1D, initial value 0xFF, final XOR 0xFF, not
/// reflected. Check value over ASCII "123456789" is 0x4B.
std::uint8_t crc8SaeJ1850(std::span<const std::uint8_t> bytes);

/// Confidence 0..1 as the frame's percent byte: rounded, clamped to 0..100; NaN gives 0.
std::uint8_t confidencePercent(double confidence);

/// Content of the alert frame (docs/interfaces.md section 5).
struct AlertFrameFields {
    std::optional<AlertKind> kind;          ///< byte 0; nullopt encodes 0 ("none")
    AlertLevel level = AlertLevel::Cleared; ///< byte 1
    std::uint8_t confidence = 0;            ///< byte 2, percent 0..100
    FaceState face = FaceState::Unknown;    ///< byte 3
    std::uint16_t activeMask = 0;           ///< bytes 4-5, little-endian, bit (code-1)
    std::uint8_t counter = 0;               ///< byte 6 low nibble (only the low 4 bits are used)
    friend bool operator==(const AlertFrameFields&, const AlertFrameFields&) = default;
};

/// Content of the heartbeat frame. Bytes 1-3 are always zero (reserved).
struct HeartbeatFrameFields {
    bool cameraOk = false;        ///< byte 0 bit 0
    bool modelServerOk = false;   ///< byte 0 bit 1
    bool degraded = false;        ///< byte 0 bit 2
    std::uint16_t activeMask = 0; ///< bytes 4-5, little-endian
    std::uint8_t counter = 0;     ///< byte 6 low nibble
    friend bool operator==(const HeartbeatFrameFields&, const HeartbeatFrameFields&) = default;
};

/// Encodes the alert frame; byte 7 is the CRC over bytes 0..6.
CanPayload encodeAlertFrame(const AlertFrameFields& fields);

/// Encodes the heartbeat frame; byte 7 is the CRC over bytes 0..6.
CanPayload encodeHeartbeatFrame(const HeartbeatFrameFields& fields);

/// True when byte 7 is the CRC of bytes 0..6.
bool canCrcValid(const CanPayload& payload);

/// Decodes an alert frame; nullopt when the CRC is wrong or a code is out of range.
std::optional<AlertFrameFields> decodeAlertFrame(const CanPayload& payload);

/// Decodes a heartbeat frame; nullopt when the CRC is wrong or reserved bits are set.
std::optional<HeartbeatFrameFields> decodeHeartbeatFrame(const CanPayload& payload);

} // namespace dmsd
