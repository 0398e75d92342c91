#include "batch/analyzer.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <latch>
#include <map>
#include <mutex>
#include <optional>
#include <sys/ioctl.h>
#include <thread>
#include <unistd.h>
#include <variant>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "alerts/alert_engine.h"
#include "alerts/vision_evidence.h"
#include "base/input_file.h"
#include "batch/duration_probe.h"
#include "batch/output.h"
#include "batch/progress.h"
#include "llm/analysis.h"
#include "llm/analysis_scheduler.h"
#include "llm/latest_wins.h"
#include "llm/model_backend.h"
#include "llm/model_health.h"
#include "notify/journal.h"
#include "notify/snapshots.h"
#include "pipeline/capture.h"
#include "pipeline/frame_path.h"
#include "vision/evidence_frames.h"
#include "vision/face_analyzer.h"
#include "vision/signals.h"

namespace dmsd::batch {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

EngineTime engineTime(double seconds) {
    return EngineTime(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

/// How a worker's video ended.
struct EndInfo {
    std::string error; ///< empty: decoded to the end
    FramePathCounters counters;
};

/// One frame the per-frame vision analysed.
struct VisionFrame {
    DriverSignals signals;
    bool stopped = false; ///< the vision failed here: model-only from now on
    /// --evidence: the frame as JPEG when notable (vision/evidence_frames.h).
    std::optional<EvidenceFrame> evidence;
};

using Item = std::variant<SequenceResult, SkippedWindow, EndInfo, VisionFrame>;

std::size_t terminalColumns() {
    winsize size{};
    if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) {
        return size.ws_col;
    }
    return 80;
}

} // namespace

struct BatchAnalyzer::Impl {
    /// One input video. The atomics are shared with its worker; the rest
    /// belongs to the io thread.
    struct Video {
        std::size_t index = 0;
        std::string name;                        ///< as given on the command line; also the path
        std::atomic<std::size_t> outstanding{0}; ///< sequences emitted, not yet written
        /// The engine holds an alert (the loop writes it after each item; the
        /// frame thread reads it for vision.quiet_interval).
        std::atomic<bool> alertRaised{false};

        bool started = false;
        bool done = false;
        std::optional<double> durationS;
        std::uint64_t nextOrdinal = 0;
        std::map<std::uint64_t, Item> ready; ///< completed out of order, waiting for their turn
        std::unique_ptr<AlertEngine> engine;
        VideoSummary summary;
        std::vector<AlertEvent> carried; ///< transitions not yet on a sequence line
        double lastEndS = 0.0;
        std::uint64_t windowsDone = 0;

        // --evidence: the last analysed sequence and its answers, for alerts
        // decided while static windows carried them forward
        EncodedSequencePtr lastSequence;
        boost::json::object lastAnalyses;
        EvidenceFrames visionPictures; ///< the pictures of vision's alerts

        // --realtime: latest wins, as in `dmsd run`
        std::unique_ptr<LatestWinsPump> pump;
        std::optional<EndInfo> endPending; ///< the end, waiting for the last answer

        std::uint64_t visionFrames = 0; ///< frames the vision analysed (io thread)
    };

    struct Pending {
        Video* video = nullptr;
        std::uint64_t ordinal = 0;
        EncodedSequencePtr sequence;
    };

    Impl(Config config, BatchOptions options)
        : config_(std::move(config)), options_(std::move(options)), signals_(io_),
          progressTimer_(io_), stopTimer_(io_) {
        for (std::size_t i = 0; i < options_.videos.size(); ++i) {
            auto video = std::make_unique<Video>();
            video->index = i;
            video->name = options_.videos[i];
            videos_.push_back(std::move(video));
        }
        // llm.max_in_flight is per server: several servers take that many each.
        const std::size_t maxInFlight =
            static_cast<std::size_t>(std::max(1, config_.llm.server.maxInFlight)) *
            serverUrls(config_.llm.server).size();
        workers_ = std::max<std::size_t>(1, std::min(options_.jobs, videos_.size()));
        probed_ = std::make_unique<std::latch>(static_cast<std::ptrdiff_t>(workers_));
        submitLimit_ = maxInFlight + 1;
        if (!options_.pipeline) {
            backlog_ = 0;
        } else if (options_.backlogPerVideo > 0) {
            backlog_ = options_.backlogPerVideo;
        } else {
            backlog_ = std::max<std::size_t>(2, (submitLimit_ + workers_ - 1) / workers_ + 1);
        }
    }

    // ------------------------------------------------------------ run

