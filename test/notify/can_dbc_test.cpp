// Decodes frames from the encoder with the bit layout written in docs/dmsd.dbc,
// so that the DBC a technician loads and the bytes dmsd sends cannot drift apart.

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "notify/can_frame.h"
#include "notify/settings.h"

using namespace dmsd;

namespace {

struct DbcSignal {
    std::string name;
    unsigned start = 0;
    unsigned length = 0;
    bool littleEndian = false;
    bool isSigned = false;
    double factor = 1;
    double offset = 0;
};

struct DbcMessage {
    std::uint32_t id = 0;
    std::string name;
    unsigned dlc = 0;
    std::vector<DbcSignal> signals;
    std::map<std::string, std::map<long, std::string>> values; ///< VAL_ per signal
    std::map<std::string, std::string> attributes;             ///< BA_ ... BO_ id value
};

// The few DBC statements we need: BO_, SG_, VAL_ and BA_ on messages. (sscanf,
// not std::regex: GCC 12's <regex> trips -Wmaybe-uninitialized under ASan.)
std::map<std::uint32_t, DbcMessage> parseDbc(const std::string& path) {
    std::ifstream in(path);
    REQUIRE(in.good());
    std::map<std::uint32_t, DbcMessage> messages;
    DbcMessage* current = nullptr;
    std::string line;
    while (std::getline(in, line)) {
        char name[128] = {};
        char node[128] = {};
        char unit[128] = {};
        char byteOrder = 0;
        char sign = 0;
        unsigned id = 0;
        unsigned a = 0;
        unsigned b = 0;
        double factor = 0;
        double offset = 0;
        double minimum = 0;
        double maximum = 0;
        if (line.rfind("BO_ ", 0) == 0) {
            REQUIRE(std::sscanf(line.c_str(), "BO_ %u %127[^:]: %u %127s", &id, name, &a, node) ==
                    4);
            DbcMessage& message = messages[id];
            message.id = id;
            message.name = name;
            message.dlc = a;
            current = &message;
        } else if (line.rfind(" SG_ ", 0) == 0) {
            REQUIRE(current != nullptr);
            const int fields = std::sscanf(
                line.c_str(), " SG_ %127s : %u|%u@%c%c (%lf,%lf) [%lf|%lf] \"%127[^\"]\" %127s",
                name, &a, &b, &byteOrder, &sign, &factor, &offset, &minimum, &maximum, unit, node);
            // An empty unit ("") leaves the %[ conversion unmatched: 9 fields.
            INFO(line);
            REQUIRE(fields >= 9);
            DbcSignal signal;
            signal.name = name;
            signal.start = a;
            signal.length = b;
            signal.littleEndian = byteOrder == '1';
            signal.isSigned = sign == '-';
            signal.factor = factor;
            signal.offset = offset;
            current->signals.push_back(signal);
        } else if (line.rfind("VAL_ ", 0) == 0) {
            int consumed = 0;
            REQUIRE(std::sscanf(line.c_str(), "VAL_ %u %127s %n", &id, name, &consumed) == 2);
            auto& table = messages[id].values[name];
            const char* p = line.c_str() + consumed;
            while (*p != ';' && *p != '\0') {
                char* end = nullptr;
                const long value = std::strtol(p, &end, 10);
                REQUIRE(end != p);
                p = end;
                while (*p == ' ') {
                    ++p;
                }
                REQUIRE(*p == '"');
                const char* close = std::strchr(p + 1, '"');
                REQUIRE(close != nullptr);
                table[value] = std::string(p + 1, close);
                p = close + 1;
                while (*p == ' ') {
                    ++p;
                }
            }
        } else if (line.rfind("BA_ \"", 0) == 0) {
            char value[128] = {};
            if (std::sscanf(line.c_str(), "BA_ \"%127[^\"]\" BO_ %u %127[^;];", name, &id, value) ==
                3) {
                messages[id].attributes[name] = value;
            }
        } else if (line.empty()) {
            current = nullptr;
        }
    }
    return messages;
}

// Intel (little-endian) signal: bit `start` is the LSB, counting bit 0 of byte 0 upwards.
std::uint64_t rawValue(const CanPayload& payload, const DbcSignal& signal) {
    std::uint64_t word = 0;
    for (int i = 7; i >= 0; --i) {
        word = (word << 8) | payload[static_cast<std::size_t>(i)];
    }
    const std::uint64_t mask = signal.length >= 64 ? ~0ull : ((1ull << signal.length) - 1);
    return (word >> signal.start) & mask;
}

std::map<std::string, std::uint64_t> decode(const DbcMessage& message, const CanPayload& payload) {
    std::map<std::string, std::uint64_t> values;
    for (const DbcSignal& signal : message.signals) {
        values[signal.name] = rawValue(payload, signal);
    }
    return values;
}

// "PHONE_USE" -> "Active_PhoneUse"
std::string activeSignalName(AlertKind kind) {
    std::string name = "Active_";
    bool upper = true;
    for (char c : alertKindName(kind)) {
        if (c == '_') {
            upper = true;
            continue;
        }
        name.push_back(upper ? c : static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
        upper = false;
    }
    return name;
}

// Bits of the payload covered by no signal must be zero in every frame we send.
std::uint64_t uncoveredMask(const DbcMessage& message) {
    std::uint64_t covered = 0;
    for (const DbcSignal& signal : message.signals) {
        for (unsigned bit = signal.start; bit < signal.start + signal.length; ++bit) {
            covered |= 1ull << bit;
        }
    }
    return ~covered;
}

std::uint64_t word(const CanPayload& payload) {
    std::uint64_t value = 0;
    for (int i = 7; i >= 0; --i) {
        value = (value << 8) | payload[static_cast<std::size_t>(i)];
    }
    return value;
}

const std::string kDbcPath = std::string(DMSD_SOURCE_DIR) + "/docs/dmsd.dbc";

} // namespace

TEST_CASE("DBC declares both frames with the contract ids, 8 bytes, Intel unsigned signals",
          "[can][dbc]") {
    const auto messages = parseDbc(kDbcPath);
    const CanSettings defaults;
    REQUIRE(messages.count(defaults.alertId) == 1);
    REQUIRE(messages.count(defaults.heartbeatId) == 1);
    for (std::uint32_t id : {defaults.alertId, defaults.heartbeatId}) {
        const DbcMessage& message = messages.at(id);
        INFO(message.name);
        CHECK(message.dlc == 8);
        CHECK(message.attributes.count("GenMsgCycleTime") == 1);
        CHECK(message.attributes.count("GenMsgSendType") == 1);
        std::uint64_t used = 0;
        for (const DbcSignal& signal : message.signals) {
            INFO(signal.name);
            CHECK(signal.littleEndian);
            CHECK_FALSE(signal.isSigned);
            CHECK(signal.factor == 1.0);
            CHECK(signal.offset == 0.0);
            CHECK(signal.start + signal.length <= 64);
            for (unsigned bit = signal.start; bit < signal.start + signal.length; ++bit) {
                CHECK((used & (1ull << bit)) == 0); // no overlapping signals
                used |= 1ull << bit;
            }
        }
    }
    CHECK(messages.at(defaults.alertId).signals.size() == 14);
    CHECK(messages.at(defaults.heartbeatId).signals.size() == 13);
}

TEST_CASE("DBC value tables spell the contract names", "[can][dbc]") {
    const auto messages = parseDbc(kDbcPath);
    const DbcMessage& alert = messages.at(CanSettings{}.alertId);
    const auto& kinds = alert.values.at("AlertKind");
    CHECK(kinds.at(0) == "NONE");
    for (AlertKind kind : kAllAlertKinds) {
        CHECK(kinds.at(static_cast<long>(kind)) == alertKindName(kind));
    }
    const auto& levels = alert.values.at("AlertLevel");
    for (AlertLevel level :
         {AlertLevel::Cleared, AlertLevel::Info, AlertLevel::Warning, AlertLevel::Critical}) {
        std::string upper(alertLevelName(level));
        for (char& c : upper) {
            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        }
        CHECK(levels.at(static_cast<long>(level)) == upper);
    }
    const auto& faces = alert.values.at("FaceState");
    for (int code = 0; code < 8; ++code) {
        CHECK(faces.at(code) == faceStateName(static_cast<FaceState>(code)));
    }
}

TEST_CASE("alert frames decode with the DBC layout to what was encoded", "[can][dbc]") {
    const auto messages = parseDbc(kDbcPath);
    const DbcMessage& message = messages.at(CanSettings{}.alertId);
    const std::uint64_t reserved = uncoveredMask(message);
    int frames = 0;
    for (AlertKind kind : kAllAlertKinds) {
        for (std::uint16_t mask :
             {std::uint16_t{0}, alertBit(kind), std::uint16_t{0xFF}, std::uint16_t{0x55}}) {
            for (std::uint8_t counter : {0, 7, 15}) {
                AlertFrameFields fields;
                fields.kind = kind;
                fields.level = static_cast<AlertLevel>(counter % 4);
                fields.confidence = static_cast<std::uint8_t>(counter * 6);
                fields.face = static_cast<FaceState>(counter % 8);
                fields.activeMask = mask;
                fields.counter = counter;
                const CanPayload payload = encodeAlertFrame(fields);
                const auto values = decode(message, payload);
                CHECK(values.at("AlertKind") == static_cast<std::uint64_t>(kind));
                CHECK(values.at("AlertLevel") == static_cast<std::uint64_t>(fields.level));
                CHECK(values.at("Confidence") == fields.confidence);
                CHECK(values.at("FaceState") == static_cast<std::uint64_t>(fields.face));
                for (AlertKind bitKind : kAllAlertKinds) {
                    CHECK(values.at(activeSignalName(bitKind)) ==
                          ((mask & alertBit(bitKind)) != 0 ? 1u : 0u));
                }
                CHECK(values.at("RollingCounter") == counter);
                CHECK(values.at("Checksum") == payload[7]);
                CHECK((word(payload) & reserved) == 0);
                ++frames;
            }
        }
    }
    CHECK(frames == 8 * 4 * 3);
}

TEST_CASE("heartbeat frames decode with the DBC layout to what was encoded", "[can][dbc]") {
    const auto messages = parseDbc(kDbcPath);
    const DbcMessage& message = messages.at(CanSettings{}.heartbeatId);
    const std::uint64_t reserved = uncoveredMask(message);
    for (int bits = 0; bits < 8; ++bits) {
        for (std::uint8_t counter : {0, 1, 14, 15}) {
            HeartbeatFrameFields fields;
            fields.cameraOk = (bits & 1) != 0;
            fields.modelServerOk = (bits & 2) != 0;
            fields.degraded = (bits & 4) != 0;
            fields.activeMask = static_cast<std::uint16_t>(bits * 31);
            fields.counter = counter;
            const CanPayload payload = encodeHeartbeatFrame(fields);
            const auto values = decode(message, payload);
            CHECK(values.at("CameraOk") == (fields.cameraOk ? 1u : 0u));
            CHECK(values.at("ModelServerOk") == (fields.modelServerOk ? 1u : 0u));
            CHECK(values.at("Degraded") == (fields.degraded ? 1u : 0u));
            for (AlertKind kind : kAllAlertKinds) {
                CHECK(values.at(activeSignalName(kind)) ==
                      ((fields.activeMask & alertBit(kind)) != 0 ? 1u : 0u));
            }
            CHECK(values.at("RollingCounter") == counter);
            CHECK(values.at("Checksum") == payload[7]);
            CHECK((word(payload) & reserved) == 0);
        }
    }
}
