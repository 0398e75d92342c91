// bench_llm: analysis over Ollama's native API and the OpenAI-compatible one
// (llm.api), measured against the emulator, which serves both.
//  1. Sequence latency p50/p95 of sequential, parallel and combined with the
//     emulator at L = 400 ms per request and 4 slots, next to the critical-path
//     bounds 5L, 2L and L.
//  2. With 1 slot, the mode `auto` settles on, and its latency.
//  3. The daemon's CPU time per sequence of 4 frames of 640x480: JPEG encode
//     (TurboJPEG from I420 planes) and base64, once per frame, on the frame
//     path; then JSON bodies + HTTP + parsing on the event loop.
// Usage: bench_llm [--emulator PATH] [--sequences N] [--latency-ms L] [--default-malloc]
//                  [--api ollama|openai|both]   (default both: sections 1-3 once per API)
// (default emulator: ../emulator/ollama-emulator next to this program; build
// both: ninja bench_llm ollama-emulator)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "base/allocator.h"
#include "llm/analysis_scheduler.h"
#include "llm/model_backend.h"
#include "llm/ollama_body.h"
#include "pipeline/jpeg_encoder.h"
#include "test/support/child_process.h"

using namespace dmsd;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

double cpuSeconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) {
        return 0;
    }
    std::sort(v.begin(), v.end());
    const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * double(v.size())));
    return v[std::min(v.size() - 1, rank == 0 ? 0 : rank - 1)];
}

struct Emulator {
    test::ChildProcess process;
    std::string url;
    explicit Emulator(std::vector<std::string> argv) : process(std::move(argv)) {
        auto line = process.waitForLine(
            [](const std::string& l) { return l.starts_with("listening on "); }, 20s);
        if (!line) {
            throw std::runtime_error("the emulator did not start");
        }
        url = line->substr(std::string("listening on ").size());
    }
};

/// A synthetic 640x480 I420 frame: gradient plus noise (compresses like a camera image).
struct I420 {
    int width = 640, height = 480;
    std::vector<unsigned char> y, u, v;
    explicit I420(unsigned seed) {
        std::mt19937 rng(seed);
        std::uniform_int_distribution<int> noise(-12, 12);
        y.resize(std::size_t(width) * height);
        u.assign(std::size_t(width / 2) * (height / 2), 128);
        v.assign(std::size_t(width / 2) * (height / 2), 128);
        for (int r = 0; r < height; ++r) {
            for (int c = 0; c < width; ++c) {
                y[std::size_t(r) * width + c] =
                    static_cast<unsigned char>(std::clamp((r + c) / 5 + 40 + noise(rng), 0, 255));
            }
        }
        for (std::size_t i = 0; i < u.size(); ++i) {
            u[i] = static_cast<unsigned char>(110 + (i % 37));
            v[i] = static_cast<unsigned char>(140 - (i % 23));
        }
    }
};

/// The daemon's own encoder (pipeline/jpeg_encoder): TurboJPEG from the
/// planes, then the frame's base64, once.
struct FrameEncoder {
    JpegImage encode(const I420& f, int quality = 85) {
        I420View view;
        view.data = {f.y.data(), f.u.data(), f.v.data()};
        view.stride = {f.width, f.width / 2, f.width / 2};
        view.width = f.width;
        view.height = f.height;
        std::string error;
        std::optional<JpegImage> image = encodeI420(view, quality, &error);
        if (!image) {
            throw std::runtime_error(error);
        }
        return std::move(*image);
    }
};

EncodedSequencePtr smallSequence(std::uint64_t id, const JpegImage& image) {
    auto seq = std::make_shared<EncodedSequence>();
    seq->sequenceId = id;
    for (int i = 0; i < 4; ++i) {
        SampledFrameInfo f;
        f.contentHash = id * 10 + i + 1;
        f.ptsSeconds = double(id) * 2 + i * 0.5;
        seq->frames.push_back(f);
        seq->images.push_back(image);
    }
    return seq;
}

struct Run {
    std::vector<double> latencies;
    std::vector<LlmMode> modes;
};

