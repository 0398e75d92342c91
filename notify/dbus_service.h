#pragma once

/// \file
/// The D-Bus API of docs/interfaces.md section 4, served with sd-bus on the daemon's
/// asio loop: bus name and interface `org.dmsd.DriverMonitor1`, object
/// `/org/dmsd/DriverMonitor1`. The sd-bus fd is driven by the io_context (no
/// extra thread, nothing blocks the loop). When the bus is unavailable at start
/// or the connection drops, the service reports it and reconnects with backoff;
/// the daemon keeps running without D-Bus meanwhile.
///
/// Threading: every member function must be called on the thread running the
/// io_context (the daemon's loop); the callbacks are invoked there too.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alerts/alert_types.h"
#include "notify/settings.h"

namespace boost::asio {
class io_context;
}

namespace dmsd {

/// Bus name, object path and interface name (docs/interfaces.md section 4).
inline constexpr std::string_view kDbusServiceName = "org.dmsd.DriverMonitor1";
inline constexpr std::string_view kDbusObjectPath = "/org/dmsd/DriverMonitor1";
inline constexpr std::string_view kDbusInterface = "org.dmsd.DriverMonitor1";
/// Error name of a failed `Reload` (the message says why).
inline constexpr std::string_view kDbusErrorReloadFailed =
    "org.dmsd.DriverMonitor1.Error.ReloadFailed";
/// Error name of any other failed call (a callback threw, none is installed).
inline constexpr std::string_view kDbusErrorFailed = "org.dmsd.DriverMonitor1.Error.Failed";

/// Value of the `State` property.
enum class ServiceState : std::uint8_t { Starting, Running, Degraded, Stopping };

/// "starting", "running", "degraded", "stopping".
std::string_view serviceStateName(ServiceState state);

/// What the daemon plugs in. All run on the loop and must return promptly.
struct DbusCallbacks {
    /// JSON for `GetStatus` (docs/interfaces.md sections 4 and 6). If unset, or
    /// if it throws, a minimal status is built from the properties: GetStatus
    /// never fails.
    std::function<std::string()> getStatus;
    /// `Reload`: re-read and apply the configuration as SIGHUP does, and call
    /// \a reply once, on the loop, with an empty string on success, else the
    /// reason, which becomes the D-Bus error
    /// `org.dmsd.DriverMonitor1.Error.ReloadFailed`. Must return at once (the
    /// files are read off the loop). If \a reply is not called within
    /// DbusServiceOptions::reloadDeadline, or the service stops first, the
    /// caller gets that error instead; a later \a reply is ignored. Unset: the
    /// call fails.
    std::function<void(std::function<void(const std::string&)> reply)> reload;
    /// The service became available on the bus (name owned) or stopped being so
    /// (connection failed, dropped, name refused); \a reason is empty when available.
    std::function<void(bool available, const std::string& reason)> availabilityChanged;
};

/// Tuning, mainly for tests.
struct DbusServiceOptions {
    std::chrono::milliseconds initialBackoff{500}; ///< first reconnect delay
    std::chrono::milliseconds maxBackoff{30000};   ///< delays double up to this
    std::chrono::milliseconds flushTimeout{250};   ///< bound of the final flush in stop()
    /// Reload answers within this, success or error (the default D-Bus client
    /// timeout is 25 s).
    std::chrono::milliseconds reloadDeadline{15000};
};

/// Health of the bus connection, for `GetStatus` and logs.
struct DbusStatus {
    bool connected = false;     ///< socket open (authenticating or running)
    bool nameOwned = false;     ///< org.dmsd.DriverMonitor1 acquired: the API is reachable
    std::string lastError;      ///< last connection problem, empty if none since the last success
    std::uint64_t connects = 0; ///< connection attempts that reached name ownership
    std::uint64_t failures = 0; ///< failed or dropped connections
    std::uint64_t signalsDropped = 0; ///< signals not sent because the bus was unavailable
};

/// The `org.dmsd.DriverMonitor1` service object.
///
/// Setters store the value (served by `Get`/`GetAll` even while disconnected,
/// and after a reconnect) and emit `PropertiesChanged` only when the value
/// differs from the stored one.
class DbusService {
public:
    /// \a settings.bus: "system", "session", or a D-Bus address such as
    /// "unix:path=/run/x/bus". Nothing happens before start().
    DbusService(boost::asio::io_context& io, DbusSettings settings, DbusCallbacks callbacks,
                DbusServiceOptions options = {});
    /// Stops (bounded flush, close) if still running.
    ~DbusService();
    DbusService(const DbusService&) = delete;
    DbusService& operator=(const DbusService&) = delete;

    /// Connects and requests the name asynchronously. A failure is reported
    /// (log, status(), availabilityChanged) and retried with backoff.
    void start();
    /// Flushes queued messages (bounded by DbusServiceOptions::flushTimeout),
    /// closes the connection and cancels retries. Idempotent.
    void stop();

    DbusStatus status() const;

    void setState(ServiceState state);
    /// Kinds currently raised, by contract name ("DROWSINESS", ...).
    void setActiveAlerts(std::vector<std::string> kinds);
    /// Same, from the engine's active alerts (in kind-code order); also sets
    /// ActiveAlertLevels.
    void setActiveAlerts(const std::vector<ActiveAlert>& alerts);
    /// `ActiveAlertLevels` (a{ss}): kind -> level ("warning", "critical", ...),
    /// in kind-code order.
    void setActiveAlertLevels(std::vector<std::pair<std::string, std::string>> levels);
    /// Last face state ("AWAKE", "SLEEPY", ...) or "UNKNOWN".
    void setDriverState(const std::string& state);
    void setLastAnalysisUs(std::uint64_t realtimeUs);
    void setConfigVersion(const std::string& version);
    /// Last rejection reason; empty clears it.
    void setConfigError(const std::string& error);

    /// `AlertRaised(kind, level, confidence, timestamp_us, details_json)`.
    /// details_json is `{"event":"raised"|"level_changed","sequence_id":N,"evidence":{...}}`.
    void emitAlertRaised(const AlertEvent& event, std::uint64_t timestampUs);
    /// `AlertCleared(kind, timestamp_us)`.
    void emitAlertCleared(AlertKind kind, std::uint64_t timestampUs);
    /// Dispatches on event.type: Raised and LevelChanged -> AlertRaised, Cleared -> AlertCleared.
    void emitAlert(const AlertEvent& event, std::uint64_t timestampUs);

    class Impl;

private:
    std::shared_ptr<Impl> impl_;
};

} // namespace dmsd