    int run() {
        if (options_.outputPath.empty()) {
            writer_ = std::make_unique<LineWriter>(STDOUT_FILENO);
        } else {
            writer_ = std::make_unique<LineWriter>(options_.outputPath);
        }
        if (!writer_->ok()) {
            fmt::print(stderr, "dmsd analyze: {}\n", writer_->error());
            return 2;
        }
        if (!options_.evidenceDir.empty()) {
            if (int code = startEvidence(); code != 0) {
                return code;
            }
        }
        // A closed pipe (`dmsd analyze ... | head`) must be an error value, not a kill.
        std::signal(SIGPIPE, SIG_IGN);

        signals_.add(SIGINT);
        signals_.add(SIGTERM);
        armSignals();

        TransportOptions transportOptions;
        transportOptions.maxQueued =
            std::max<std::size_t>(64, (submitLimit_ + videos_.size()) * kAnalysisCount);
        client_ = createModelClient(io_.get_executor(), config_.llm, transportOptions);
        scheduler_ = AnalysisScheduler::create(io_.get_executor(), client_, config_.llm.scheduler,
                                               config_.analyses);

        if (int code = checkModelServer(); code != 0) {
            return code;
        }
        if (interrupted_) {
            return 130;
        }

        startedAt_ = Clock::now();
        auto guard = asio::make_work_guard(io_);
        guard_ = &guard;
        std::vector<std::thread> threads;
        if (videos_.empty()) {
            finishAll();
        } else {
            for (std::size_t i = 0; i < workers_; ++i) {
                threads.emplace_back([this] { workerLoop(); });
            }
            // Progress starts once every video's length is known (onProbed).
        }
        io_.run();
        {
            std::lock_guard lock(mutex_);
            cancelled_ = true;
        }
        cv_.notify_all();
        for (std::thread& thread : threads) {
            thread.join();
        }
        guard_ = nullptr;

        const bool evidenceComplete = finishEvidence();
        if (interrupted_) {
            return 130;
        }
        if (!evidenceComplete) {
            return 1;
        }
        if (!writer_->ok()) {
            fmt::print(stderr, "dmsd analyze: {}\n", writer_->error());
            return 1;
        }
        if (videosFailed_ > 0 || sequencesFailed_ > 0) {
            return 1;
        }
        return 0;
    }

    /// --evidence DIR: the directory must be usable before anything is analysed.
    int startEvidence() {
        const std::filesystem::path dir(options_.evidenceDir);
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (ec || ::access(dir.c_str(), W_OK | X_OK) != 0) {
            fmt::print(stderr, "dmsd analyze: --evidence {}: {}\n", dir.string(),
                       ec ? ec.message() : std::strerror(errno));
            return 2;
        }
        SnapshotSettings settings;
        settings.enabled = true;
        settings.dir = dir.string();
        settings.maxFiles = 1000000; // the batch's evidence is kept whole
        // The queue is deep: a batch must not drop evidence because the disk is slower
        // than the model server for a moment (each entry holds one sequence's JPEGs).
        evidence_ = std::make_unique<SnapshotWriter>(settings, Journal::process(), 256);
        return 0;
    }

    /// Waits for the evidence to be on disk; false when some could not be written.
    bool finishEvidence() {
        if (!evidence_) {
            return true;
        }
        evidence_->waitIdle(std::chrono::minutes(2));
        const SnapshotStats stats = evidence_->stats();
        evidence_.reset();
        if (stats.failed > 0 || stats.dropped > 0) {
            fmt::print(stderr,
                       "dmsd analyze: --evidence {}: {} snapshot(s) could not be written, {} "
                       "dropped (queue full){}{}\n",
                       options_.evidenceDir, stats.failed, stats.dropped,
                       stats.lastError.empty() ? "" : ": ", stats.lastError);
            return false;
        }
        if (options_.progress != BatchOptions::Progress::None) {
            fmt::print(stderr, "dmsd analyze: {} evidence snapshot(s) written to {}\n",
                       stats.written, options_.evidenceDir);
        }
        return true;
    }

    /// Health check and warm-up before anything is decoded (exit 3 if unusable).
    int checkModelServer() {
        std::optional<ModelCheck> check;
        bool done = false;
        asio::co_spawn(io_, dmsd::checkModel(client_),
                       [&](const std::exception_ptr& error, ModelCheck result) {
                           done = true;
                           if (!error) {
                               check = std::move(result);
                           }
                       });
        while (!done && !interrupted_ && io_.run_one() > 0) {
        }
        if (interrupted_) {
            return 130;
        }
        if (!check || check->failed == ModelCheck::Step::Health) {
            const std::string problem =
                check ? check->problem
                      : fmt::format("model {} on {} is not usable", config_.llm.model.name,
                                    serverUrlsText(config_.llm.server));
            fmt::print(stderr,
                       "dmsd analyze: the model server is unusable: {}\n"
                       "dmsd analyze: start the server (or fix llm.url), `ollama pull {}` (or "
                       "fix llm.model: it must be a vision model), then run again\n",
                       problem, config_.llm.model.name);
            return 3;
        }
        if (check->failed == ModelCheck::Step::WarmUp) {
            fmt::print(stderr,
                       "dmsd analyze: the model server is unusable: loading {} on {} failed: {}\n",
                       config_.llm.model.name, serverUrlsText(config_.llm.server),
                       check->warmUpError ? check->warmUpError->message : std::string("no answer"));
            return 3;
        }
        return 0;
    }