Run runSequences(const std::string& url, LlmApi api, LlmMode mode, int count,
                 const JpegImage& image, std::uint64_t firstId) {
    asio::io_context io;
    LlmSettings s;
    s.server.url = url;
    s.server.api = api;
    s.scheduler.mode = mode;
    s.server.maxInFlight = 4;
    s.server.timeout = 30s;
    s.scheduler.cache.entries = 0; // every sequence asks the server
    auto client = createModelClient(io.get_executor(), s);
    auto scheduler =
        AnalysisScheduler::create(io.get_executor(), client, s.scheduler, AnalysesSettings{});
    Run run;
    for (int i = 0; i < count; ++i) {
        std::optional<SequenceResult> result;
        scheduler->submit(smallSequence(firstId + i, image),
                          [&](SequenceResult r) { result = std::move(r); });
        while (!result) {
            if (io.stopped()) {
                io.restart();
            }
            io.run_one();
        }
        for (AnalysisKind kind : kAllAnalyses) {
            if (const AnalysisError* e = result->answers.error(kind)) {
                fmt::print(stderr, "warning: {}\n", e->message);
            }
        }
        run.latencies.push_back(double(result->metrics.elapsed.count()));
        run.modes.push_back(result->metrics.mode);
    }
    return run;
}

} // namespace

