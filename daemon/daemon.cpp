#include "daemon/daemon.h"

#include <algorithm>
#include <signal.h>
#include <system_error>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/clock.h"
#include "base/json.h"
#include "base/log.h"
#include "base/version.h"
#include "llm/analysis.h"
#include "llm/llm_metrics.h"

namespace dmsd {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

std::string joinParts(const std::vector<ConfigPart>& parts) {
    std::string out;
    for (ConfigPart part : parts) {
        if (!out.empty()) {
            out += ", ";
        }
        out += configPartName(part);
    }
    return out.empty() ? "nothing" : out;
}

bool contains(const std::vector<ConfigPart>& parts, ConfigPart part) {
    return std::find(parts.begin(), parts.end(), part) != parts.end();
}

} // namespace

Daemon::Daemon(Config config, DaemonOptions options)
    : options_(std::move(options)), config_(std::move(config)), journal_(Journal::process()),
      engine_(config_.alerts), signals_(io_), tickTimer_(io_), watchdogTimer_(io_),
      healthTimer_(io_) {
    loopWorker_ = watchdog_.addWorker("event loop", 5s);
    samplerWorker_ = watchdog_.addWorker("sampler", 5s);
    captureWorker_ = watchdog_.addWorker("capture", 20s);
    watchdogInterval_ = SystemdNotifier::watchdogInterval();
}

Daemon::~Daemon() {
    stopFramePath();
    stopCapture();
}

EngineTime Daemon::engineNow() const {
    return std::chrono::duration_cast<EngineTime>(Clock::now() - startedAt_);
}

int Daemon::run() {
    start();
    io_.run();
    // Everything that owns threads is stopped before the loop's objects go.
    stopFramePath();
    stopCapture();
    snapshots_.reset();
    return 0;
}

void Daemon::start() {
    log::notice("dmsd {} starting: {}", kVersion, summary(config_));
    journal_.daemonStarted(kVersion, config_.version);
    notifier_.status(fmt::format("starting: configuration {}", config_.version));
    loadLastGood();
    // At start the previous configuration is the last known good one, if any:
    // a configuration that arrived while the daemon was down is on probation too.
    if (lastGood_ && effectiveConfigJson(*lastGood_) != effectiveConfigJson(config_)) {
        probation_ = Probation{*lastGood_, true, Clock::now(), std::nullopt};
    } else if (!lastGood_) {
        probation_ = Probation{config_, false, Clock::now(), std::nullopt};
    }

    waitSignals();
    startNotifiers(true, true, true);
    startAnalysis(true);
    startCapture();
    startFramePath();

    watcher_ = std::make_unique<ConfigWatcher>(io_, options_.configPath, options_.reloadDebounce,
                                               [this](const std::vector<std::string>& files) {
                                                   std::string names;
                                                   for (const std::string& f : files) {
                                                       names += (names.empty() ? "" : ", ") + f;
                                                   }
                                                   reload("file change: " + names);
                                               });
    if (std::string error = watcher_->start(); !error.empty()) {
        log::warning("over-the-air updates by file will not be noticed: {}; SIGHUP and D-Bus "
                     "Reload still work",
                     error);
    }
    armTick();
    armWatchdog();
    publishProperties();
    updateState();
}

void Daemon::waitSignals() {
    signals_.add(SIGTERM);
    signals_.add(SIGINT);
    signals_.add(SIGHUP);
    signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
        if (ec) {
            return;
        }
        if (sig == SIGHUP) {
            reload("SIGHUP");
            waitSignals();
            return;
        }
        shutdown(sig == SIGTERM ? "SIGTERM" : "SIGINT");
    });
}

void Daemon::shutdown(const std::string& reason) {
    if (stopping_) {
        return;
    }
    stopping_ = true;
    log::notice("stopping ({})", reason);
    state_ = ServiceState::Stopping;
    notifier_.stopping(fmt::format("stopping ({})", reason));
    journal_.daemonStopping(reason);
    if (dbus_) {
        dbus_->setState(ServiceState::Stopping);
    }
    if (watcher_) {
        watcher_->stop();
    }
    tickTimer_.cancel();
    watchdogTimer_.cancel();
    healthTimer_.cancel();
    signals_.cancel();
    if (scheduler_) {
        scheduler_->shutdown();
    }
    if (client_) {
        client_->cancelAll();
    }
    stopFramePath();
    stopCapture();
    if (can_) {
        can_->stop();
    }
    if (dbus_) {
        dbus_->stop();
    }
    journal_.flushSuppressed();
    io_.stop();
}

