#pragma once

/// \file
/// `dmsd run`: the long-running service. The Daemon wires the stages around
/// one asio io_context (docs/architecture.md, stages and threads) and owns the lifecycle:
///
///   Capture (GStreamer threads) -> FramePath (sampler thread) -> post to loop
///   -> LatestWinsPump -> AnalysisScheduler -> AlertEngine
///   -> AlertDispatcher -> CAN, D-Bus, then journal, snapshots.
///
/// Each job beyond the wiring is a class of its own:
///  - daemon/ota_supervisor.h: reloads, probation, rollback, last known good
///    (the Daemon is its OtaTarget: it applies the parts that changed);
///  - llm/model_health.h: the model server's health check and warm-up, re-run
///    while it is down;
///  - llm/latest_wins.h: one sequence in flight, one waiting;
///  - notify/alert_dispatcher.h: the vehicle first, the alert path timed;
///  - daemon/status_reporter.h: GetStatus and STATUS=;
///  - daemon/systemd_notify.h: sd_notify and the worker watchdog.
///
/// What stays here: start and stop, the capture and its sampler thread, the
/// camera and model state feeding the engine, the timers (tick, watchdog).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "alerts/alert_engine.h"
#include "config/config.h"
#include "config/watcher.h"
#include "daemon/metrics_exporter.h"
#include "daemon/ota_supervisor.h"
#include "daemon/status_reporter.h"
#include "daemon/systemd_notify.h"
#include "llm/analysis_scheduler.h"
#include "llm/context_budget.h"
#include "llm/latest_wins.h"
#include "llm/model_backend.h"
#include "llm/model_health.h"
#include "notify/alert_dispatcher.h"
#include "notify/can_notifier.h"
#include "notify/dbus_service.h"
#include "notify/journal.h"
#include "notify/snapshots.h"
#include "pipeline/capture.h"
#include "pipeline/frame_path.h"
#include "vision/vision_stage.h"

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
    /// `dmsd run --verbose`: log at debug, over `log.level`, with the code
    /// position on stderr lines.
    bool verbose = false;
};

/// What tests put in place of the hardware and of healthy threads (the
/// `dmsd-testbed` executable built under test/). The shipped `dmsd run`
/// leaves every seam empty.
struct DaemonSeams {
    /// Opens the CAN socket of `notify.can.interface`; empty: SocketCAN
    /// (openSocketCan). Tests hand in openUnixCanStandIn.
    CanNotifier::Opener canOpener;
    /// Wraps the camera as the sampler thread reads it; empty: the camera
    /// itself. \a stop becomes true, and is notified (std::atomic::notify_all),
    /// when the sampler thread must end. Tests wrap it in a source that stalls.
    std::function<std::unique_ptr<FrameSource>(FrameSource& camera, const std::atomic<bool>& stop)>
        wrapFrameSource;
};

class Daemon final : private OtaTarget {
public:
    Daemon(Config config, DaemonOptions options, DaemonSeams seams = {});
    ~Daemon() override;
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    /// Runs until SIGTERM/SIGINT; returns the process exit code.
    int run();

    /// Re-reads and applies the configuration (SIGHUP, D-Bus Reload, file
    /// change): the files are read on the loader thread (never on the loop),
    /// the result is applied on the loop, then \a done (if any) is called on
    /// the loop with empty on success (or nothing to do), else the reason.
    void reload(const std::string& trigger, std::function<void(const std::string&)> done = nullptr);

    /// The JSON of D-Bus GetStatus (docs/interfaces.md section 4).
    std::string statusJson() const;
    /// The content of the metrics file (daemon/metrics_exporter.h).
    std::string metricsText() const;

private:
    using Clock = std::chrono::steady_clock;

    const Config& config() const { return ota_.running(); }

    // lifecycle
    void start();
    void shutdown(const std::string& reason);
    void waitSignals();

    // camera: capture and the sampler thread
    void startCapture();
    void stopCapture();
    void startFramePath();
    void stopFramePath();
    void onCaptureEvent(const CaptureEvent& event);
    void onSkipped(const SkippedWindow& window);

    // per-frame vision
    void startVision();
    void stopVision();
    void onVisionResult(const DriverSignals& signals, const std::optional<EvidenceFrame>& evidence);
    void onVisionFailed();
    /// Stretches the sampling window to vision.quiet_interval while vision
    /// sees a quiet scene and no alert is raised; back at once otherwise.
    void setVisionQuiet(bool quiet);

    // analysis
    void startAnalysis();
    void onResult(SequenceResult result);
    /// A health check's outcome (ModelHealthWatcher).
    void onModelCheck(const ModelCheck& check);
    void setModelHealth(bool ok, const std::string& problem);

    // context budget (llm/context_budget.h, docs/tuning.md "Context budget")
    /// Measures what an image costs on client_ (once per client), then fits.
    void startBudget();
    boost::asio::awaitable<void> measureBudget(ModelClientPtr client, std::uint64_t generation,
                                               BudgetPrompt prompt, JpegImage image, int width,
                                               int height);
    void onBudgetMeasured(const PromptMeasurement& measured, int width, int height);
    /// Plans from the last measurement and applies what the plan changes.
    void fitBudget();
    /// A server's refusal naming its context (OpenAI API): learn it and fit again.
    void learnContext(const SequenceResult& result);
    /// The frame path's settings: the configuration's, with the fit's changes.
    SamplingSettings effectiveSampling() const;
    EncodeSettings effectiveEncode() const;

