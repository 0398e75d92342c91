#include "daemon/systemd_notify.h"

#include <stdexcept>
#include <time.h>
#include <unistd.h>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

namespace dmsd {

void SystemdNotifier::send(const std::string& message) {
    // The return value is deliberately ignored (sd_notify(3) recommends it): not
    // running under systemd is not an error.
    (void)sd_notify(0, message.c_str());
}

void SystemdNotifier::ready(std::string_view status) {
    send(fmt::format("READY=1\nSTATUS={}", status));
}

void SystemdNotifier::reloading(std::string_view status) {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const std::uint64_t usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
                               static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
    send(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", usec, status));
}

void SystemdNotifier::stopping(std::string_view status) {
    send(fmt::format("STOPPING=1\nSTATUS={}", status));
}

void SystemdNotifier::status(std::string_view status) {
    send(fmt::format("STATUS={}", status));
}

void SystemdNotifier::watchdogPing() {
    send("WATCHDOG=1");
}

void SystemdNotifier::watchdogTrigger() {
    send("WATCHDOG=trigger");
}

std::optional<std::chrono::microseconds> SystemdNotifier::watchdogInterval() {
    std::uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        return std::chrono::microseconds(usec);
    }
    return std::nullopt;
}

std::size_t WorkerWatchdog::addWorker(std::string name, std::chrono::milliseconds maxSilence) {
    const std::size_t index = count_.load();
    if (index >= kMaxWorkers) {
        throw std::logic_error("WorkerWatchdog: too many workers");
    }
    workers_[index].name = std::move(name);
    workers_[index].maxSilence = maxSilence;
    workers_[index].lastStampNs = Clock::now().time_since_epoch().count();
    count_ = index + 1;
    return index;
}

void WorkerWatchdog::stamp(std::size_t worker, Clock::time_point now) {
    workers_[worker].lastStampNs.store(now.time_since_epoch().count(), std::memory_order_relaxed);
}

void WorkerWatchdog::setSupervised(std::size_t worker, bool supervised) {
    workers_[worker].supervised = supervised;
    stamp(worker);
}

std::vector<std::string> WorkerWatchdog::stalled(Clock::time_point now) const {
    std::vector<std::string> names;
    const std::size_t count = count_.load();
    for (std::size_t i = 0; i < count; ++i) {
        const Worker& worker = workers_[i];
        if (!worker.supervised.load()) {
            continue;
        }
        const Clock::time_point last{
            Clock::duration(worker.lastStampNs.load(std::memory_order_relaxed))};
        if (now - last > worker.maxSilence) {
            names.push_back(worker.name);
        }
    }
    return names;
}

} // namespace dmsd