// ---------------------------------------------------------------- frame path

void Daemon::startCapture() {
    CaptureOptions options;
    options.mode = CaptureMode::Live;
    const std::uint64_t generation = ++captureGeneration_;
    options.onEvent = [this, generation](const CaptureEvent& event) {
        boost::asio::post(io_, [this, generation, event] {
            if (generation == captureGeneration_.load() && !stopping_) {
                onCaptureEvent(event);
            }
        });
    };
    capture_ = std::make_unique<Capture>(config_.capture, options);
    cameraState_ = CameraState::Starting;
    if (auto error = capture_->start()) {
        // Live sources are retried by Capture itself; a settings error (bad source)
        // cannot get better by retrying, but the daemon keeps reporting the fault.
        cameraProblem_ = error->message;
        cameraState_ = capture_->state();
        journal_.cameraFault(config_.capture.source, error->message);
        cameraLostAt_ = Clock::now();
        dispatch(engine_.observeCamera(engineNow(), false));
    }
}

void Daemon::stopCapture() {
    if (capture_) {
        ++captureGeneration_;
        capture_->stop();
        capture_.reset();
    }
}

void Daemon::startFramePath() {
    if (!capture_) {
        return;
    }
    FramePathCallbacks callbacks;
    const std::uint64_t generation = captureGeneration_.load();
    const bool stall = options_.stallSamplerForTest;
    callbacks.onSequence = [this, generation, stall](EncodedSequencePtr sequence) {
        boost::asio::post(io_, [this, generation, sequence] {
            if (generation == captureGeneration_.load() && !stopping_) {
                onSequence(sequence);
            }
        });
        if (stall) {
            log::warning("test hook: the sampler thread stalls now (DMSD_TEST_STALL=sampler)");
            while (!samplerStop_.load()) {
                std::this_thread::sleep_for(50ms);
            }
        }
    };
    callbacks.onSkipped = [this, generation](const SkippedWindow& window) {
        boost::asio::post(io_, [this, generation, window] {
            if (generation == captureGeneration_.load() && !stopping_) {
                onSkipped(window);
            }
        });
    };
    framePath_ =
        std::make_unique<FramePath>(*capture_, config_.sampling, config_.encode, callbacks);
    samplerStop_ = false;
    samplerThread_ = std::thread([this] { framePath_->run(samplerStop_); });
}

void Daemon::stopFramePath() {
    samplerStop_ = true;
    if (samplerThread_.joinable()) {
        samplerThread_.join();
    }
    framePath_.reset();
}

void Daemon::onCaptureEvent(const CaptureEvent& event) {
    const CameraState previous = cameraState_;
    cameraState_ = event.state;
    const bool ok = event.state == CameraState::Streaming;
    switch (event.kind) {
    case CaptureEvent::Kind::Streaming: {
        std::optional<std::chrono::milliseconds> outage;
        if (cameraLostAt_) {
            outage = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                           *cameraLostAt_);
        }
        if (previous != CameraState::Starting || cameraLostAt_) {
            journal_.cameraRecovered(config_.capture.source, outage);
        }
        cameraLostAt_.reset();
        cameraProblem_.clear();
        if (!ready_) {
            ready_ = true;
            updateState();
            notifier_.ready(statusLine());
        }
        break;
    }
    case CaptureEvent::Kind::Warning:
        log::warning("camera {}: {}", config_.capture.source, event.message);
        break;
    case CaptureEvent::Kind::Error:
    case CaptureEvent::Kind::EndOfStream:
    case CaptureEvent::Kind::FrameTimeout:
        cameraProblem_ = event.message;
        if (!cameraLostAt_) {
            cameraLostAt_ = Clock::now();
        }
        journal_.cameraFault(config_.capture.source, event.message);
        break;
    case CaptureEvent::Kind::Restarting:
        log::info("camera {}: restarting (attempt {})", config_.capture.source, event.restarts);
        break;
    }
    dispatch(engine_.observeCamera(engineNow(), ok));
    updateState();
}