    // ------------------------------------------------------------ workers

    void workerLoop() {
        {
            // First the length of every video, so that the progress names the
            // real total from its first line and a video that ends short of
            // its length is reported partial; the workers share the list and
            // none decodes before all are probed (their lengths are posted to
            // the loop before any video's end can be).
            for (;;) {
                const std::size_t i = nextProbe_.fetch_add(1);
                if (i >= videos_.size() || cancelled_.load()) {
                    break;
                }
                Video* video = videos_[i].get();
                // Not a regular file: no probe (a FIFO would hold it in a read).
                const std::optional<double> duration =
                    inputFileProblem(video->name, InputKind::RegularFile)
                        ? std::nullopt
                        : probeDurationSeconds(video->name);
                post([this, video, duration] { onProbed(*video, duration); });
            }
            probed_->arrive_and_wait();
        }
        for (;;) {
            if (cancelled_.load()) {
                return;
            }
            const std::size_t i = nextVideo_.fetch_add(1);
            if (i >= videos_.size()) {
                return;
            }
            processVideo(*videos_[i]);
        }
    }

    void post(std::function<void()> fn) { asio::post(io_, std::move(fn)); }

    void processVideo(Video& video) {
        // A FIFO or a device given as a video would block the decoder in a
        // read, deaf to Ctrl-C: only regular files are analysed.
        if (auto problem = inputFileProblem(video.name, InputKind::RegularFile)) {
            EndInfo end;
            end.error = fmt::format("{}: {}; dmsd analyze reads recorded video files", video.name,
                                    *problem);
            post([this, &video, end] { onEnded(video, 0, end); });
            return;
        }
        post([this, &video] { onStarted(video); });

        CaptureSettings settings = config_.capture;
        settings.source = "file:" + video.name;

        // --realtime: the live path ends at the file's end or first error
        // (Live capture would otherwise restart the file like a lost camera).
        std::mutex liveMutex;
        std::string liveError;
        std::atomic<bool> liveEnded{false};

        CaptureOptions captureOptions;
        captureOptions.mode = options_.realtime ? CaptureMode::Live : CaptureMode::Offline;
        if (options_.realtime) {
            captureOptions.onEvent = [&](const CaptureEvent& event) {
                switch (event.kind) {
                case CaptureEvent::Kind::EndOfStream:
                    liveEnded = true;
                    break;
                case CaptureEvent::Kind::Error:
                case CaptureEvent::Kind::FrameTimeout: {
                    std::lock_guard lock(liveMutex);
                    if (liveError.empty()) {
                        liveError = event.message;
                    }
                    liveEnded = true;
                    break;
                }
                default:
                    break;
                }
            };
        }

        std::uint64_t ordinal = 0;
        EndInfo end;

        // The per-frame vision, synchronously on this worker: every
        // every_nth_frame-th frame in decoding order, on the frame's video
        // time, so that a batch gives the same result every run (the model
        // is loaded once per process and shared).
        std::unique_ptr<FaceAnalyzer> analyzer;
        std::optional<SignalTracker> tracker;
        std::optional<DriverSignals> previous;
        std::uint64_t frameIndex = 0;
        if (config_.vision.enabled) {
            auto opened = FaceAnalyzer::open(config_.vision);
            if (auto* error = std::get_if<std::string>(&opened)) {
                end.error = fmt::format("{}: vision: {}", video.name, *error);
                post([this, &video, ordinal, end] { onEnded(video, ordinal, end); });
                return;
            }
            analyzer = std::get<0>(std::move(opened));
            tracker.emplace(config_.vision.signals);
        }
        {
            Capture capture(settings, captureOptions);
            if (auto error = capture.start()) {
                end.error = error->message;
                post([this, &video, ordinal, end] { onEnded(video, ordinal, end); });
                return;
            }
            FramePathCallbacks callbacks;
            callbacks.onSequence = [this, &video, &ordinal](EncodedSequencePtr sequence) {
                video.outstanding.fetch_add(1);
                const std::uint64_t o = ordinal++;
                post([this, &video, o, sequence = std::move(sequence)]() mutable {
                    onSequence(video, o, std::move(sequence));
                });
            };
            callbacks.onSkipped = [this, &video, &ordinal](const SkippedWindow& window) {
                const std::uint64_t o = ordinal++;
                post([this, &video, o, window] { onSkipped(video, o, window); });
            };
            FramePath* pathRef = nullptr;
            if (analyzer) {
                callbacks.onFrame = [&](const FramePtr& frame) {
                    if (frameIndex++ % static_cast<std::uint64_t>(config_.vision.everyNthFrame) !=
                        0) {
                        return;
                    }
                    if (!analyzer) {
                        return; // failed earlier in this video
                    }
                    FaceAnalysis analysis;
                    try {
                        analysis = analyzer->analyze(lumaOf(*frame));
                    } catch (const std::exception& e) {
                        // As in `dmsd run`: a vision failure is reported and the
                        // video goes on model-only.
                        fmt::print(stderr, "dmsd analyze: {}: vision failed at {:.3f} s: {}\n",
                                   video.name, frame->ptsS(), e.what());
                        analyzer.reset();
                        VisionFrame stopped{tracker->current(), true, std::nullopt};
                        stopped.signals.tS = frame->ptsS();
                        const std::uint64_t o = ordinal++;
                        post([this, &video, o, stopped] { onVision(video, o, stopped); });
                        return;
                    }
                    const DriverSignals& now = tracker->update(analysis.face, frame->ptsS());
                    if (previous && visionOnset(*previous, now, config_.vision.signals) &&
                        pathRef != nullptr) {
                        // Ask the model about this window now (event-triggered question).
                        pathRef->requestCloseWindow();
                    }
                    if (config_.vision.quietInterval.count() > 0 && pathRef != nullptr) {
                        // As in `dmsd run`: a quiet scene and no alert raised.
                        const bool quiet =
                            visionQuiet(now) && !video.alertRaised.load(std::memory_order_acquire);
                        pathRef->setWindowInterval(quiet ? config_.vision.quietInterval
                                                         : Millis{0});
                    }
                    VisionFrame item{now, false, std::nullopt};
                    if (evidence_) {
                        item.evidence = notableFrame(*frame, previous, now, config_.vision.signals);
                    }
                    previous = now;
                    const std::uint64_t o = ordinal++;
                    post([this, &video, o, item = std::move(item)] { onVision(video, o, item); });
                };
            }
            FramePath path(capture, config_.sampling, config_.encode, callbacks);
            pathRef = &path;

            if (options_.realtime) {
                while (!cancelled_.load() && !liveEnded.load()) {
                    if (path.pumpOnce(100ms) == FramePath::Step::Ended) {
                        break;
                    }
                }
                capture.stop();
                // Frames still in the ring, then the sampler's last partial window.
                while (!cancelled_.load() && path.pumpOnce(0ms) != FramePath::Step::Ended) {
                }
                std::lock_guard lock(liveMutex);
                end.error = liveError;
            } else {
                while (!cancelled_.load()) {
                    {
                        // Back-pressure: decoding waits for the analysis (bounded memory).
                        std::unique_lock lock(mutex_);
                        cv_.wait(lock, [&] {
                            return cancelled_.load() || video.outstanding.load() <= backlog_;
                        });
                    }
                    if (cancelled_.load()) {
                        break;
                    }
                    if (path.pumpOnce(200ms) == FramePath::Step::Ended) {
                        break;
                    }
                }
                capture.stop();
                if (auto error = capture.finalError()) {
                    end.error = error->message;
                }
            }
            end.counters = path.counters();
        }
        if (!cancelled_.load()) {
            post([this, &video, ordinal, end] { onEnded(video, ordinal, end); });
        }
    }

