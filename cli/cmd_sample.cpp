// dmsd sample: capture + sampling + encoding without the model server. Prints
// one JSON line per sequence that would be sent and per skipped window, then
// a summary: what the daemon would ask about, for a given source and settings.

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <sys/resource.h>
#include <vector>

#include <boost/json.hpp>
#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "base/json.h"
#include "cli/commands.h"
#include "config/loader.h"
#include "pipeline/capture.h"
#include "pipeline/frame_path.h"

namespace dmsd::cli {

namespace {

namespace po = boost::program_options;
namespace json = boost::json;

double round3(double value) {
    return std::round(value * 1000.0) / 1000.0;
}

double cpuSeconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto seconds = [](const timeval& t) {
        return double(t.tv_sec) + double(t.tv_usec) / 1e6;
    };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

void printLine(const json::object& line) {
    std::string text = writeJson(line) + '\n';
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
}

po::options_description sampleOptions() {
    po::options_description options(
        "usage: dmsd sample [--config PATH] [--source SOURCE] [options]\n"
        "Captures, samples and JPEG-encodes like `dmsd run`, without asking the model:\n"
        "prints one JSON line per sequence that would be sent and per skipped static\n"
        "window, then a summary. A file: source is read as fast as possible unless\n"
        "--realtime; cameras and test: sources are live.\n"
        "options");
    // clang-format off
    options.add_options()
        ("help,h", "this help")
        ("config", po::value<std::string>(), "configuration file (defaults: the contract's)")
        ("source", po::value<std::string>(), "v4l2:DEVICE | file:PATH | test:PATTERN | pipeline:DESC")
        ("width", po::value<int>(), "capture width")
        ("height", po::value<int>(), "capture height")
        ("fps", po::value<int>(), "capture frame rate")
        ("interval", po::value<double>(), "sampling interval, seconds of video")
        ("frames", po::value<int>(), "frames per sequence (>= 2)")
        ("threshold", po::value<double>(), "motion threshold, 0..1")
        ("max-static-skip", po::value<double>(), "re-analyse a static scene at least this often, s")
        ("quality", po::value<int>(), "JPEG quality 1..100")
        ("layout", po::value<std::string>(), "separate | mosaic")
        ("realtime", "read a file at its own frame rate, as `run` does")
        ("max-seconds", po::value<double>(),
         "stop after this much video time (default: end of file; 10 s for live sources)");
    // clang-format on
    return options;
}

} // namespace

int runSample(Args args) {
    po::options_description options = sampleOptions();
    po::variables_map vm;
    try {
        std::vector<std::string> argv(args.begin(), args.end());
        po::store(po::command_line_parser(argv).options(options).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        fmt::print(stderr, "dmsd sample: {}\n{}\n", e.what(), fmt::streamed(options));
        return kExitUsage;
    }
    if (vm.count("help") != 0U) {
        fmt::print("{}\n", fmt::streamed(options));
        return kExitOk;
    }

    Config config;
    if (vm.count("config") != 0U) {
        auto loaded = loadConfigOrReport(vm["config"].as<std::string>(), "sample");
        if (!loaded) {
            return kExitUsage;
        }
        config = std::move(*loaded);
    } else if (vm.count("source") == 0U) {
        fmt::print(stderr, "dmsd sample: give --source SOURCE (e.g. file:trip.mp4 or test:ball) "
                           "or --config PATH\n");
        return kExitUsage;
    }
    if (vm.count("source") != 0U) {
        config.capture.source = vm["source"].as<std::string>();
    }
    auto usage = [&options](const std::string& message) {
        fmt::print(stderr, "dmsd sample: {}\n{}\n", message, fmt::streamed(options));
        return kExitUsage;
    };
    if (vm.count("width") != 0U) {
        config.capture.width = vm["width"].as<int>();
    }
    if (vm.count("height") != 0U) {
        config.capture.height = vm["height"].as<int>();
    }
    if (vm.count("fps") != 0U) {
        config.capture.fps = vm["fps"].as<int>();
    }
    if (vm.count("interval") != 0U) {
        const double s = vm["interval"].as<double>();
        if (s <= 0) {
            return usage("--interval must be positive");
        }
        config.sampling.interval = Millis(static_cast<long>(s * 1000));
    }
    if (vm.count("frames") != 0U) {
        config.sampling.framesPerSequence = vm["frames"].as<int>();
        if (config.sampling.framesPerSequence < 2) {
            return usage("--frames must be at least 2");
        }
    }
    if (vm.count("threshold") != 0U) {
        config.sampling.motionThreshold = vm["threshold"].as<double>();
    }
    if (vm.count("max-static-skip") != 0U) {
        config.sampling.maxStaticSkip =
            Millis(static_cast<long>(vm["max-static-skip"].as<double>() * 1000));
    }
    if (vm.count("quality") != 0U) {
        config.encode.jpegQuality = vm["quality"].as<int>();
        if (config.encode.jpegQuality < 1 || config.encode.jpegQuality > 100) {
            return usage("--quality must be within 1..100");
        }
    }
    if (vm.count("layout") != 0U) {
        const std::string layout = vm["layout"].as<std::string>();
        if (layout != "separate" && layout != "mosaic") {
            return usage("--layout must be separate or mosaic");
        }
        config.encode.layout = layout == "mosaic" ? ImageLayout::Mosaic : ImageLayout::Separate;
    }

    SourceSpec spec;
    if (auto error = parseSource(config.capture.source, spec)) {
        fmt::print(stderr, "dmsd sample: {}\n", error->message);
        return kExitUsage;
    }
    const bool isFile = spec.kind == SourceSpec::Kind::File;
    const bool realtime = vm.count("realtime") != 0U || !isFile;
    std::optional<double> maxSeconds;
    if (vm.count("max-seconds") != 0U) {
        maxSeconds = vm["max-seconds"].as<double>();
    } else if (!isFile) {
        maxSeconds = 10.0;
    }

    std::atomic<bool> stop{false};
    CaptureOptions captureOptions;
    captureOptions.mode = realtime ? CaptureMode::Live : CaptureMode::Offline;
    // A file played in real time ends once, instead of looping like a camera.
    captureOptions.onEvent = [&stop, isFile](const CaptureEvent& event) {
        if (isFile && event.kind == CaptureEvent::Kind::EndOfStream) {
            stop = true;
        }
    };
    Capture capture(config.capture, captureOptions);
    const auto wallStart = std::chrono::steady_clock::now();
    const double cpuStart = cpuSeconds();
    if (auto error = capture.start()) {
        fmt::print(stderr, "dmsd sample: {}\n", error->message);
        if (!error->detail.empty()) {
            fmt::print(stderr, "  detail: {}\n", error->detail);
        }
        return kExitInputFailed;
    }

    const char* layoutName = config.encode.layout == ImageLayout::Mosaic ? "mosaic" : "separate";
    double videoEndS = 0.0;
    FramePathCallbacks callbacks;
    callbacks.onSequence = [&](const EncodedSequencePtr& sequence) {
        json::array pts;
        json::array frameIds;
        json::array bytes;
        for (const auto& frame : sequence->frames) {
            pts.push_back(round3(frame.ptsSeconds));
            frameIds.push_back(frame.frameId);
        }
        for (const auto& image : sequence->images) {
            bytes.push_back(image.bytes ? image.bytes->size() : 0);
        }
        const double latencyMs = std::chrono::duration<double, std::milli>(
                                     std::chrono::steady_clock::now() - sequence->lastFrameAt)
                                     .count();
        json::object line;
        line["type"] = "sequence";
        line["sequence_id"] = sequence->sequenceId;
        line["t_start_s"] = round3(sequence->tStartS);
        line["t_end_s"] = round3(sequence->tEndS);
        line["frames_pts_s"] = std::move(pts);
        line["frame_ids"] = std::move(frameIds);
        line["motion"] = round3(sequence->motion);
        line["layout"] = layoutName;
        line["jpeg_bytes"] = std::move(bytes);
        line["width"] = sequence->images.empty() ? 0 : sequence->images.front().width;
        line["height"] = sequence->images.empty() ? 0 : sequence->images.front().height;
        line["encode_latency_ms"] = round3(latencyMs);
        printLine(line);
    };
    callbacks.onSkipped = [&](const SkippedWindow& window) {
        json::object line;
        line["type"] = "skipped";
        line["reason"] = "static";
        line["t_start_s"] = round3(window.tStartS);
        line["t_end_s"] = round3(window.tEndS);
        line["motion"] = round3(window.motion);
        line["frames"] = window.frameCount;
        line["since_analysed_s"] = round3(window.sinceAnalysedS);
        line["answers_of_sequence"] = window.lastSequenceId;
        printLine(line);
    };

    // Video time seen so far, for --max-seconds.
    class CountingSource : public FrameSource {
    public:
        CountingSource(FrameSource& inner, double& firstS, double& endS)
            : inner_(inner), firstS_(firstS), endS_(endS) {}
        PullResult nextFrame(std::chrono::milliseconds timeout) override {
            PullResult result = inner_.nextFrame(timeout);
            if (result.frame) {
                if (firstS_ < 0) {
                    firstS_ = result.frame->ptsS();
                }
                endS_ = result.frame->ptsS() + result.frame->meta().durationS;
            }
            return result;
        }

    private:
        FrameSource& inner_;
        double& firstS_;
        double& endS_;
    };
    double firstPts = -1.0;
    CountingSource counting(capture, firstPts, videoEndS);
    FramePath path(counting, config.sampling, config.encode, std::move(callbacks));
    for (;;) {
        const FramePath::Step step = path.pumpOnce(std::chrono::milliseconds(200));
        if (step == FramePath::Step::Ended) {
            break;
        }
        const double wallS =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - wallStart).count();
        const bool enoughVideo = maxSeconds && firstPts >= 0 && videoEndS - firstPts >= *maxSeconds;
        // Live sources that deliver nothing must not keep us forever.
        const bool wallLimit = maxSeconds && realtime && wallS >= *maxSeconds + 10.0;
        if (enoughVideo || wallLimit || stop.load()) {
            capture.stop();
            // Drains what is queued and flushes the last window.
            while (path.pumpOnce(std::chrono::milliseconds(200)) != FramePath::Step::Ended) {
            }
            break;
        }
    }
    capture.stop();

    const auto captured = capture.counters();
    const auto sampled = path.counters();
    const double wallS =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - wallStart).count();
    const double cpuS = cpuSeconds() - cpuStart;
    json::object summary;
    summary["type"] = "summary";
    summary["source"] = config.capture.source;
    summary["mode"] = realtime ? "realtime" : "offline";
    summary["capture"] = fmt::format("{}x{}@{} I420", config.capture.width, config.capture.height,
                                     config.capture.fps);
    summary["frames_captured"] = captured.framesCaptured;
    summary["frames_dropped"] = captured.framesDropped;
    summary["restarts"] = captured.restarts;
    summary["frames_sampled"] = sampled.framesSampled;
    summary["sequences"] = sampled.sequencesEmitted;
    summary["skipped_static"] = sampled.windowsSkipped;
    summary["jpeg_encodes"] = sampled.framesEncoded;
    summary["video_s"] = round3(std::max(0.0, videoEndS - std::max(firstPts, 0.0)));
    summary["wall_s"] = round3(wallS);
    summary["cpu_ms_per_frame"] =
        round3(captured.framesCaptured > 0 ? cpuS * 1000.0 / double(captured.framesCaptured) : 0.0);
    summary["camera_state"] = toString(capture.state());
    const auto finalError = capture.finalError();
    if (finalError) {
        summary["error"] = finalError->message;
    }
    printLine(summary);
    if (finalError) {
        fmt::print(stderr, "dmsd sample: {}\n", finalError->message);
        return kExitInputFailed;
    }
    return kExitOk;
}

} // namespace dmsd::cli