void Daemon::onSequence(EncodedSequencePtr sequence) {
    if (!scheduler_) {
        return;
    }
    if (inFlight_) {
        // Latest wins: a sequence waiting behind a busy server is replaced by the
        // newer one, so the analysis never falls behind the camera.
        if (waiting_) {
            ++counters_.sequencesSuperseded;
        }
        waiting_ = std::move(sequence);
        return;
    }
    submit(std::move(sequence));
}

void Daemon::onSkipped(const SkippedWindow& window) {
    ++counters_.sequencesSkippedStatic;
    dispatch(engine_.carryForward(engineNow(), window.lastSequenceId));
}

// ---------------------------------------------------------------- analysis

void Daemon::startAnalysis(bool newClient) {
    ++analysisGeneration_;
    inFlight_.reset();
    if (scheduler_) {
        scheduler_->shutdown();
        scheduler_.reset();
    }
    if (newClient) {
        if (client_) {
            client_->cancelAll();
        }
        client_ = createModelClient(io_.get_executor(), config_.llm);
        // The health state stays as it was until the new client's check says
        // otherwise: a reload must not make State flap to degraded and back.
        if (!modelOk_) {
            modelProblem_ = "checking " + config_.llm.server.url;
        }
        healthTimer_.cancel();
        healthCheckRunning_ = false;
        checkModelHealth();
    }
    scheduler_ = AnalysisScheduler::create(io_.get_executor(), client_, config_.llm.scheduler,
                                           config_.analyses, config_.encode.layout);
    if (waiting_ && !inFlight_) {
        auto next = std::move(waiting_);
        waiting_.reset();
        submit(std::move(next));
    }
}

void Daemon::submit(EncodedSequencePtr sequence) {
    const std::uint64_t generation = analysisGeneration_;
    inFlight_ = scheduler_->submit(std::move(sequence), [this, generation](SequenceResult result) {
        if (generation != analysisGeneration_ || stopping_) {
            return;
        }
        inFlight_.reset();
        onResult(std::move(result));
        if (waiting_ && !inFlight_ && scheduler_) {
            auto next = std::move(waiting_);
            waiting_.reset();
            submit(std::move(next));
        }
    });
}

void Daemon::onResult(SequenceResult result) {
    const Clock::time_point answersAt = Clock::now();
    if (result.metrics.cancelled) {
        return;
    }
    ++counters_.sequencesAnalysed;
    lastAnalysisUs_ = realtimeNowUs();
    auto shared = std::make_shared<const SequenceResult>(std::move(result));
    recent_.push_back(shared);
    while (recent_.size() > 8) {
        recent_.pop_front();
    }

    // A sequence of which every request failed to connect says the server is
    // gone: check its health (and keep checking) rather than wait for the next.
    bool anyAnswer = false;
    bool connectionFailed = false;
    for (AnalysisKind kind : kAllAnalyses) {
        const AnalysisError* error = shared->answers.error(kind);
        if (shared->answers.answered(kind)) {
            anyAnswer = true;
        } else if (error != nullptr && (error->kind == AnalysisError::Kind::ConnectionFailed ||
                                        error->kind == AnalysisError::Kind::Timeout)) {
            connectionFailed = true;
        }
    }
    if (anyAnswer && !modelOk_) {
        setModelHealth(true, {});
    } else if (!anyAnswer && connectionFailed && modelOk_) {
        setModelHealth(false,
                       fmt::format("model server {} is not answering", config_.llm.server.url));
        checkModelHealth();
    }

    dispatch(engine_.observe(engineNow(), shared->sequence ? shared->sequence->sequenceId : 0,
                             shared->answers),
             shared->metrics.latency, answersAt);
    if (dbus_) {
        dbus_->setDriverState(std::string(faceStateName(engine_.driverState())));
        dbus_->setLastAnalysisUs(*lastAnalysisUs_);
    }
    if (can_) {
        can_->setFaceState(engine_.driverState());
    }
    updateState();
}