    // ------------------------------------------------------------ io thread: inputs

    void onProbed(Video& video, std::optional<double> duration) {
        video.durationS = duration;
        if (++videosProbed_ == videos_.size() && !finished_ && !interrupted_ &&
            options_.progress != BatchOptions::Progress::None) {
            printProgress(false);
            armProgress();
        }
    }

    void onStarted(Video& video) {
        video.started = true;
        video.engine = std::make_unique<AlertEngine>(config_.alerts);
        if (options_.realtime) {
            Video* v = &video;
            video.pump = std::make_unique<LatestWinsPump>(
                [this, v](const SequenceResult& result) { onRealtimeResult(*v, result); },
                [this, v](const EncodedSequencePtr&) {
                    ++v->summary.sequencesSuperseded;
                    ++v->windowsDone;
                    ++windowsDone_;
                });
            video.pump->setTarget(LatestWinsPump::submitTo(scheduler_));
        }
    }

    void onSequence(Video& video, std::uint64_t ordinal, EncodedSequencePtr sequence) {
        if (cancelled_) {
            return;
        }
        if (options_.realtime) {
            // Latest wins, as in `dmsd run`: the analysis never falls behind the video.
            video.pump->offer(std::move(sequence));
            return;
        }
        pending_.push_back(Pending{&video, ordinal, std::move(sequence)});
        submitPending();
    }

