#include "daemon/daemon.h"

#include <algorithm>
#include <signal.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <fmt/format.h>
#include <gst/gst.h>

#include "alerts/vision_evidence.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/version.h"
#include "config/loader.h"
#include "llm/analysis.h"
#include "notify/alert_sinks.h"
#include "pipeline/jpeg_encoder.h"

namespace dmsd {

using namespace std::chrono_literals;

namespace {

bool contains(const std::vector<ConfigPart>& parts, ConfigPart part) {
    return std::find(parts.begin(), parts.end(), part) != parts.end();
}

/// Recent results kept for snapshots of the deciding sequence.
constexpr std::size_t kRecentResults = 8;
/// Sequences in a row without any usable answer after which the model counts
/// as failed (State degraded) even when its server passes the health check.
constexpr int kFailedSequences = 3;

/// Capture's messages name the setting ("capture.source 'X': end of stream");
/// journal entries name the camera in DMS_CAMERA, so the reason goes without.
std::string cameraReason(const std::string& source, const std::string& message) {
    const std::string prefix = fmt::format("capture.source '{}': ", source);
    return message.starts_with(prefix) ? message.substr(prefix.size()) : message;
}

} // namespace

Daemon::Daemon(Config config, DaemonOptions options, DaemonSeams seams)
    : options_(std::move(options)), seams_(std::move(seams)), journal_(Journal::process()),
      ota_(std::move(config),
           OtaOptions{options_.configPath, options_.stateDir, options_.probation,
                      [this](std::function<void()> work) {
                          boost::asio::post(loader_, std::move(work));
                      }},
           *this, journal_),
      pump_([this](SequenceResult result) { onResult(std::move(result)); },
            [this](const EncodedSequencePtr&) { ++sequences_.superseded; }),
      modelHealth_(io_.get_executor(), options_.healthRetry,
                   [this](const ModelCheck& check) { onModelCheck(check); }),
      engine_(ota_.running().alerts), metrics_(io_, [this] { return metricsText(); }),
      signals_(io_), tickTimer_(io_), watchdogTimer_(io_) {
    loopWorker_ = watchdog_.addWorker("event loop", 5s);
    samplerWorker_ = watchdog_.addWorker("sampler", 5s);
    captureWorker_ = watchdog_.addWorker("capture", 20s);
    watchdogInterval_ = SystemdNotifier::watchdogInterval();

    // Where alerts go. Immediate sinks (the vehicle) are called for the whole
    // burst before the deferred ones; within each kind, in this order.
    dispatcher_.add(std::make_unique<CanAlertSink>(can_));
    dispatcher_.add(std::make_unique<DbusAlertSink>(dbus_));
    dispatcher_.add(std::make_unique<JournalAlertSink>(journal_));
    dispatcher_.add(std::make_unique<SnapshotAlertSink>(snapshots_));
}

Daemon::~Daemon() {
    loader_.join();
    stopFramePath();
    stopCapture();
    stopVision();
}

EngineTime Daemon::engineNow() const {
    return std::chrono::duration_cast<EngineTime>(Clock::now() - startedAt_);
}

int Daemon::run() {
    start();
    io_.run();
    // Work queued on the loader finishes: a last known good being written,
    // a reload being read (regular files of at most 1 MiB; its result is
    // dropped with the loop).
    loader_.join();
    // Everything that owns threads is stopped before the loop's objects go.
    stopFramePath();
    stopCapture();
    stopVision();
    snapshots_.reset();
    return 0;
}

void Daemon::start() {
    journal_.daemonStarted(kVersion, config().version, config().capture.source,
                           config().llm.model.name, serverUrlsText(config().llm.server));
    notifier_.status(fmt::format("starting: configuration {}", config().version));
    ota_.start();

    waitSignals();
    startNotifiers(true, true, true);
    startAnalysis();
    startVision();
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
    metrics_.start(config().metrics);
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
    health_.state = ServiceState::Stopping;
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
    modelHealth_.stop();
    signals_.cancel();
    pump_.stop();
    if (scheduler_) {
        scheduler_->shutdown();
    }
    if (client_) {
        client_->cancelAll();
    }
    stopFramePath();
    stopCapture();
    stopVision();
    if (can_) {
        can_->stop();
    }
    if (dbus_) {
        dbus_->stop();
    }
    journal_.flushSuppressed();
    // The file's last word is the state "stopping", not a stale "running".
    metrics_.writeNow();
    metrics_.stop();
    io_.stop();
}

void Daemon::reload(const std::string& trigger, std::function<void(const std::string&)> done) {
    if (stopping_) {
        if (done) {
            done("dmsd is stopping");
        }
        return;
    }
    // Reading the files may block (a slow file system); the loop must not:
    // it runs the watchdog, SIGTERM and the alert path. The loader reads only
    // files and options that do not change, and hands the result to the loop.
    boost::asio::post(loader_, [this, trigger, done = std::move(done)]() mutable {
        auto load = std::make_shared<ConfigLoad>(ota_.loadFiles());
        boost::asio::post(io_, [this, trigger, done = std::move(done), load] {
            const std::string outcome = stopping_ ? std::string("dmsd is stopping")
                                                  : ota_.applyLoaded(trigger, std::move(*load));
            if (done) {
                done(outcome);
            }
        });
    });
}

// ---------------------------------------------------------------- camera

void Daemon::startCapture() {
    CaptureOptions options;
    options.mode = CaptureMode::Live;
    options.logEvents = false; // onCaptureEvent writes one entry per event
    const std::uint64_t generation = ++captureGeneration_;
    options.onEvent = [this, generation](const CaptureEvent& event) {
        boost::asio::post(io_, [this, generation, event] {
            if (generation == captureGeneration_.load() && !stopping_) {
                onCaptureEvent(event);
            }
        });
    };
    capture_ = std::make_unique<Capture>(config().capture, options);
    health_.camera = CameraState::Starting;
    if (auto error = capture_->start()) {
        // Live sources are retried by Capture itself; a settings error (bad source)
        // cannot get better by retrying, but the daemon keeps reporting the fault.
        health_.cameraProblem = error->message;
        health_.camera = capture_->state();
        journal_.cameraFault(config().capture.source,
                             cameraReason(config().capture.source, error->message));
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
    callbacks.onSequence = [this, generation](const EncodedSequencePtr& sequence) {
        boost::asio::post(io_, [this, generation, sequence] {
            if (generation == captureGeneration_.load() && !stopping_) {
                pump_.offer(sequence);
            }
        });
    };
    callbacks.onSkipped = [this, generation](const SkippedWindow& window) {
        boost::asio::post(io_, [this, generation, window] {
            if (generation == captureGeneration_.load() && !stopping_) {
                onSkipped(window);
            }
        });
    };
    callbacks.onFrame = [this](const FramePtr& frame) {
        // A reference into the vision's one-slot mailbox: never waits.
        if (const std::shared_ptr<VisionStage> vision = vision_.load(std::memory_order_acquire)) {
            vision->offer(frame);
        }
    };
    samplerStop_ = false;
    FrameSource* source = capture_.get();
    if (seams_.wrapFrameSource) {
        samplerSource_ = seams_.wrapFrameSource(*capture_, samplerStop_);
        source = samplerSource_.get();
    }
    runningFrameFit_ = frameFit_;
    framePath_ =
        std::make_unique<FramePath>(*source, effectiveSampling(), effectiveEncode(), callbacks);
    visionQuiet_ = false; // a new frame path starts at sampling.interval
    samplerThread_ = std::thread([this] { framePath_->run(samplerStop_); });
}

void Daemon::stopFramePath() {
    samplerStop_ = true;
    samplerStop_.notify_all();
    if (samplerThread_.joinable()) {
        samplerThread_.join();
    }
    framePath_.reset();
    samplerSource_.reset();
}

void Daemon::onCaptureEvent(const CaptureEvent& event) {
    const CameraState previous = health_.camera;
    health_.camera = event.state;
    const bool ok = event.state == CameraState::Streaming;
    const std::string& source = config().capture.source;
    switch (event.kind) {
    case CaptureEvent::Kind::Streaming: {
        std::optional<std::chrono::milliseconds> outage;
        if (cameraLostAt_) {
            outage = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() -
                                                                           *cameraLostAt_);
        }
        if (previous != CameraState::Starting || cameraLostAt_) {
            journal_.cameraRecovered(source, outage);
        }
        cameraLostAt_.reset();
        health_.cameraProblem.clear();
        if (!ready_) {
            ready_ = true;
            updateState();
            notifier_.ready(statusLine());
        }
        break;
    }
    case CaptureEvent::Kind::Warning:
        log::write(
            log::Priority::Warning,
            fmt::format("Camera warning on {}: {}", source, cameraReason(source, event.message)),
            {},
            {{"DMS_EVENT", "camera_warning"},
             {"DMS_CAMERA", source},
             {"DMS_DETAIL", event.detail}});
        break;
    case CaptureEvent::Kind::Error:
    case CaptureEvent::Kind::EndOfStream:
    case CaptureEvent::Kind::FrameTimeout:
        health_.cameraProblem = event.message;
        if (!cameraLostAt_) {
            cameraLostAt_ = Clock::now();
        }
        journal_.cameraFault(source, cameraReason(source, event.message));
        break;
    case CaptureEvent::Kind::Restarting:
        log::write(log::Priority::Info,
                   fmt::format("Camera {} restarting (attempt {})", source, event.restarts), {},
                   {{"DMS_EVENT", "camera_restarting"},
                    {"DMS_CAMERA", source},
                    {"DMS_RESTARTS", std::to_string(event.restarts)}});
        break;
    }
    dispatch(engine_.observeCamera(engineNow(), ok));
    updateState();
}

void Daemon::onSkipped(const SkippedWindow& window) {
    ++sequences_.skippedStatic;
    dispatch(engine_.carryForward(engineNow(), window.lastSequenceId));
}

// ---------------------------------------------------------------- vision

void Daemon::startVision() {
    if (!config().vision.enabled) {
        return;
    }
    const std::uint64_t generation = ++visionGeneration_;
    lastVisionSignals_.reset();
    visionFrames_.clear();
    auto stage = std::make_shared<VisionStage>(
        config().vision,
        [this, generation](const VisionResult& result) {
            // From the vision thread to the loop, where the engine lives.
            boost::asio::post(
                io_, [this, generation, signals = result.signals, evidence = result.evidence] {
                    if (generation == visionGeneration_.load() && !stopping_) {
                        onVisionResult(signals, evidence);
                    }
                });
        },
        [this, generation](VisionState state, const std::string& /*reason*/) {
            // The stage has written the journal entry naming the reason.
            if (state != VisionState::Failed) {
                return;
            }
            boost::asio::post(io_, [this, generation] {
                if (generation == visionGeneration_.load() && !stopping_) {
                    onVisionFailed();
                }
            });
        });
    stage->start(); // loads the model on its own thread
    vision_.store(std::move(stage), std::memory_order_release);
}

void Daemon::stopVision() {
    ++visionGeneration_;
    std::shared_ptr<VisionStage> stage = vision_.exchange(nullptr, std::memory_order_acq_rel);
    if (!stage) {
        return;
    }
    // Joins the vision thread (the frame in hand, or the model load, finishes
    // first). The sampler thread may still hold a reference for one offer();
    // offer() on a stopped stage takes nothing.
    stage->stop();
    lastVisionSignals_.reset();
    setVisionQuiet(false);
    if (!stopping_) {
        // The alerts only the vision held end with it; the model's stay.
        dispatch(engine_.visionStopped(engineNow()));
    }
}

void Daemon::onVisionResult(const DriverSignals& signals,
                            const std::optional<EvidenceFrame>& evidence) {
    if (evidence) {
        visionFrames_.add(*evidence); // before the decision it may show
    }
    dispatch(engine_.observeVision(engineNow(), visionEvidenceOf(signals)));
    if (lastVisionSignals_ && visionOnset(*lastVisionSignals_, signals, config().vision.signals) &&
        framePath_) {
        // Ask the model about the frames up to now at once, not at the end of
        // the sampling interval.
        framePath_->requestCloseWindow();
        ++visionOnsets_;
    }
    lastVisionSignals_ = signals;
    setVisionQuiet(config().vision.quietInterval.count() > 0 && visionQuiet(signals) &&
                   engine_.activeAlerts().empty());
}

void Daemon::setVisionQuiet(bool quiet) {
    if (quiet == visionQuiet_) {
        return;
    }
    visionQuiet_ = quiet;
    if (framePath_) {
        framePath_->setWindowInterval(quiet ? config().vision.quietInterval : Millis{0});
    }
}

void Daemon::onVisionFailed() {
    // Model-only from here on: the failure is the stage's journal entry and
    // `vision.state: failed` in GetStatus; the alerts only vision held end.
    lastVisionSignals_.reset();
    setVisionQuiet(false);
    dispatch(engine_.visionStopped(engineNow()));
}

// ---------------------------------------------------------------- analysis

void Daemon::startAnalysis() {
    // Each part of llm: restarts only what depends on it: a new server (or its
    // limits and deadlines) a new transport, a new model a new client over the
    // same connections, a new mode, cache, prompt or layout a new scheduler.
    const LlmSettings& llm = config().llm;
    const LlmRestart restart = client_ ? llmRestart(clientLlm_, llm) : LlmRestart::Transport;
    const bool newTransport = restart == LlmRestart::Transport;
    const bool newClient = newTransport || restart == LlmRestart::Client;
    if (scheduler_) {
        scheduler_->shutdown();
        scheduler_.reset();
    }
    if (newTransport) {
        if (client_) {
            client_->cancelAll(); // a pool's probes too
        }
        for (const HttpTransportPtr& transport : transports_) {
            transport->cancelAll();
        }
        transports_ = createTransports(io_.get_executor(), llm.server);
    }
    if (newClient) {
        client_ = createModelClient(io_.get_executor(), transports_, llm.model, llm.server.timeout);
        clientNumCtx_ = llm.model.options.numCtx;
        // The health state stays as it was until the new client's check says
        // otherwise: a reload must not make State flap to degraded and back.
        if (!health_.modelOk) {
            health_.modelProblem = "checking " + client_->url();
        }
        failedSequences_ = 0; // another server or model: its check decides afresh
        modelHealth_.watch(client_);
    }
    clientLlm_ = llm;
    scheduler_ =
        AnalysisScheduler::create(io_.get_executor(), client_, llm.scheduler, config().analyses);
    // A sequence that waited behind the old scheduler goes to the new one.
    pump_.setTarget(LatestWinsPump::submitTo(scheduler_));
}

void Daemon::onResult(SequenceResult result) {
    const Clock::time_point answersAt = Clock::now();
    if (stopping_ || result.metrics.cancelled) {
        return;
    }
    ++sequences_.analysed;
    lastAnalysisUs_ = realtimeNowUs();
    sequenceLatency_.observe(std::chrono::duration<double>(result.metrics.latency).count());
    auto shared = std::make_shared<const SequenceResult>(std::move(result));
    recent_.push_back(shared);
    while (recent_.size() > kRecentResults) {
        recent_.pop_front();
    }

    // A sequence of which every request failed to connect says the server is
    // gone: check its health (and keep checking) rather than wait for the next.
    // A server that answers, but never with anything usable (garbage, another
    // model, broken framing, resets mid-answer), is as failed as one that is
    // gone: after a few sequences in a row without an answer the model is
    // unusable (State degraded) until an answer can be used again. A health
    // check that passes meanwhile proves only that the server is reachable and
    // has the model, so it does not end such a run (onModelCheck()).
    bool anyAnswer = false;
    bool connectionFailed = false;
    const AnalysisError* failure = nullptr;
    for (AnalysisKind kind : kAllAnalyses) {
        const AnalysisError* error = shared->answers.error(kind);
        if (shared->answers.answered(kind)) {
            anyAnswer = true;
        } else if (error != nullptr && error->kind != AnalysisError::Kind::Cancelled) {
            failure = error;
            connectionFailed = connectionFailed ||
                               error->kind == AnalysisError::Kind::ConnectionFailed ||
                               error->kind == AnalysisError::Kind::Timeout;
        }
    }
    if (!anyAnswer && failure != nullptr) {
        learnContext(*shared);
    }
    if (anyAnswer) {
        failedSequences_ = 0;
    } else if (failure != nullptr) {
        ++failedSequences_;
    }
    if (anyAnswer && !health_.modelOk) {
        setModelHealth(true, {});
    } else if (!anyAnswer && connectionFailed && health_.modelOk) {
        setModelHealth(false, fmt::format("model server {} is not answering", client_->url()));
        modelHealth_.recheck();
    } else if (failedSequences_ >= kFailedSequences && failure != nullptr && health_.modelOk) {
        setModelHealth(false,
                       fmt::format("model server {} answers, but none of its answers in the last "
                                   "{} sequences could be used (last: {})",
                                   client_->url(), failedSequences_, failure->message));
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

void Daemon::onModelCheck(const ModelCheck& check) {
    if (check.usable() && client_ && client_ != budgetClient_) {
        startBudget();
    }
    if (check.usable() && failedSequences_ >= kFailedSequences) {
        return; // reachable, but its answers keep failing: only an answer ends that
    }
    setModelHealth(check.usable(), check.problem);
}

void Daemon::setModelHealth(bool ok, const std::string& problem) {
    if (stopping_ || (ok == health_.modelOk && problem == health_.modelProblem)) {
        return;
    }
    const std::string url = client_ ? client_->url() : serverUrlsText(config().llm.server);
    if (ok) {
        if (modelLostAt_) {
            journal_.analyzerRecovered(url, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                Clock::now() - *modelLostAt_));
        } else {
            log::notice("model {} ready on {}", config().llm.model.name, url);
        }
        modelLostAt_.reset();
    } else {
        if (!modelLostAt_) {
            modelLostAt_ = Clock::now();
        }
        journal_.analyzerFault(url, problem);
    }
    health_.modelOk = ok;
    health_.modelProblem = problem;
    dispatch(engine_.observeAnalyzer(engineNow(), ok));
    updateState();
}

// ---------------------------------------------------------------- context budget

SamplingSettings Daemon::effectiveSampling() const {
    SamplingSettings sampling = config().sampling;
    if (frameFit_.frames) {
        sampling.framesPerSequence = *frameFit_.frames;
    }
    return sampling;
}

EncodeSettings Daemon::effectiveEncode() const {
    EncodeSettings encode = config().encode;
    if (frameFit_.layout) {
        encode.layout = *frameFit_.layout;
    }
    return encode;
}

void Daemon::startBudget() {
    budgetClient_ = client_;
    const std::uint64_t generation = ++budgetGeneration_;
    budget_ = ContextReport{};
    // An image as the model receives them: capture size scaled to
    // encode.max_side (a mosaic is no larger). Its content does not change
    // what it costs, so a grey frame serves.
    const int width = config().capture.width;
    const int height = config().capture.height;
    FramePtr grey = Frame::fromI420(std::vector<std::uint8_t>(Frame::i420Size(width, height), 128),
                                    width, height, FrameMeta{});
    std::string error;
    std::optional<JpegImage> image = encodeI420Scaled(grey->planes(), config().encode.jpegQuality,
                                                      config().encode.maxSide, &error);
    if (!image) {
        budget_.state = ContextReport::State::Failed;
        budget_.problem = error;
        return;
    }
    const int imageWidth = image->width;
    const int imageHeight = image->height;
    // The longest text: the combined question about the configured frames.
    boost::asio::co_spawn(
        io_,
        measureBudget(client_, generation,
                      budgetPrompt(config().analyses, config().sampling.framesPerSequence),
                      std::move(*image), imageWidth, imageHeight),
        boost::asio::detached);
}

boost::asio::awaitable<void> Daemon::measureBudget(ModelClientPtr client, std::uint64_t generation,
                                                   BudgetPrompt prompt, JpegImage image, int width,
                                                   int height) {
    PromptMeasurement measured = co_await client->measurePrompt(prompt.system, prompt.user, image);
    if (stopping_ || generation != budgetGeneration_) {
        co_return; // another client or configuration measures afresh
    }
    const LlmSettings& llm = config().llm;
    if (measured.contextFull && llm.server.api == LlmApi::Ollama && llm.model.context.fit &&
        llm.model.context.maxNumCtx > clientNumCtx_) {
        // One image and the text alone fill num_ctx (an old configuration's
        // 2048 with llava-1.6): measure again with the ceiling, over the same
        // connections. The model is loaded with it once; the fit then loads
        // it with what it chose.
        ModelSettings wide = llm.model;
        wide.options.numCtx = llm.model.context.maxNumCtx;
        ModelClientPtr wideClient =
            createModelClient(io_.get_executor(), transports_, wide, clientLlm_.server.timeout);
        measured = co_await wideClient->measurePrompt(std::move(prompt.system),
                                                      std::move(prompt.user), std::move(image));
        if (stopping_ || generation != budgetGeneration_) {
            co_return;
        }
    }
    onBudgetMeasured(measured, width, height);
}

void Daemon::onBudgetMeasured(const PromptMeasurement& measured, int width, int height) {
    budget_.imageWidth = width;
    budget_.imageHeight = height;
    budget_.numPredict = config().llm.model.options.numPredict;
    if (!measured.ok()) {
        budget_.state = ContextReport::State::Failed;
        budget_.problem = measured.error->message;
        log::write(log::Priority::Warning,
                   fmt::format("Context budget of model {} on {} not measured ({}): the "
                               "configuration is used as it is",
                               config().llm.model.name, config().llm.server.url, budget_.problem),
                   {}, {{"DMS_EVENT", "context_budget"}, {"DMS_DETAIL", budget_.problem}});
        return;
    }
    budgetMeasured_ = measured;
    budget_.state = ContextReport::State::Measured;
    budget_.tokensPerImage = measured.tokensPerImage();
    budget_.promptTokens = measured.textTokens;
    fitBudget();
}

void Daemon::fitBudget() {
    const LlmSettings& llm = config().llm;
    BudgetNeed need;
    need.api = llm.server.api;
    // Planned from the configuration as written, so that the fit is the same
    // whichever client (the configured or an earlier fitted one) measured.
    need.context = need.api == LlmApi::Ollama ? llm.model.options.numCtx
                                              : learnedContext_.value_or(llm.model.context.size);
    need.frames = config().sampling.framesPerSequence;
    need.layout = config().encode.layout;
    need.tokensPerImage = budget_.tokensPerImage;
    need.promptTokens = budget_.promptTokens;
    need.numPredict = llm.model.options.numPredict;
    const BudgetPlan plan = planContextBudget(need, llm.model.context);
    budget_.plan = plan;

    frameFit_ = FrameFit{plan.frames, plan.layout};
    if (frameFit_ != runningFrameFit_ && framePath_) {
        stopFramePath();
        startFramePath();
    }
    const int numCtx = plan.numCtx.value_or(llm.model.options.numCtx);
    if (need.api == LlmApi::Ollama && numCtx != clientNumCtx_) {
        // A client with the fitted num_ctx over the same connections; its
        // warm-up loads the model with it, and it is not measured again.
        ModelSettings model = llm.model;
        model.options.numCtx = numCtx;
        client_ =
            createModelClient(io_.get_executor(), transports_, model, clientLlm_.server.timeout);
        clientNumCtx_ = numCtx;
        budgetClient_ = client_;
        modelHealth_.watch(client_);
        if (scheduler_) {
            scheduler_->shutdown();
        }
        scheduler_ = AnalysisScheduler::create(io_.get_executor(), client_, llm.scheduler,
                                               config().analyses);
        pump_.setTarget(LatestWinsPump::submitTo(scheduler_));
    }

    const std::string line = fmt::format(
        "Context budget of model {}: {} tokens per image ({}x{}), {} tokens of prompt, {} to "
        "answer: {} of {} tokens per request; {}",
        llm.model.name, budget_.tokensPerImage, budget_.imageWidth, budget_.imageHeight,
        budget_.promptTokens, need.numPredict, plan.needed,
        plan.context > 0 ? std::to_string(plan.context) : std::string("unknown"),
        plan.changed()
            ? "fitted: " + plan.change
            : (plan.fitsAsConfigured ? std::string("fits") : "does not fit: " + plan.change));
    log::write(plan.fitsAsConfigured ? log::Priority::Info
               : plan.fits           ? log::Priority::Notice
                                     : log::Priority::Warning,
               line, {},
               {{"DMS_EVENT", "context_budget"},
                {"DMS_PER_IMAGE", std::to_string(budget_.tokensPerImage)},
                {"DMS_CONTEXT_NEEDED", std::to_string(plan.needed)},
                {"DMS_CONTEXT", std::to_string(plan.context)},
                {"DMS_CONTEXT_CHANGE", plan.change}});
}

void Daemon::learnContext(const SequenceResult& result) {
    if (config().llm.server.api != LlmApi::OpenAi ||
        budget_.state != ContextReport::State::Measured) {
        return;
    }
    for (AnalysisKind kind : kAllAnalyses) {
        const AnalysisError* error = result.answers.error(kind);
        if (error == nullptr || error->kind != AnalysisError::Kind::HttpStatus ||
            error->httpStatus != 400) {
            continue;
        }
        if (const auto context = contextInError(error->message);
            context && *context > 0 && context != learnedContext_) {
            learnedContext_ = *context;
            fitBudget();
            return;
        }
    }
}

// ---------------------------------------------------------------- decisions

void Daemon::dispatch(const std::vector<AlertEvent>& events,
                      std::optional<std::chrono::milliseconds> latency,
                      std::optional<Clock::time_point> answersAt) {
    if (events.empty()) {
        return;
    }
    AlertContext context;
    context.active = engine_.activeAlerts();
    context.face = engine_.driverState();
    context.configVersion = config().version;
    context.latency = latency;
    context.realtimeUs = realtimeNowUs();
    context.decidingSequence = [this](std::uint64_t id) {
        return decidingSequence(id);
    };
    context.visionFrames = visionFrames_.sequence();
    dispatcher_.dispatch(events, context, answersAt);
}

std::optional<DecidingSequence> Daemon::decidingSequence(std::uint64_t sequenceId) const {
    for (auto it = recent_.rbegin(); it != recent_.rend(); ++it) {
        if ((*it)->sequence && (*it)->sequence->sequenceId == sequenceId) {
            return DecidingSequence{(*it)->sequence, answersJson((*it)->answers)};
        }
    }
    return std::nullopt;
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
    if (dbus && config().notify.dbus.enabled) {
        DbusCallbacks callbacks;
        callbacks.getStatus = [this] {
            return statusJson();
        };
        callbacks.reload = [this](std::function<void(const std::string&)> reply) {
            reload("D-Bus Reload", std::move(reply));
        };
        dbus_ = std::make_unique<DbusService>(io_, config().notify.dbus, callbacks);
        publishProperties();
        dbus_->start();
    }
    if (can) {
        if (can_) {
            can_->stop();
        }
        can_ =
            std::make_unique<CanNotifier>(io_, config().notify.can, journal_, CanNotifierTiming{},
                                          seams_.canOpener ? seams_.canOpener : openSocketCan);
        can_->setFaceState(engine_.driverState());
        can_->setHealth(health_.cameraOk(), health_.modelOk,
                        health_.state == ServiceState::Degraded);
        can_->start();
    }
    if (snapshots) {
        snapshots_.reset();
        if (config().notify.snapshots.enabled) {
            snapshots_ = std::make_unique<SnapshotWriter>(config().notify.snapshots, journal_);
        }
    }
}

void Daemon::publishProperties() {
    if (!dbus_) {
        return;
    }
    dbus_->setState(health_.state);
    dbus_->setConfigVersion(config().version);
    dbus_->setConfigError(ota_.configError());
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
    ServiceState next = ServiceState::Starting;
    if (ready_) {
        next =
            health_.cameraOk() && health_.modelOk ? ServiceState::Running : ServiceState::Degraded;
    }
    if (next != health_.state) {
        health_.state = next;
        if (dbus_) {
            dbus_->setState(health_.state);
        }
    }
    if (can_) {
        can_->setHealth(health_.cameraOk(), health_.modelOk,
                        health_.state == ServiceState::Degraded);
    }
    reporter_.publish(statusLine(), ready_);
}

std::string Daemon::statusLine() const {
    return StatusReporter::line(health_, engine_.activeAlerts(), config().llm.model.name,
                                config().version);
}

std::string Daemon::statusJson() const {
    return StatusReporter::json(statusSnapshot());
}

std::string Daemon::metricsText() const {
    return dmsd::metricsText(statusSnapshot(), sequenceLatency_, dispatcher_.alertPathHistogram());
}

StatusSnapshot Daemon::statusSnapshot() const {
    StatusSnapshot s;
    s.config = &config();
    s.health = health_;
    s.active = engine_.activeAlerts();
    s.engineNow = engineNow();
    s.realtimeUs = realtimeNowUs();
    s.driverState = engine_.driverState();
    s.llm = scheduler_ ? scheduler_->metrics() : LlmMetricsSnapshot{};
    s.activeMode = scheduler_ ? scheduler_->activeMode() : config().llm.scheduler.mode;
    s.capture = capture_ ? capture_->counters() : CaptureCounters{};
    s.frames = framePath_ ? framePath_->counters() : FramePathCounters{};
    s.sequences = sequences_;
    s.ota = ota_.counters();
    s.alertPath = dispatcher_.alertPath();
    s.lastAnalysisUs = lastAnalysisUs_;
    s.configError = ota_.configError();
    if (can_) {
        s.can = can_->status();
    }
    if (snapshots_) {
        s.snapshots = snapshots_->stats();
    }
    if (metrics_.enabled()) {
        s.metrics = metrics_.stats();
    }
    if (const std::shared_ptr<VisionStage> vision = vision_.load(std::memory_order_acquire)) {
        s.vision = vision->stats();
    }
    s.visionOnsets = visionOnsets_;
    s.visionQuiet = visionQuiet_;
    s.context = budget_;
    return s;
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
    ota_.tick();
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

// ---------------------------------------------------------------- OtaTarget

ConfigHealth Daemon::health() const {
    if (!health_.cameraOk()) {
        return {false,
                fmt::format("camera {} unusable ({})", config().capture.source,
                            health_.cameraProblem.empty() ? "no frames" : health_.cameraProblem)};
    }
    if (!health_.modelOk) {
        return {false, fmt::format("model server unusable ({})", health_.modelProblem)};
    }
    return {true, {}};
}

void Daemon::apply(const Config& /*next*/, const std::vector<ConfigPart>& parts) {
    // config() already is the new configuration: each part restarted below reads
    // its settings from there.
    const bool captureChanged = contains(parts, ConfigPart::Capture);
    const bool framePathChanged = captureChanged || contains(parts, ConfigPart::Sampling) ||
                                  contains(parts, ConfigPart::Encode);
    const bool llmChanged = contains(parts, ConfigPart::Llm);
    // The frames' layout comes with each sequence: encode needs no new scheduler.
    const bool schedulerChanged = llmChanged || contains(parts, ConfigPart::Analyses);
    // What an image costs, and what fits, is measured again for the new
    // settings: the fit's changes end here, and come back if still needed.
    const bool budgetChanged =
        framePathChanged || llmChanged || contains(parts, ConfigPart::Analyses);
    if (budgetChanged) {
        frameFit_ = {};
        learnedContext_.reset();
        budgetClient_.reset();
        ++budgetGeneration_;
        budget_ = ContextReport{};
    }
    const ModelClientPtr clientBefore = client_;
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
        startAnalysis();
    }
    if (budgetChanged && client_ == clientBefore && client_ && health_.modelOk) {
        startBudget(); // the same client: no health check will start it
    }
    if (contains(parts, ConfigPart::Alerts)) {
        engine_.updateRules(config().alerts);
    }
    if (contains(parts, ConfigPart::Vision)) {
        // Only the vision stage: capture, sampler and model go on.
        stopVision();
        startVision();
    }
    startNotifiers(contains(parts, ConfigPart::Dbus), contains(parts, ConfigPart::Can),
                   contains(parts, ConfigPart::Snapshots));
    if (contains(parts, ConfigPart::Dbus)) {
        publishProperties();
    }
    if (contains(parts, ConfigPart::Log) && !options_.verbose) {
        log::setLevel(config().logging.level);
    }
    if (contains(parts, ConfigPart::Metrics)) {
        metrics_.start(config().metrics);
    }
}

void Daemon::reloading(const std::string& status) {
    notifier_.reloading(status);
}

void Daemon::reloaded() {
    updateState();
    notifier_.ready(statusLine());
}

void Daemon::rejected(const std::string& status) {
    notifier_.status(status);
}

void Daemon::configStateChanged() {
    if (dbus_) {
        dbus_->setConfigVersion(config().version);
        dbus_->setConfigError(ota_.configError());
    }
}

// ---------------------------------------------------------------- process

int runService(const DaemonOptions& options, DaemonSeams seams) {
    log::configure(log::Backend::Auto,
                   options.verbose ? log::Priority::Debug : log::Priority::Info);
    log::setStderrLocation(options.verbose);
    std::optional<Config> config = loadConfigOrReport(options.configPath, "run");
    if (!config) {
        return 2;
    }
    if (!options.verbose) {
        log::setLevel(config->logging.level);
    }
    gst_init(nullptr, nullptr);
    try {
        Daemon daemon(std::move(*config), options, std::move(seams));
        return daemon.run();
    } catch (const std::exception& e) {
        // Only start-up can throw (a broken installation); the frame, HTTP and
        // notifier paths report errors as values and keep running.
        log::error("dmsd cannot start: {}", e.what());
        return 2;
    }
}

} // namespace dmsd