void Daemon::checkModelHealth() {
    if (healthCheckRunning_ || stopping_) {
        return;
    }
    healthCheckRunning_ = true;
    const std::uint64_t generation = analysisGeneration_;
    boost::asio::co_spawn(
        io_,
        [this, generation, client = client_]() -> boost::asio::awaitable<void> {
            HealthReport report = co_await client->checkHealth();
            if (generation != analysisGeneration_ || stopping_) {
                co_return;
            }
            if (!report.usable()) {
                healthCheckRunning_ = false;
                setModelHealth(false, report.problem);
                scheduleHealthCheck();
                co_return;
            }
            std::optional<AnalysisError> error = co_await client->warmUp();
            if (generation != analysisGeneration_ || stopping_) {
                co_return;
            }
            healthCheckRunning_ = false;
            if (error) {
                setModelHealth(false,
                               fmt::format("warming up {} on {} failed: {}", config_.llm.model.name,
                                           config_.llm.server.url, error->message));
                scheduleHealthCheck();
                co_return;
            }
            setModelHealth(true, {});
        },
        boost::asio::detached);
}

void Daemon::scheduleHealthCheck() {
    healthTimer_.expires_after(options_.healthRetry);
    healthTimer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) {
            checkModelHealth();
        }
    });
}

void Daemon::setModelHealth(bool ok, const std::string& problem) {
    if (ok == modelOk_ && problem == modelProblem_) {
        return;
    }
    if (ok) {
        std::optional<std::chrono::milliseconds> outage;
        if (modelLostAt_) {
            outage =
                std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - *modelLostAt_);
            journal_.analyzerRecovered(config_.llm.server.url, outage);
        } else {
            log::notice("model {} ready on {}", config_.llm.model.name, config_.llm.server.url);
        }
        modelLostAt_.reset();
    } else {
        if (!modelLostAt_) {
            modelLostAt_ = Clock::now();
        }
        journal_.analyzerFault(config_.llm.server.url, problem);
    }
    modelOk_ = ok;
    modelProblem_ = problem;
    dispatch(engine_.observeAnalyzer(engineNow(), ok));
    updateState();
}

// ---------------------------------------------------------------- decisions

void Daemon::dispatch(const std::vector<AlertEvent>& events,
                      std::optional<std::chrono::milliseconds> latency,
                      std::optional<Clock::time_point> answersAt) {
    if (events.empty()) {
        return;
    }
    const std::vector<ActiveAlert> active = engine_.activeAlerts();
    const FaceState face = engine_.driverState();
    const std::uint64_t nowUs = realtimeNowUs();
    // The vehicle first: every event's CAN frame and D-Bus signal go out
    // before the journal entries and snapshots, which can block on journald or
    // wake the snapshot thread on a busy two-core box.
    for (const AlertEvent& event : events) {
        if (can_) {
            can_->onAlertEvent(event, active, face);
        }
        if (dbus_) {
            dbus_->emitAlert(event, nowUs);
        }
        if (answersAt) {
            // Both sends are synchronous: the frame and the signal have been
            // handed to the kernel (a frame for a congested CAN link is queued).
            const double us =
                std::chrono::duration<double, std::micro>(Clock::now() - *answersAt).count();
            alertPath_.add(us);
            ++alertPathEvents_;
            alertPathMaxUs_ = std::max(alertPathMaxUs_, us);
        }
    }
    if (dbus_) {
        dbus_->setActiveAlerts(active);
    }
    for (const AlertEvent& event : events) {
        AlertLogContext context;
        context.configVersion = config_.version;
        context.latency = latency;
        journal_.alert(event, context);
        if (event.type == AlertEvent::Type::Raised && snapshots_) {
            SnapshotRequest request;
            request.event = event;
            request.configVersion = config_.version;
            for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
                if ((*it)->sequence && (*it)->sequence->sequenceId == event.sequenceId) {
                    request.sequence = (*it)->sequence;
                    request.analyses = answersJson((*it)->answers);
                    break;
                }
            }
            snapshots_->submit(std::move(request));
        }
    }
}