    void onSkipped(Video& video, std::uint64_t ordinal, const SkippedWindow& window) {
        if (cancelled_) {
            return;
        }
        if (options_.realtime) {
            processSkip(video, window);
            return;
        }
        video.ready.emplace(ordinal, window);
        drain(video);
    }

    void onVision(Video& video, std::uint64_t ordinal, const VisionFrame& frame) {
        if (cancelled_) {
            return;
        }
        if (options_.realtime) {
            processVision(video, frame);
            return;
        }
        video.ready.emplace(ordinal, frame);
        drain(video);
    }

    void onEnded(Video& video, std::uint64_t ordinal, EndInfo end) {
        if (cancelled_) {
            return;
        }
        if (!video.started) {
            onStarted(video);
        }
        if (options_.realtime) {
            if (video.pump->busy()) {
                video.endPending = std::move(end);
                return;
            }
            finishVideo(video, end, VideoSummary::Status::Ok);
            return;
        }
        video.ready.emplace(ordinal, std::move(end));
        drain(video);
    }

    // ------------------------------------------------------------ io thread: analysis

    void submitPending() {
        while (!cancelled_ && !pending_.empty() && submitted_ < submitLimit_) {
            Pending next = std::move(pending_.front());
            pending_.pop_front();
            ++submitted_;
            Video* video = next.video;
            const std::uint64_t ordinal = next.ordinal;
            scheduler_->submit(std::move(next.sequence),
                               [this, video, ordinal](SequenceResult result) {
                                   --submitted_;
                                   if (cancelled_ || result.metrics.cancelled) {
                                       return;
                                   }
                                   video->ready.emplace(ordinal, std::move(result));
                                   drain(*video);
                                   submitPending();
                               });
        }
    }

    void onRealtimeResult(Video& video, const SequenceResult& result) {
        if (cancelled_ || result.metrics.cancelled) {
            return;
        }
        // The live daemon decides when the answer arrives: the window's end
        // plus the latency, on the video's own clock.
        const double tEnd = result.sequence->tEndS;
        const EngineTime t =
            engineTime(tEnd) + std::chrono::duration_cast<EngineTime>(result.metrics.latency);
        processResult(video, result, t);
        // A sequence still waiting goes next (the pump sends it); the end waits for it.
        if (!video.pump->busy() && video.endPending) {
            EndInfo end = std::move(*video.endPending);
            video.endPending.reset();
            finishVideo(video, end, VideoSummary::Status::Ok);
        }
    }

    /// Feeds the engine and the output with every item whose turn has come.
    void drain(Video& video) {
        for (auto it = video.ready.find(video.nextOrdinal); it != video.ready.end();
             it = video.ready.find(video.nextOrdinal)) {
            Item item = std::move(it->second);
            video.ready.erase(it);
            ++video.nextOrdinal;
            processItem(video, std::move(item));
            if (video.done) {
                return;
            }
        }
    }

    void processItem(Video& video, Item item) {
        if (auto* result = std::get_if<SequenceResult>(&item)) {
            processResult(video, *result, engineTime(result->sequence->tEndS));
        } else if (auto* window = std::get_if<SkippedWindow>(&item)) {
            processSkip(video, *window);
        } else if (auto* frame = std::get_if<VisionFrame>(&item)) {
            processVision(video, *frame);
        } else {
            finishVideo(video, std::get<EndInfo>(item), VideoSummary::Status::Ok);
        }
        if (video.engine) {
            video.alertRaised.store(!video.engine->activeAlerts().empty(),
                                    std::memory_order_release);
        }
    }

    /// --evidence: a snapshot for each raise among \a events.
    void keepEvidence(const Video& video, const std::vector<AlertEvent>& events,
                      const EncodedSequencePtr& sequence, const boost::json::object& analyses) {
        for (const AlertEvent& event : events) {
            if (event.type != AlertEvent::Type::Raised) {
                continue;
            }
            SnapshotRequest request;
            request.event = event;
            request.sequence = sequence;
            request.analyses = analyses;
            request.configVersion = config_.version;
            request.video = video.name;
            request.videoTimeS = static_cast<double>(event.at.count()) / 1000.0;
            evidence_->submit(std::move(request)); // a full queue is counted as dropped
        }
    }

    void countRaised(Video& video, const std::vector<AlertEvent>& events) {
        for (const AlertEvent& event : events) {
            if (event.type == AlertEvent::Type::Raised) {
                ++video.summary.alertsRaised[std::string(alertKindName(event.kind))];
            }
        }
    }

