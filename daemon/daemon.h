#pragma once

/// \file
/// `dmsd run`: the long-running service. Wires capture, sampling, analysis,
/// decisions and notifiers around one asio io_context (DESIGN.md, data flow):
///
///   Capture (GStreamer threads) -> FramePath (sampler thread) -> post to loop
///   -> AnalysisScheduler (latest-wins: one sequence in flight, one waiting)
///   -> AlertEngine -> D-Bus, CAN, journal, snapshots.
///
/// It also owns the lifecycle under systemd (READY/STATUS/STOPPING, a watchdog
/// fed only while every worker is alive) and over-the-air configuration
/// reloads (SIGHUP, D-Bus Reload, files renamed into the config directory):
/// validated as a whole, applied atomically restarting only the parts whose
/// settings changed, rolled back to the last known good configuration when the
/// new one leaves the camera or the model server unusable.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "alerts/alert_engine.h"
#include "config/loader.h"
#include "config/watcher.h"
#include "daemon/systemd_notify.h"
#include "llm/analysis_scheduler.h"
#include "llm/model_backend.h"
#include "notify/can_notifier.h"
#include "notify/dbus_service.h"
#include "notify/journal.h"
#include "notify/snapshots.h"
#include "pipeline/capture.h"
#include "pipeline/frame_path.h"

namespace dmsd {

struct DaemonOptions {
    std::filesystem::path configPath = "/etc/dmsd/dmsd.yaml";
    /// Where the last known good configuration is kept ($STATE_DIRECTORY).
    std::filesystem::path stateDir = "/var/lib/dmsd";
    /// A new configuration that leaves the camera or model unusable this long
    /// (while the previous one was fine) is rolled back; one that runs healthy
    /// this long becomes the last known good.
    std::chrono::milliseconds probation{30000};
    std::chrono::milliseconds tickInterval{200};
    /// READY=1 is sent at the first frame, or after this with State=degraded
    /// and CAMERA_FAULT (so a dead camera is reported, not restarted in a loop).
    std::chrono::milliseconds readyTimeout{12000};
    std::chrono::milliseconds healthRetry{5000};
    std::chrono::milliseconds reloadDebounce{100};
    /// Test hook (DMSD_TEST_STALL=sampler): the sampler thread stops stamping
    /// after its first sequence, so the watchdog must send WATCHDOG=trigger.
    bool stallSamplerForTest = false;
    /// Test hook (DMSD_TEST_CAN_SOCKET=PATH): CAN frames go to the AF_UNIX
    /// SOCK_SEQPACKET socket listening at PATH, one `struct can_frame` per
    /// packet, instead of a CAN_RAW socket (for machines without AF_CAN).
    std::filesystem::path canSocketForTest;
};

/// Counters of GetStatus beyond those of the modules.
struct DaemonCounters {
    std::uint64_t sequencesAnalysed = 0;
    std::uint64_t sequencesSkippedStatic = 0;
    std::uint64_t sequencesSuperseded = 0;
    std::uint64_t reloadsApplied = 0;
    std::uint64_t reloadsRejected = 0;
    std::uint64_t rollbacks = 0;
};

class Daemon {
public:
    Daemon(Config config, DaemonOptions options);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    /// Runs until SIGTERM/SIGINT; returns the process exit code.
    int run();

    /// Re-reads and applies the configuration (SIGHUP, D-Bus Reload, file
    /// change). Returns empty on success (or nothing to do), else the reason.
    std::string reload(const std::string& trigger);

    /// The JSON of D-Bus GetStatus (CONTRACT.md section 4).
    std::string statusJson() const;

private:
    using Clock = std::chrono::steady_clock;

    // lifecycle
    void start();
    void shutdown(const std::string& reason);
    void waitSignals();

    // frame path
    void startCapture();
    void stopCapture();
    void startFramePath();
    void stopFramePath();
    void onCaptureEvent(const CaptureEvent& event);
    void onSequence(EncodedSequencePtr sequence);
    void onSkipped(const SkippedWindow& window);