void Daemon::startNotifiers(bool dbus, bool can, bool snapshots) {
    if (dbus && dbus_) {
        // A reload asked for over D-Bus runs inside the service's own method
        // handler: the old service is stopped and destroyed only once that
        // handler has returned (its reply sent). The new one takes the name
        // over, retrying while the old one still holds it.
        std::shared_ptr<DbusService> retired(std::move(dbus_));
        boost::asio::post(io_, [retired] { retired->stop(); });
    }
    if (dbus) {
        if (config_.notify.dbus.enabled) {
            DbusCallbacks callbacks;
            callbacks.getStatus = [this] {
                return statusJson();
            };
            callbacks.reload = [this] {
                return reload("D-Bus Reload");
            };
            callbacks.availabilityChanged = [this](bool available, const std::string& reason) {
                if (available) {
                    log::notice("D-Bus: {} available on the {} bus", kDbusServiceName,
                                config_.notify.dbus.bus);
                } else {
                    log::warning("D-Bus unavailable ({}): alerts still go to CAN and the journal",
                                 reason);
                }
            };
            dbus_ = std::make_unique<DbusService>(io_, config_.notify.dbus, callbacks);
            publishProperties();
            dbus_->start();
        }
    }
    if (can) {
        if (can_) {
            can_->stop();
        }
        CanNotifier::Opener opener = openSocketCan;
        if (!options_.canSocketForTest.empty()) {
            opener = [path = options_.canSocketForTest](const std::string&) {
                return openUnixCanStandIn(path);
            };
        }
        can_ = std::make_unique<CanNotifier>(io_, config_.notify.can, journal_, CanNotifierTiming{},
                                             std::move(opener));
        can_->setFaceState(engine_.driverState());
        can_->setHealth(cameraState_ == CameraState::Streaming, modelOk_,
                        state_ == ServiceState::Degraded);
        can_->start();
    }
    if (snapshots) {
        snapshots_.reset();
        if (config_.notify.snapshots.enabled) {
            snapshots_ = std::make_unique<SnapshotWriter>(config_.notify.snapshots, journal_);
        }
    }
}

void Daemon::publishProperties() {
    if (!dbus_) {
        return;
    }
    dbus_->setState(state_);
    dbus_->setConfigVersion(config_.version);
    dbus_->setConfigError(configError_);
    dbus_->setActiveAlerts(engine_.activeAlerts());
    dbus_->setDriverState(std::string(faceStateName(engine_.driverState())));
    if (lastAnalysisUs_) {
        dbus_->setLastAnalysisUs(*lastAnalysisUs_);
    }
}

void Daemon::updateState() {
    if (stopping_) {
        return;
    }
    const bool cameraOk = cameraState_ == CameraState::Streaming;
    ServiceState next = ServiceState::Starting;
    if (ready_) {
        next = cameraOk && modelOk_ ? ServiceState::Running : ServiceState::Degraded;
    }
    if (next != state_) {
        state_ = next;
        if (dbus_) {
            dbus_->setState(state_);
        }
    }
    if (can_) {
        can_->setHealth(cameraOk, modelOk_, state_ == ServiceState::Degraded);
    }
    const std::string line = statusLine();
    if (line != lastStatus_) {
        lastStatus_ = line;
        notifier_.status(line);
        if (ready_) {
            log::info("status: {}", line);
        }
    }
}

std::string Daemon::statusLine() const {
    std::string camera = cameraState_ == CameraState::Streaming
                             ? "camera ok"
                             : fmt::format("camera {} ({})", toString(cameraState_),
                                           cameraProblem_.empty() ? "no frames" : cameraProblem_);
    std::string model = modelOk_ ? fmt::format("model {} ok", config_.llm.model.name)
                                 : fmt::format("model not usable ({})", modelProblem_);
    std::string alerts;
    for (const ActiveAlert& alert : engine_.activeAlerts()) {
        alerts += fmt::format("{}{} {}", alerts.empty() ? "" : ", ", alertKindName(alert.kind),
                              alertLevelName(alert.level));
    }
    return fmt::format("{}: {}; {}; alerts: {}; config {}", serviceStateName(state_), camera, model,
                       alerts.empty() ? "none" : alerts, config_.version);
}