    void processResult(Video& video, const SequenceResult& result, EngineTime t) {
        const EncodedSequence& sequence = *result.sequence;
        std::vector<AlertEvent> events =
            video.engine->observe(t, sequence.sequenceId, result.answers);
        countRaised(video, events);
        std::vector<AlertEvent> alerts = std::move(video.carried);
        video.carried.clear();
        if (evidence_) {
            // Carried transitions were decided on the previous answers; the new ones on these.
            keepEvidence(video, alerts, video.lastSequence, video.lastAnalyses);
            video.lastSequence = result.sequence;
            video.lastAnalyses = answersJson(result.answers);
            keepEvidence(video, events, video.lastSequence, video.lastAnalyses);
        }
        alerts.insert(alerts.end(), events.begin(), events.end());

        bool anyAnswer = false;
        bool anyAsked = false;
        for (AnalysisKind kind : kAllAnalyses) {
            if (!result.answers.asked(kind)) {
                continue;
            }
            anyAsked = true;
            if (result.answers.error(kind) != nullptr) {
                ++video.summary.analysisErrors;
            } else {
                anyAnswer = true;
            }
        }
        if (anyAsked && !anyAnswer) {
            ++video.summary.sequencesFailed;
            ++sequencesFailed_;
        }
        ++video.summary.sequencesAnalysed;
        video.summary.timeAnalysedS += sequence.tEndS - sequence.tStartS;
        video.lastEndS = std::max(video.lastEndS, sequence.tEndS);
        ++video.windowsDone;
        ++windowsDone_;

        writeLine(sequenceLine(video.name, result, alerts));
        for (const AlertEvent& event : alerts) {
            writeLine(alertLine(video.name, event));
        }

        if (!options_.realtime) {
            {
                std::lock_guard lock(mutex_);
                video.outstanding.fetch_sub(1);
            }
            cv_.notify_all();
        }
    }

    void processSkip(Video& video, const SkippedWindow& window) {
        // Static scene: the last answers still stand (docs/interfaces.md section 2, Sampling).
        std::vector<AlertEvent> events =
            video.engine->carryForward(engineTime(window.tEndS), window.lastSequenceId);
        countRaised(video, events);
        video.carried.insert(video.carried.end(), events.begin(), events.end());
        ++video.summary.sequencesSkippedStatic;
        video.summary.timeSkippedS += window.tEndS - window.tStartS;
        video.lastEndS = std::max(video.lastEndS, window.tEndS);
        ++video.windowsDone;
        ++windowsDone_;
    }

    void processVision(Video& video, const VisionFrame& frame) {
        std::vector<AlertEvent> events;
        if (frame.stopped) {
            events = video.engine->visionStopped(engineTime(frame.signals.tS));
        } else {
            ++video.visionFrames;
            if (options_.signals) {
                writeLine(signalsLine(video.name, frame.signals));
            }
            // Decided at the frame's video time; written at once (no sequence
            // line carries a vision decision).
            if (frame.evidence) {
                video.visionPictures.add(*frame.evidence); // before the decision it may show
            }
            events = video.engine->observeVision(engineTime(frame.signals.tS),
                                                 visionEvidenceOf(frame.signals));
        }
        countRaised(video, events);
        if (evidence_) {
            // Raised by vision alone: its own frames; joined by vision: the model's.
            std::vector<AlertEvent> byVision;
            std::vector<AlertEvent> others;
            for (const AlertEvent& event : events) {
                (event.source == AlertSource::Vision ? byVision : others).push_back(event);
            }
            keepEvidence(video, byVision, video.visionPictures.sequence(), {});
            keepEvidence(video, others, video.lastSequence, video.lastAnalyses);
        }
        for (const AlertEvent& event : events) {
            writeLine(alertLine(video.name, event));
        }
    }

