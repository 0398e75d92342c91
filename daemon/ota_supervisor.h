#pragma once

/// \file
/// Over-the-air configuration updates, as a state machine over the running
/// configuration (docs/ota.md):
///
///  - reload: the merged files are loaded and validated as a whole
///    (loadConfig); a rejected configuration leaves the running one in force
///    and says why (ConfigError, journal); a configuration that was rolled
///    back is not applied again until a new file arrives; an identical one
///    changes nothing; otherwise only the parts that changed are applied,
///    through the OtaTarget;
///  - probation: a new configuration that stays unusable (camera or model
///    server) for `probation` while the previous one was healthy is rolled
///    back to the previous one (or to the last known good, when the previous
///    one was not healthy either); one that runs healthy for `probation`
///    becomes the last known good, kept atomically in the state directory
///    and put back on probation at the next start if the files changed;
///  - a configuration restored by a rollback that is not the last known good
///    (it ran healthy but had not finished its probation) is on probation
///    again, against the last known good, and becomes the last known good
///    once it has run healthy for `probation`.
///
/// The supervisor owns the configuration in force (running()). It knows the
/// daemon only as an OtaTarget and time only through the clock it is given, so
/// it is tested with fakes, without processes.
///
/// Threading: single-threaded (the daemon's loop), except loadFiles(), which
/// may run on any thread.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/loader.h"
#include "notify/journal.h"

namespace dmsd {

/// Whether the configuration in force works.
struct ConfigHealth {
    bool usable = false;
    /// When not usable: what is unusable, naming the culprit ("camera
    /// file:/x.mp4 unusable (...)", "model server unusable (...)").
    std::string problem;
};

/// What the supervisor drives: the running daemon, or a fake in tests.
class OtaTarget {
public:
    virtual ~OtaTarget() = default;

    /// Camera streaming and model server usable?
    virtual ConfigHealth health() const = 0;
    /// Puts \a next in force restarting only \a parts (OtaSupervisor::running()
    /// already is \a next).
    virtual void apply(const Config& next, const std::vector<ConfigPart>& parts) = 0;
    /// A reload or a rollback starts (systemd: RELOADING=1 with \a status).
    virtual void reloading(const std::string& status) = 0;
    /// It is done (systemd: READY=1; the service state is re-evaluated).
    virtual void reloaded() = 0;
    /// A reload was rejected; the running configuration stays (systemd: STATUS=).
    virtual void rejected(const std::string& status) = 0;
    /// The version in force or the ConfigError text may have changed (D-Bus properties).
    virtual void configStateChanged() = 0;
};

struct OtaOptions {
    /// The main file; its conf.d/ drop-ins are read with it.
    std::filesystem::path configPath = "/etc/dmsd/dmsd.yaml";
    /// Where `last-good.yaml` is kept.
    std::filesystem::path stateDir = "/var/lib/dmsd";
    /// How long a new configuration may stay unusable, and must run healthy.
    std::chrono::milliseconds probation{30000};
    /// Runs file writes (the last known good, with its fsync) off the loop;
    /// empty: at once, on the caller's thread (tests).
    std::function<void(std::function<void()>)> offLoop;
};

/// GetStatus counters.
struct OtaCounters {
    std::uint64_t reloadsApplied = 0;
    std::uint64_t reloadsRejected = 0;
    std::uint64_t rollbacks = 0;
};

class OtaSupervisor {
public:
    using Clock = std::chrono::steady_clock;

    /// \a running: the configuration the daemon starts with.
    OtaSupervisor(Config running, OtaOptions options, OtaTarget& target, Journal& journal,
                  std::function<Clock::time_point()> now = Clock::now);

    /// At start: loads the last known good configuration; the starting one is on
    /// probation against it (a configuration that arrived while the daemon was
    /// down), or, when there is none, until it has run healthy once.
    void start();

    /// Re-reads the files and applies them: applyLoaded(trigger, loadFiles()).
    /// Returns empty on success or when nothing changed, else the reason.
    std::string reload(const std::string& trigger);

    /// Reads and validates the files as they are now. Touches nothing of the
    /// supervisor's state: the daemon calls it on a worker thread, so that a
    /// slow file system never blocks the loop.
    ConfigLoad loadFiles() const;

    /// Applies what loadFiles() read (SIGHUP, D-Bus Reload, file change), on
    /// the loop. Returns empty on success or when nothing changed, else the reason.
    std::string applyLoaded(const std::string& trigger, ConfigLoad load);

    /// Judges the configuration on probation (call periodically).
    void tick();

    const Config& running() const { return running_; }
    /// Why the last reload was rejected or rolled back; empty after a success.
    const std::string& configError() const { return configError_; }
    OtaCounters counters() const { return counters_; }
    bool onProbation() const { return probation_.has_value(); }
    const std::optional<Config>& lastGood() const { return lastGood_; }
    /// `<stateDir>/last-good.yaml`.
    std::filesystem::path lastGoodPath() const;

private:
    void rollback(const std::string& why);
    void persistLastGood();
    void loadLastGood();

    struct Probation {
        Config previous;
        bool previousHealthy = false;
        Clock::time_point since;
        std::optional<Clock::time_point> unusableSince;
    };

    Config running_;
    OtaOptions options_;
    OtaTarget& target_;
    Journal& journal_;
    std::function<Clock::time_point()> now_;
    std::optional<Probation> probation_;
    std::optional<Config> lastGood_;
    std::string rejectedEffective_; ///< effective JSON of a rolled-back configuration
    std::string configError_;
    OtaCounters counters_;
};

} // namespace dmsd