std::string Daemon::statusJson() const {
    json::object status;
    status["state"] = serviceStateName(state_);
    status["config_version"] = config_.version;
    json::array active;
    const EngineTime now = engineNow();
    const std::uint64_t nowUs = realtimeNowUs();
    for (const ActiveAlert& alert : engine_.activeAlerts()) {
        const auto ageUs = static_cast<std::uint64_t>(
            std::max<std::int64_t>(0, (now - alert.since).count()) * 1000);
        active.push_back(json::object{{"kind", alertKindName(alert.kind)},
                                      {"level", alertLevelName(alert.level)},
                                      {"confidence", alert.confidence},
                                      {"since_us", ageUs < nowUs ? nowUs - ageUs : nowUs}});
    }
    status["active_alerts"] = std::move(active);
    status["driver_state"] = faceStateName(engine_.driverState());
    const LlmMetricsSnapshot llm = scheduler_ ? scheduler_->metrics() : LlmMetricsSnapshot{};
    status["mode"] =
        llmModeName(scheduler_ ? scheduler_->activeMode() : config_.llm.scheduler.mode);
    status["configured_mode"] = llmModeName(config_.llm.scheduler.mode);
    const CaptureCounters capture = capture_ ? capture_->counters() : CaptureCounters{};
    const FramePathCounters frames = framePath_ ? framePath_->counters() : FramePathCounters{};
    status["counters"] = json::object{
        {"frames_captured", capture.framesCaptured},
        {"frames_dropped", capture.framesDropped},
        {"sequences_analysed", counters_.sequencesAnalysed},
        {"sequences_skipped_static", counters_.sequencesSkippedStatic},
        {"sequences_superseded", counters_.sequencesSuperseded},
        {"requests", llm.requests},
        {"request_errors", llm.requestErrors},
        {"cache_hits", llm.cacheHits},
        {"cache_misses", llm.cacheMisses},
        {"camera_restarts", capture.restarts},
        {"frames_encoded", frames.framesEncoded},
        {"reloads_applied", counters_.reloadsApplied},
        {"reloads_rejected", counters_.reloadsRejected},
        {"rollbacks", counters_.rollbacks},
    };
    status["latency_ms"] = json::object{
        {"sequence_p50", llm.sequenceP50Ms},
        {"sequence_p95", llm.sequenceP95Ms},
        {"request_p50", llm.requestP50Ms},
        {"request_p95", llm.requestP95Ms},
    };
    status["alert_path_us"] = json::object{{"events", alertPathEvents_},
                                           {"p50", alertPath_.percentile(50)},
                                           {"p99", alertPath_.percentile(99)},
                                           {"max", alertPathMaxUs_}};
    status["camera"] = json::object{{"source", config_.capture.source},
                                    {"state", toString(cameraState_)},
                                    {"problem", cameraProblem_}};
    status["model"] = json::object{{"url", config_.llm.server.url},
                                   {"model", config_.llm.model.name},
                                   {"usable", modelOk_},
                                   {"problem", modelOk_ ? std::string() : modelProblem_}};
    if (lastAnalysisUs_) {
        status["last_analysis_us"] = *lastAnalysisUs_;
    }
    status["config_error"] = configError_;
    if (can_) {
        const CanStatus can = can_->status();
        status["can"] = json::object{{"state", canLinkStateName(can.state)},
                                     {"interface", can.interface},
                                     {"frames_sent", can.framesSent},
                                     {"last_error", can.lastError}};
    }
    if (snapshots_) {
        const SnapshotStats snaps = snapshots_->stats();
        status["snapshots"] = json::object{{"dir", config_.notify.snapshots.dir},
                                           {"written", snaps.written},
                                           {"failed", snaps.failed},
                                           {"last", snaps.lastPath.string()}};
    }
    return writeJson(status);
}

// ---------------------------------------------------------------- timers

void Daemon::armTick() {
    tickTimer_.expires_after(options_.tickInterval);
    tickTimer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopping_) {
            return;
        }
        onTick();
        armTick();
    });
}