    // analysis
    void startAnalysis(bool newClient);
    void submit(EncodedSequencePtr sequence);
    void onResult(SequenceResult result);
    void checkModelHealth();
    void scheduleHealthCheck();
    void setModelHealth(bool ok, const std::string& problem);

    // decisions and notifiers
    /// Sends \a events to the journal, D-Bus, CAN and snapshots. \a answersAt:
    /// when the answers that caused them were complete (the alert path's start).
    void dispatch(const std::vector<AlertEvent>& events,
                  std::optional<std::chrono::milliseconds> latency = std::nullopt,
                  std::optional<Clock::time_point> answersAt = std::nullopt);
    void startNotifiers(bool dbus, bool can, bool snapshots);
    void publishProperties();
    void updateState();
    std::string statusLine() const;
    EngineTime engineNow() const;

    // timers
    void armTick();
    void onTick();
    void armWatchdog();

    // configuration
    void applyConfig(const Config& next, const std::vector<ConfigPart>& parts);
    void checkProbation();
    void rollback(const std::string& why);
    void persistLastGood();
    void loadLastGood();

    boost::asio::io_context io_;
    DaemonOptions options_;
    Config config_;
    Journal& journal_;
    SystemdNotifier notifier_;
    WorkerWatchdog watchdog_;
    std::size_t loopWorker_ = 0;
    std::size_t samplerWorker_ = 0;
    std::size_t captureWorker_ = 0;
    Clock::time_point startedAt_ = Clock::now();

    std::unique_ptr<Capture> capture_;
    std::unique_ptr<FramePath> framePath_;
    std::thread samplerThread_;
    std::atomic<bool> samplerStop_{false};
    std::atomic<std::uint64_t> captureGeneration_{0};
    CameraState cameraState_ = CameraState::Stopped;
    std::optional<Clock::time_point> cameraLostAt_;
    std::string cameraProblem_;

    ModelClientPtr client_;
    AnalysisSchedulerPtr scheduler_;
    std::optional<AnalysisScheduler::Ticket> inFlight_;
    EncodedSequencePtr waiting_;
    bool modelOk_ = false;
    bool healthCheckRunning_ = false;
    std::string modelProblem_;
    std::optional<Clock::time_point> modelLostAt_;
    std::uint64_t analysisGeneration_ = 0;

    AlertEngine engine_;
    std::unique_ptr<DbusService> dbus_;
    std::unique_ptr<CanNotifier> can_;
    std::unique_ptr<SnapshotWriter> snapshots_;
    std::unique_ptr<ConfigWatcher> watcher_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer tickTimer_;
    boost::asio::steady_timer watchdogTimer_;
    boost::asio::steady_timer healthTimer_;
    std::optional<std::chrono::microseconds> watchdogInterval_;

    /// Recent results, for snapshots of the deciding sequence and GetStatus.
    std::deque<std::shared_ptr<const SequenceResult>> recent_;
    std::optional<std::uint64_t> lastAnalysisUs_;

    ServiceState state_ = ServiceState::Starting;
    bool ready_ = false;
    bool stopping_ = false;
    std::string lastStatus_;
    DaemonCounters counters_;
    /// Alert path: answers complete -> this event's D-Bus signal and CAN frame
    /// handed to the kernel (µs, last 1024 events), and its worst case.
    LatencyWindow alertPath_{1024};
    std::uint64_t alertPathEvents_ = 0;
    double alertPathMaxUs_ = 0;
    Clock::time_point lastJournalFlush_ = Clock::now();

    // over-the-air configuration
    struct Probation {
        Config previous;
        bool previousHealthy = false;
        Clock::time_point since;
        std::optional<Clock::time_point> unusableSince;
    };
    std::optional<Probation> probation_;
    std::optional<Config> lastGood_;
    std::string rejectedEffective_; ///< effective JSON of a rolled-back configuration
    std::string configError_;
};

} // namespace dmsd
