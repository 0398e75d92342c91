#pragma once

/// \file
/// The sd_notify protocol (READY, RELOADING, STOPPING, STATUS, WATCHDOG) and a
/// watchdog that pings systemd only while every worker thread has stamped
/// recently (after Envoy's GuardDog): a stalled worker means WATCHDOG=trigger.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd {

/// Thin wrapper over sd_notify(3). A no-op when NOTIFY_SOCKET is unset.
class SystemdNotifier {
public:
    /// READY=1 with a STATUS line.
    void ready(std::string_view status);
    /// RELOADING=1 with MONOTONIC_USEC (systemd >= 253 requires it with notify-reload).
    void reloading(std::string_view status);
    void stopping(std::string_view status);
    void status(std::string_view status);
    void watchdogPing();
    void watchdogTrigger();
    /// The watchdog interval systemd asked for (WATCHDOG_USEC for this pid), if any.
    static std::optional<std::chrono::microseconds> watchdogInterval();

private:
    void send(const std::string& message);
};

/// Workers stamp their liveness; the supervisor asks whether all are fresh.
/// stamp() is lock-free and safe from any thread (the GStreamer streaming thread,
/// the sampler thread, the event loop).
class WorkerWatchdog {
public:
    using Clock = std::chrono::steady_clock;
    static constexpr std::size_t kMaxWorkers = 16;

    /// Registers a worker that must stamp at least every \a maxSilence. Not thread-safe
    /// with respect to other register calls; call during start-up.
    std::size_t addWorker(std::string name, std::chrono::milliseconds maxSilence);
    void stamp(std::size_t worker, Clock::time_point now = Clock::now());
    /// Suspends/resumes supervision of a worker (e.g. capture while it waits for backoff
    /// on purpose has its own fault alert and must not get the whole daemon restarted).
    void setSupervised(std::size_t worker, bool supervised);
    /// Names of the workers whose last stamp is older than their limit at \a now.
    std::vector<std::string> stalled(Clock::time_point now = Clock::now()) const;

private:
    struct Worker {
        std::string name;
        std::chrono::milliseconds maxSilence{0};
        std::atomic<std::int64_t> lastStampNs{0};
        std::atomic<bool> supervised{true};
    };
    std::array<Worker, kMaxWorkers> workers_{};
    std::atomic<std::size_t> count_{0};
};

} // namespace dmsd