    // decisions and notifiers
    /// Sends \a events to every sink. \a answersAt: when the answers that caused
    /// them were complete (the alert path's start).
    void dispatch(const std::vector<AlertEvent>& events,
                  std::optional<std::chrono::milliseconds> latency = std::nullopt,
                  std::optional<Clock::time_point> answersAt = std::nullopt);
    std::optional<DecidingSequence> decidingSequence(std::uint64_t sequenceId) const;
    void startNotifiers(bool dbus, bool can, bool snapshots);
    void publishProperties();
    void updateState();
    std::string statusLine() const;
    StatusSnapshot statusSnapshot() const;
    EngineTime engineNow() const;

    // timers
    void armTick();
    void onTick();
    void armWatchdog();

    // OtaTarget: how the supervisor changes and judges the running daemon
    ConfigHealth health() const override;
    void apply(const Config& next, const std::vector<ConfigPart>& parts) override;
    void reloading(const std::string& status) override;
    void reloaded() override;
    void rejected(const std::string& status) override;
    void configStateChanged() override;

    boost::asio::io_context io_;
    DaemonOptions options_;
    DaemonSeams seams_;
    Journal& journal_;
    SystemdNotifier notifier_;
    StatusReporter reporter_{notifier_};
    WorkerWatchdog watchdog_;
    std::size_t loopWorker_ = 0;
    std::size_t samplerWorker_ = 0;
    std::size_t captureWorker_ = 0;
    Clock::time_point startedAt_ = Clock::now();
    /// Owns the configuration in force (config()); declared early: most
    /// members are built from it.
    OtaSupervisor ota_;
    HealthState health_;
    bool ready_ = false;
    bool stopping_ = false;

    // camera
    std::unique_ptr<Capture> capture_;
    std::unique_ptr<FrameSource> samplerSource_; ///< seams_.wrapFrameSource's, if any
    std::unique_ptr<FramePath> framePath_;
    std::thread samplerThread_;
    std::atomic<bool> samplerStop_{false};
    std::atomic<std::uint64_t> captureGeneration_{0};
    std::optional<Clock::time_point> cameraLostAt_;

    // per-frame vision: the sampler thread offers frames to the stage it loads
    // here; the loop replaces it (reloads) and reads its stats
    std::atomic<std::shared_ptr<VisionStage>> vision_;
    std::atomic<std::uint64_t> visionGeneration_{0};
    std::optional<DriverSignals> lastVisionSignals_; ///< for onsets (vision/signals.h)
    EvidenceFrames visionFrames_; ///< the pictures of vision's alerts (loop thread)
    std::uint64_t visionOnsets_ = 0;
    bool visionQuiet_ = false; ///< the sampling window is vision.quiet_interval now

    // analysis
    std::vector<HttpTransportPtr> transports_; ///< one per server of llm.url
    ModelClientPtr client_;
    int clientNumCtx_ = 0;  ///< the num_ctx client_ asks with (the fit may raise it)
    LlmSettings clientLlm_; ///< what transports_, client_ and scheduler_ were made for
    AnalysisSchedulerPtr scheduler_;
    LatestWinsPump pump_;
    ModelHealthWatcher modelHealth_;
    std::optional<Clock::time_point> modelLostAt_;
    /// The client the budget was measured with (a new client measures again).
    ModelClientPtr budgetClient_;
    std::uint64_t budgetGeneration_ = 0;
    ContextReport budget_;
    PromptMeasurement budgetMeasured_;
    /// The server's context as it named it in a refusal (OpenAI API).
    std::optional<std::int64_t> learnedContext_;
    /// The fit's changes to the frame path, and those the running one was built with.
    struct FrameFit {
        std::optional<int> frames;
        std::optional<ImageLayout> layout;
        friend bool operator==(const FrameFit&, const FrameFit&) = default;
    };
    FrameFit frameFit_;
    FrameFit runningFrameFit_;
    /// Sequences in a row without any usable answer (errors of any kind but
    /// cancellation); reset by an answer or a new client.
    int failedSequences_ = 0;
    SequenceCounters sequences_;
    /// Recent results, for snapshots of the deciding sequence.
    std::deque<std::shared_ptr<const SequenceResult>> recent_;
    std::optional<std::uint64_t> lastAnalysisUs_;
    Histogram sequenceLatency_{sequenceLatencyBucketsSeconds()};

    // decisions and notifiers
    AlertEngine engine_;
    std::unique_ptr<DbusService> dbus_;
    std::unique_ptr<CanNotifier> can_;
    std::unique_ptr<SnapshotWriter> snapshots_;
    AlertDispatcher dispatcher_;
    MetricsExporter metrics_;

    std::unique_ptr<ConfigWatcher> watcher_;
    boost::asio::signal_set signals_;
    boost::asio::steady_timer tickTimer_;
    boost::asio::steady_timer watchdogTimer_;
    std::optional<std::chrono::microseconds> watchdogInterval_;
    Clock::time_point lastJournalFlush_ = Clock::now();

    /// Reads the configuration files for reloads (OtaSupervisor::loadFiles), so
    /// that a slow or hostile file never blocks the loop. One thread: reloads
    /// are read and applied in the order they were asked for. Declared last:
    /// joined before anything it posts to goes.
    boost::asio::thread_pool loader_{1};
};

/// `dmsd run` as a process: loads the configuration (errors listed on stderr),
/// runs a Daemon until SIGTERM/SIGINT. Returns 0, or 2 when the configuration
/// is invalid or the daemon cannot start.
int runService(const DaemonOptions& options, DaemonSeams seams = {});

} // namespace dmsd