    void finishVideo(Video& video, const EndInfo& end, VideoSummary::Status status) {
        if (video.done) {
            return;
        }
        video.done = true;
        VideoSummary& summary = video.summary;
        if (video.engine) {
            // Transitions that became due by the end of the video with no new input.
            std::vector<AlertEvent> events = video.engine->tick(engineTime(video.lastEndS));
            countRaised(video, events);
            video.carried.insert(video.carried.end(), events.begin(), events.end());
            for (const ActiveAlert& alert : video.engine->activeAlerts()) {
                summary.alertsActiveAtEnd.emplace_back(alertKindName(alert.kind));
            }
        }
        summary.trailingAlerts = std::move(video.carried);
        if (evidence_) {
            keepEvidence(video, summary.trailingAlerts, video.lastSequence, video.lastAnalyses);
        }
        video.carried.clear();
        summary.framesDecoded = end.counters.framesSampled;
        summary.encodeErrors = end.counters.encodeErrors;
        summary.durationS = video.lastEndS;
        summary.status = status;
        if (!end.error.empty()) {
            summary.error = end.error;
            if (status == VideoSummary::Status::Ok) {
                // Frames decoded before the error: a partial video, not a lost one.
                summary.status = end.counters.framesSampled > 0 ? VideoSummary::Status::Partial
                                                                : VideoSummary::Status::Failed;
            }
        } else if (status == VideoSummary::Status::Ok && video.durationS) {
            // A truncated file often just ends (end of stream, no error) before
            // the length its header announces: that is not a complete video.
            const double slackS =
                1.0 + std::chrono::duration<double>(config_.sampling.interval).count();
            if (video.lastEndS + slackS < *video.durationS) {
                summary.status = VideoSummary::Status::Partial;
                summary.error =
                    fmt::format("{}: decoding ended at {:.1f} s of the {:.1f} s the file "
                                "announces (truncated or corrupt file)",
                                video.name, video.lastEndS, *video.durationS);
            }
        }
        if (summary.status == VideoSummary::Status::Partial) {
            summary.expectedDurationS = video.durationS;
        }
        if (summary.status == VideoSummary::Status::Failed ||
            summary.status == VideoSummary::Status::Partial) {
            ++videosFailed_;
            if (options_.progress != BatchOptions::Progress::None) {
                clearBar();
                fmt::print(stderr, "dmsd analyze: {}: {}\n", video.name, summary.error);
            }
        }
        for (const AlertEvent& event : summary.trailingAlerts) {
            writeLine(alertLine(video.name, event));
        }
        writeLine(summaryLine(video.name, summary));
        ++videosDone_;
        if (videosDone_ == videos_.size() && !interrupted_) {
            // Deferred: this may run inside a scheduler callback, which must not
            // shut the scheduler down under its own feet.
            asio::post(io_, [this] {
                if (!finished_) {
                    finishAll();
                }
            });
        }
    }

    void writeLine(std::string line) {
        if (!writer_->writeLine(std::move(line)) && !outputFailed_) {
            // Nowhere to put results: stop the batch rather than analyse for nothing.
            outputFailed_ = true;
            clearBar();
            fmt::print(stderr, "dmsd analyze: {}\n", writer_->error());
            stopEverything();
        }
    }

    // ------------------------------------------------------------ ending

    void finishAll() {
        finished_ = true;
        progressTimer_.cancel();
        printProgress(true);
        stopEverything();
    }

    void stopEverything() {
        {
            std::lock_guard lock(mutex_);
            cancelled_ = true;
        }
        cv_.notify_all();
        pending_.clear();
        for (const auto& video : videos_) {
            if (video->pump) {
                video->pump->stop();
            }
        }
        if (scheduler_) {
            scheduler_->shutdown();
        }
        if (client_) {
            client_->cancelAll();
        }
        signals_.cancel();
        progressTimer_.cancel();
        // Closing sockets completes asynchronously; give it a moment, then stop.
        stopTimer_.expires_after(200ms);
        stopTimer_.async_wait([this](const boost::system::error_code&) { io_.stop(); });
        if (guard_ != nullptr) {
            guard_->reset();
        }
    }

