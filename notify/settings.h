#pragma once

/// \file
/// `notify:`: where alerts go besides the journal. `dbus` (the bus to serve
/// org.dmsd.DriverMonitor1 on), `can` (SocketCAN interface and frame ids) and
/// `snapshots` (evidence frames on disk), with their keys, ranges and checks
/// (base/keys.h).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/duration.h"
#include "base/keys.h"

namespace dmsd {

/// Problem with a D-Bus bus setting: "system", "session" or a D-Bus address
/// (`transport:key=value,...[;...]`).
std::optional<std::string> busProblem(std::string_view bus);

/// Problem with a network interface name (1..15 characters, no '/', no blanks).
std::optional<std::string> interfaceProblem(std::string_view name);

enum class DbusBusKind { System, Session, Address };

struct DbusSettings {
    bool enabled = true;
    std::string bus = "system"; ///< system | session | a D-Bus address

    friend bool operator==(const DbusSettings&, const DbusSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.boolean("enabled", s.enabled);
        k.text("bus", s.bus,
               "system, session, or a D-Bus address such as unix:path=/run/dbus/"
               "system_bus_socket",
               busProblem);
    }
};

/// How `notify.dbus.bus` is to be read.
DbusBusKind dbusBusKind(const DbusSettings& settings);

struct CanSettings {
    bool enabled = false;
    std::string interface = "can0";
    std::uint32_t alertId = 0x6D0;
    std::uint32_t heartbeatId = 0x6D1;
    Millis heartbeat{1000};

    friend bool operator==(const CanSettings&, const CanSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.boolean("enabled", s.enabled);
        k.text("interface", s.interface, "a SocketCAN interface name such as can0",
               interfaceProblem);
        k.canId("alert_id", s.alertId);
        k.canId("heartbeat_id", s.heartbeatId);
        k.duration("heartbeat", s.heartbeat, 10ms, 1min);
        k.crossCheck(
            {"alert_id", "heartbeat_id"}, [&s] { return idsProblem(s); }, "two different ids");
    }

    /// Receivers tell the two frames apart by id; nullopt when they differ.
    static std::optional<std::string> idsProblem(const CanSettings& settings);
};

struct SnapshotSettings {
    bool enabled = true;
    std::string dir = "/var/lib/dmsd/snapshots";
    int maxFiles = 200;

    friend bool operator==(const SnapshotSettings&, const SnapshotSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.boolean("enabled", s.enabled);
        k.text("dir", s.dir, "a directory path");
        k.integer("max_files", s.maxFiles, 1, 1000000);
    }
};

struct NotifySettings {
    DbusSettings dbus;
    CanSettings can;
    SnapshotSettings snapshots;

    friend bool operator==(const NotifySettings&, const NotifySettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.section("dbus", s.dbus);
        k.section("can", s.can);
        k.section("snapshots", s.snapshots);
    }
};

} // namespace dmsd