void Daemon::onTick() {
    const auto now = Clock::now();
    watchdog_.stamp(loopWorker_, now);
    if (framePath_) {
        watchdog_.stamp(samplerWorker_, framePath_->lastActivity());
    } else {
        watchdog_.stamp(samplerWorker_, now);
    }
    // The capture supervisor is alive while frames flow, and while it is (by
    // design) waiting to retry a lost camera; streaming without frames means
    // its own frame watchdog stopped working.
    if (capture_ && capture_->state() == CameraState::Streaming &&
        capture_->lastFrameAt().time_since_epoch().count() != 0) {
        watchdog_.stamp(captureWorker_, capture_->lastFrameAt());
    } else {
        watchdog_.stamp(captureWorker_, now);
    }

    dispatch(engine_.tick(engineNow()));
    if (!ready_ && now - startedAt_ >= options_.readyTimeout) {
        // The camera has not delivered a frame: be ready anyway, degraded, so the
        // fault is reported over D-Bus and CAN instead of a restart loop.
        ready_ = true;
        updateState();
        notifier_.ready(statusLine());
    }
    if (now - lastJournalFlush_ >= 5s) {
        lastJournalFlush_ = now;
        journal_.flushSuppressed();
    }
    checkProbation();
    updateState();
}

void Daemon::armWatchdog() {
    if (!watchdogInterval_) {
        return;
    }
    watchdogTimer_.expires_after(*watchdogInterval_ / 2);
    watchdogTimer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopping_) {
            return;
        }
        const std::vector<std::string> stalled = watchdog_.stalled();
        if (stalled.empty()) {
            notifier_.watchdogPing();
        } else {
            std::string names;
            for (const std::string& name : stalled) {
                names += (names.empty() ? "" : ", ") + name;
            }
            log::error("watchdog: {} stalled; asking systemd to restart dmsd", names);
            notifier_.watchdogTrigger();
        }
        armWatchdog();
    });
}

// ---------------------------------------------------------------- configuration

std::string Daemon::reload(const std::string& trigger) {
    if (stopping_) {
        return "dmsd is stopping";
    }
    ConfigLoad load = loadConfig(options_.configPath);
    if (!load.ok()) {
        configError_ = formatErrors(load.errors);
        ++counters_.reloadsRejected;
        std::string source =
            load.errors.empty() ? options_.configPath.string() : load.errors.front().file;
        journal_.configRejected(source, configError_, config_.version);
        if (dbus_) {
            dbus_->setConfigError(configError_);
        }
        notifier_.status(
            fmt::format("configuration rejected ({}); still running {}", trigger, config_.version));
        return configError_;
    }
    Config next = std::move(*load.config);
    const std::string nextEffective = effectiveConfigJson(next);
    if (!rejectedEffective_.empty() && nextEffective == rejectedEffective_) {
        std::string reason = fmt::format(
            "configuration {} was rolled back because it left the camera or model server "
            "unusable; it is not applied again until a new file arrives",
            next.version);
        log::warning("{} ({})", reason, trigger);
        return reason;
    }
    const std::vector<ConfigPart> parts = changedParts(config_, next);
    if (parts.empty() && next.version == config_.version) {
        log::info("configuration reloaded ({}): nothing changed", trigger);
        configError_.clear();
        if (dbus_) {
            dbus_->setConfigError({});
        }
        return {};
    }
    notifier_.reloading(fmt::format("applying configuration {} ({})", next.version, trigger));
    const Config previous = config_;
    const bool previousHealthy = cameraState_ == CameraState::Streaming && modelOk_;
    applyConfig(next, parts);
    configError_.clear();
    rejectedEffective_.clear();
    ++counters_.reloadsApplied;
    journal_.configApplied(config_.version, previous.version, joinParts(parts));
    if (dbus_) {
        dbus_->setConfigVersion(config_.version);
        dbus_->setConfigError({});
    }
    probation_ = Probation{previous, previousHealthy, Clock::now(), std::nullopt};
    if (lastGood_ && !previousHealthy) {
        // The running configuration was already unhealthy: judge the new one
        // against the last known good instead.
        probation_->previous = *lastGood_;
        probation_->previousHealthy = true;
    }
    updateState();
    notifier_.ready(statusLine());
    return {};
}