int main(int argc, char** argv) {
#ifdef DMSD_OLLAMA_EMULATOR
    std::string emulatorPath = DMSD_OLLAMA_EMULATOR;
#else
    // Built by test/bench/CMakeLists.txt: the emulator sits in the sibling folder.
    std::string emulatorPath = (std::filesystem::read_symlink("/proc/self/exe").parent_path() /
                                ".." / "emulator" / "ollama-emulator")
                                   .lexically_normal()
                                   .string();
#endif
    int sequences = 10;
    int latency = 400;
    bool defaultMalloc = false;
    std::vector<LlmApi> apis{LlmApi::Ollama, LlmApi::OpenAi};
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--default-malloc") {
            defaultMalloc = true;
            --i;
        } else if (i + 1 >= argc) {
            break;
        } else if (arg == "--emulator") {
            emulatorPath = argv[i + 1];
        } else if (arg == "--sequences") {
            sequences = std::stoi(argv[i + 1]);
        } else if (arg == "--latency-ms") {
            latency = std::stoi(argv[i + 1]);
        } else if (arg == "--api") {
            const std::string api = argv[i + 1];
            apis = api == "ollama"   ? std::vector<LlmApi>{LlmApi::Ollama}
                   : api == "openai" ? std::vector<LlmApi>{LlmApi::OpenAi}
                                     : apis;
        }
    }
    // As dmsd's main() does, unless asked to compare with glibc's defaults.
    if (!defaultMalloc) {
        tuneAllocator();
    }
    fmt::print("allocator: {}\n", defaultMalloc ? "glibc defaults"
                                                : "dmsd::tuneAllocator (mmap threshold 1 MiB, "
                                                  "trim threshold 8 MiB)");
    const double L = latency;
    FrameEncoder encoder;
    const JpegImage small = encoder.encode(I420(1), 85);
    for (LlmApi api : apis) {
        fmt::print("\n######## llm.api: {} ########\n", llmApiName(api));

        fmt::print(
            "== Sequence latency, emulator {} ms per request, 4 slots, {} sequences each ==\n",
            latency, sequences);
        fmt::print("{:<11} {:>9} {:>9} {:>9} {:>12}\n", "mode", "p50 ms", "p95 ms", "bound ms",
                   "p50 - bound");
        {
            Emulator emu({emulatorPath, "--slots", "4", "--latency-ms", std::to_string(latency)});
            struct Case {
                LlmMode mode;
                double bound;
            };
            std::uint64_t id = 1;
            for (Case c : {Case{LlmMode::Sequential, 5 * L}, Case{LlmMode::Parallel, 2 * L},
                           Case{LlmMode::Combined, L}}) {
                Run r = runSequences(emu.url, api, c.mode, sequences, small, id);
                id += 1000;
                const double p50 = percentile(r.latencies, 50);
                fmt::print("{:<11} {:>9.0f} {:>9.0f} {:>9.0f} {:>+12.0f}\n", llmModeName(c.mode),
                           p50, percentile(r.latencies, 95), c.bound, p50 - c.bound);
            }
        }

        fmt::print("\n== auto mode against 1 server slot ({} ms per request) ==\n", latency);
        {
            Emulator emu({emulatorPath, "--slots", "1", "--latency-ms", std::to_string(latency)});
            Run r = runSequences(emu.url, api, LlmMode::Auto, sequences, small, 50000);
            std::string modes;
            for (LlmMode m : r.modes) {
                modes += fmt::format("{}{}", modes.empty() ? "" : ",", llmModeName(m));
            }
            std::vector<double> settled(r.latencies.begin() + 1, r.latencies.end());
            fmt::print("modes per sequence: {}\n", modes);
            fmt::print(
                "chosen: {}; latency after the first (measuring) sequence: p50 {:.0f} ms, p95 "
                "{:.0f} ms (L = {:.0f}, 5L = {:.0f})\n",
                llmModeName(r.modes.back()), percentile(settled, 50), percentile(settled, 95), L,
                5 * L);
        }

        fmt::print("\n== CPU time per sequence: 4 frames 640x480 I420, JPEG q85 ==\n");
        {
            Emulator emu({emulatorPath, "--slots", "4"});
            std::vector<I420> frames;
            for (unsigned i = 0; i < 4; ++i) {
                frames.emplace_back(i + 10);
            }
            const int n = std::max(20, sequences * 5);
            // Encode only.
            double t0 = cpuSeconds();
            std::size_t jpegBytes = 0;
            for (int s = 0; s < n; ++s) {
                for (const I420& f : frames) {
                    jpegBytes += encoder.encode(f).bytes->size();
                }
            }
            const double encodeMs = (cpuSeconds() - t0) * 1000 / n;
            // Bodies only (the frames' base64 copied in, JSON), five requests as in
            // parallel mode: Ollama's body (OpenAI's content parts cost the same copies).
            std::vector<JpegImage> images;
            for (const I420& f : frames) {
                images.push_back(encoder.encode(f));
            }
            const auto options = optionsJson(ModelOptions{});
            const auto keepAlive = keepAliveJson(Millis(300000));
            t0 = cpuSeconds();
            std::size_t bodyBytes = 0;
            for (int s = 0; s < n; ++s) {
                for (AnalysisKind kind : kAllAnalyses) {
                    ChatBodyParts parts;
                    parts.model = "llava:7b-v1.6-mistral-q2_K";
                    parts.systemPrompt = systemPrompt();
                    parts.userPrompt = analysis(kind).defaultPrompt();
                    parts.images = &images;
                    parts.format = &analysis(kind).schema();
                    parts.options = &options;
                    parts.keepAlive = &keepAlive;
                    bodyBytes += buildChatBody(parts).size();
                }
            }
            const double bodyMs = (cpuSeconds() - t0) * 1000 / n;
            // Whole path: encode + 5 requests over HTTP + parsing (parallel mode).
            asio::io_context io;
            LlmSettings s;
            s.server.url = emu.url;
            s.server.api = api;
            s.scheduler.mode = LlmMode::Parallel;
            s.scheduler.cache.entries = 0;
            auto client = createModelClient(io.get_executor(), s);
            auto scheduler = AnalysisScheduler::create(io.get_executor(), client, s.scheduler,
                                                       AnalysesSettings{});
            t0 = cpuSeconds();
            const auto wall0 = std::chrono::steady_clock::now();
            for (int k = 0; k < n; ++k) {
                auto seq = std::make_shared<EncodedSequence>();
                for (std::size_t i = 0; i < frames.size(); ++i) {
                    seq->images.push_back(encoder.encode(frames[i]));
                    SampledFrameInfo info;
                    info.contentHash = std::uint64_t(k) * 10 + i + 1;
                    seq->frames.push_back(info);
                }
                std::optional<SequenceResult> result;
                scheduler->submit(seq, [&](SequenceResult r) { result = std::move(r); });
                while (!result) {
                    if (io.stopped()) {
                        io.restart();
                    }
                    io.run_one();
                }
            }
            const double totalMs = (cpuSeconds() - t0) * 1000 / n;
            const double wallMs =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - wall0)
                    .count() /
                n;
            fmt::print("JPEG size {:.1f} kB per frame; request body {:.0f} kB per request\n",
                       double(jpegBytes) / n / 4 / 1024, double(bodyBytes) / n / 5 / 1024);
            fmt::print("encode 4 frames (JPEG + base64):    {:6.2f} ms CPU\n", encodeMs);
            fmt::print("5 request bodies (copy base64, JSON): {:6.2f} ms CPU\n", bodyMs);
            fmt::print(
                "whole sequence (encode + 5 HTTP requests + parse), parallel: {:6.2f} ms CPU "
                "({:.1f} ms wall)\n",
                totalMs, wallMs);
        }
    }
    return 0;
}