    void armSignals() {
        signals_.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (ec) {
                return;
            }
            if (finished_) {
                return; // everything is written already: the batch completed
            }
            if (interrupted_) {
                // A second Ctrl-C: the user does not want to wait for the flush.
                std::_Exit(130);
            }
            interrupted_ = true;
            onInterrupt(sig);
            armSignals();
        });
    }

    void onInterrupt(int sig) {
        if (guard_ == nullptr) {
            return; // still checking the model server: run() returns 130
        }
        {
            std::lock_guard lock(mutex_);
            cancelled_ = true;
        }
        cv_.notify_all();
        pending_.clear();
        if (scheduler_) {
            scheduler_->shutdown();
        }
        // Everything finished is written, in order per video (holes left by
        // cancelled sequences are skipped), then an `interrupted` summary.
        for (const auto& video : videos_) {
            if (!video->started || video->done) {
                continue;
            }
            for (auto& [ordinal, item] : video->ready) {
                if (std::holds_alternative<EndInfo>(item)) {
                    finishVideo(*video, std::get<EndInfo>(item), VideoSummary::Status::Ok);
                    break;
                }
                processItem(*video, std::move(item));
            }
            video->ready.clear();
            if (!video->done) {
                EndInfo end;
                end.error = fmt::format("interrupted by {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                finishVideo(*video, end, VideoSummary::Status::Interrupted);
            }
        }
        clearBar();
        if (options_.progress != BatchOptions::Progress::None) {
            fmt::print(stderr, "dmsd analyze: interrupted; the results finished so far are "
                               "written\n");
        }
        stopEverything();
    }

    // ------------------------------------------------------------ progress

    void armProgress() {
        if (options_.progress == BatchOptions::Progress::None) {
            return;
        }
        const auto interval = options_.progress == BatchOptions::Progress::Bar
                                  ? options_.barInterval
                                  : options_.plainInterval;
        progressTimer_.expires_after(interval);
        progressTimer_.async_wait([this](const boost::system::error_code& ec) {
            if (ec || finished_ || cancelled_) {
                return;
            }
            printProgress(false);
            armProgress();
        });
    }

    ProgressFigures figures() const {
        ProgressFigures f;
        f.videosTotal = videos_.size();
        f.videosDone = videosDone_;
        f.videosFailed = videosFailed_;
        f.windowsDone = windowsDone_;
        const double interval =
            std::max(0.001, static_cast<double>(config_.sampling.interval.count()) / 1000.0);
        double knownSum = 0.0;
        std::size_t known = 0;
        for (const auto& video : videos_) {
            if (video->durationS) {
                knownSum += *video->durationS;
                ++known;
            }
        }
        const double meanDuration = known > 0 ? knownSum / static_cast<double>(known) : 0.0;
        double estimated = 0.0;
        for (const auto& video : videos_) {
            if (video->done) {
                estimated += static_cast<double>(video->windowsDone);
            } else {
                const double duration = video->durationS.value_or(meanDuration);
                estimated += std::max(std::floor(duration / interval),
                                      static_cast<double>(video->windowsDone));
            }
        }
        f.windowsEstimated = estimated;
        f.requestsInFlight = client_ ? client_->stats().inFlight : 0;
        f.elapsedS = std::chrono::duration<double>(Clock::now() - startedAt_).count();
        f.etaS = estimateEta(f.windowsDone, f.windowsEstimated, f.elapsedS);
        if (f.videosTotal > 0 && f.videosDone == f.videosTotal) {
            f.etaS = 0.0;
        }
        return f;
    }

    void printProgress(bool final) {
        switch (options_.progress) {
        case BatchOptions::Progress::None:
            return;
        case BatchOptions::Progress::Bar:
            fmt::print(stderr, "\r{}\033[K", formatBar(figures(), terminalColumns() - 1));
            barShown_ = !final;
            if (final) {
                fmt::print(stderr, "\n");
            }
            break;
        case BatchOptions::Progress::Plain:
            fmt::print(stderr, "{}{}\n", formatPlain(figures()), final ? " (done)" : "");
            break;
        }
        std::fflush(stderr);
    }

    void clearBar() {
        if (barShown_) {
            fmt::print(stderr, "\r\033[K");
            barShown_ = false;
        }
    }

    // ------------------------------------------------------------ state

    Config config_;
    BatchOptions options_;
    std::vector<std::unique_ptr<Video>> videos_;
    std::size_t workers_ = 1;
    std::size_t submitLimit_ = 2;
    std::size_t backlog_ = 2;

    asio::io_context io_;
    asio::signal_set signals_;
    asio::steady_timer progressTimer_;
    asio::steady_timer stopTimer_;
    asio::executor_work_guard<asio::io_context::executor_type>* guard_ = nullptr;
    ModelClientPtr client_;
    std::unique_ptr<SnapshotWriter> evidence_;
    AnalysisSchedulerPtr scheduler_;
    std::unique_ptr<LineWriter> writer_;

    // shared with workers
    std::atomic<std::size_t> nextVideo_{0};
    std::atomic<std::size_t> nextProbe_{0};
    std::unique_ptr<std::latch> probed_; ///< every worker has finished probing
    std::atomic<bool> cancelled_{false};
    std::mutex mutex_;
    std::condition_variable cv_;

    // io thread
    std::deque<Pending> pending_;
    std::size_t submitted_ = 0;
    std::size_t videosProbed_ = 0; ///< videos whose length the probe has answered for
    std::size_t videosDone_ = 0;
    std::size_t videosFailed_ = 0;
    std::uint64_t sequencesFailed_ = 0;
    std::uint64_t windowsDone_ = 0;
    bool interrupted_ = false;
    bool finished_ = false;
    bool outputFailed_ = false;
    bool barShown_ = false;
    Clock::time_point startedAt_ = Clock::now();
};

BatchAnalyzer::BatchAnalyzer(Config config, BatchOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(options))) {
}

BatchAnalyzer::~BatchAnalyzer() = default;

int BatchAnalyzer::run() {
    return impl_->run();
}

} // namespace dmsd::batch