void Daemon::applyConfig(const Config& next, const std::vector<ConfigPart>& parts) {
    const bool captureChanged = contains(parts, ConfigPart::Capture);
    const bool framePathChanged = captureChanged || contains(parts, ConfigPart::Sampling) ||
                                  contains(parts, ConfigPart::Encode);
    const bool llmChanged = contains(parts, ConfigPart::Llm);
    const bool schedulerChanged =
        llmChanged || contains(parts, ConfigPart::Analyses) || contains(parts, ConfigPart::Encode);
    config_ = next;
    if (framePathChanged) {
        stopFramePath();
    }
    if (captureChanged) {
        stopCapture();
        cameraLostAt_.reset();
        startCapture();
    }
    if (framePathChanged) {
        startFramePath();
    }
    if (schedulerChanged) {
        startAnalysis(llmChanged);
    }
    if (contains(parts, ConfigPart::Alerts)) {
        engine_.updateRules(config_.alerts);
    }
    startNotifiers(contains(parts, ConfigPart::Dbus), contains(parts, ConfigPart::Can),
                   contains(parts, ConfigPart::Snapshots));
    if (contains(parts, ConfigPart::Dbus)) {
        publishProperties();
    }
}

void Daemon::checkProbation() {
    if (!probation_) {
        return;
    }
    const auto now = Clock::now();
    const bool usable = cameraState_ == CameraState::Streaming && modelOk_;
    if (usable) {
        probation_->unusableSince.reset();
        if (now - probation_->since >= options_.probation) {
            probation_.reset();
            lastGood_ = config_;
            persistLastGood();
        }
        return;
    }
    if (!probation_->unusableSince) {
        probation_->unusableSince = now;
    }
    if (probation_->previousHealthy && now - *probation_->unusableSince >= options_.probation) {
        std::string why;
        if (cameraState_ != CameraState::Streaming) {
            why = fmt::format("camera {} unusable ({})", config_.capture.source,
                              cameraProblem_.empty() ? "no frames" : cameraProblem_);
        } else {
            why = fmt::format("model server unusable ({})", modelProblem_);
        }
        rollback(fmt::format(
            "{} for {} s", why,
            std::chrono::duration_cast<std::chrono::seconds>(options_.probation).count()));
    }
}

void Daemon::rollback(const std::string& why) {
    Config previous = probation_->previous;
    probation_.reset();
    const std::string badVersion = config_.version;
    rejectedEffective_ = effectiveConfigJson(config_);
    const std::vector<ConfigPart> parts = changedParts(config_, previous);
    notifier_.reloading(fmt::format("rolling back to {}", previous.version));
    applyConfig(previous, parts);
    ++counters_.rollbacks;
    configError_ =
        fmt::format("configuration {} rolled back to {}: {}", badVersion, previous.version, why);
    journal_.configRolledBack(previous.version, badVersion, why);
    if (dbus_) {
        dbus_->setConfigVersion(config_.version);
        dbus_->setConfigError(configError_);
    }
    // The rolled-back-to configuration is the known good one: no probation.
    updateState();
    notifier_.ready(statusLine());
}

void Daemon::persistLastGood() {
    std::error_code ec;
    std::filesystem::create_directories(options_.stateDir, ec);
    const std::filesystem::path path = options_.stateDir / "last-good.yaml";
    const std::string text = "# The last configuration that ran healthy (written by dmsd; JSON is "
                             "YAML)\n" +
                             effectiveConfigJson(config_) + "\n";
    if (std::error_code error = writeFileAtomically(path, text)) {
        log::warning("cannot keep the last known good configuration in {}: {}", path.string(),
                     error.message());
        return;
    }
    log::info("configuration {} is now the last known good ({})", config_.version, path.string());
}

void Daemon::loadLastGood() {
    const std::filesystem::path path = options_.stateDir / "last-good.yaml";
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return;
    }
    ConfigLoad load = loadConfigFiles({path});
    if (!load.ok()) {
        log::warning("ignoring the last known good configuration {}: {}", path.string(),
                     formatErrors(load.errors));
        return;
    }
    lastGood_ = std::move(*load.config);
}

} // namespace dmsd
