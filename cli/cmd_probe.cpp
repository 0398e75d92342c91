// dmsd probe: measures the configured model server (llm/probe.h) and prints,
// or writes as a drop-in, the settings that fit it.

#include <cmath>
#include <cstdint>
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/log.h"
#include "base/redact.h"
#include "cli/commands.h"
#include "config/loader.h"
#include "llm/model_backend.h"
#include "llm/probe.h"
#include "pipeline/frame.h"
#include "pipeline/jpeg_encoder.h"

namespace dmsd::cli {
namespace {

namespace po = boost::program_options;

constexpr const char* kUsage =
    "usage: dmsd probe [--config PATH] [--write DROPIN]\n"
    "  Measures the configured model server (cold start, latency per image count,\n"
    "  tokens per image, the largest image count, the speed-up of concurrent\n"
    "  questions) and prints the settings that fit it as a configuration drop-in.\n"
    "  Exit status: 0 measured, 1 the drop-in could not be written, 2 usage or\n"
    "  configuration error, 3 the model is not usable.\n";

int usageError(const std::string& message) {
    fmt::print(stderr, "dmsd probe: {}\n{}", message, kUsage);
    return kExitUsage;
}

/// A frame at the capture size with the texture of a scene (gradients and
/// noise, so that it compresses as a camera's frame does, not as a flat one).
FramePtr sceneFrame(int width, int height) {
    std::vector<std::uint8_t> i420(Frame::i420Size(width, height));
    std::uint32_t seed = 12345;
    const auto noise = [&seed] {
        seed = seed * 1664525U + 1013904223U;
        return static_cast<int>((seed >> 24) % 24);
    };
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            const double shade = 96.0 + 64.0 * std::sin(x / 23.0) * std::cos(y / 31.0);
            i420[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) +
                 static_cast<std::size_t>(x)] =
                static_cast<std::uint8_t>(std::clamp(static_cast<int>(shade) + noise(), 0, 255));
        }
    }
    const std::size_t chroma =
        Frame::i420Size(width, height) - static_cast<std::size_t>(width * height);
    for (std::size_t i = 0; i < chroma; ++i) {
        i420[static_cast<std::size_t>(width * height) + i] =
            static_cast<std::uint8_t>(118 + noise() / 2);
    }
    return Frame::fromI420(std::move(i420), width, height, FrameMeta{});
}

std::string ms(std::chrono::milliseconds value) {
    return fmt::format("{} ms", value.count());
}

} // namespace

int runProbe(Args args) {
    std::string configPath = "/etc/dmsd/dmsd.yaml";
    std::string write;
    po::options_description visible("Options");
    // clang-format off
    visible.add_options()
        ("help,h", "print this help and exit")
        ("config", po::value(&configPath), "configuration file (default /etc/dmsd/dmsd.yaml, with its conf.d/)")
        ("write", po::value(&write), "DROPIN: also write the recommended settings there (e.g. /etc/dmsd/conf.d/60-probe.yaml)");
    // clang-format on
    po::variables_map vm;
    try {
        std::vector<std::string> argv(args.begin(), args.end());
        po::store(po::command_line_parser(argv).options(visible).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return usageError(e.what());
    }
    if (vm.count("help") != 0U) {
        std::cout << kUsage << visible;
        return kExitOk;
    }
    log::configure(log::Backend::Stderr, log::Priority::Warning);
    std::optional<Config> config = loadConfigOrReport(configPath, "probe");
    if (!config) {
        return kExitUsage;
    }
    const LlmSettings& llm = config->llm;

    boost::asio::io_context io;
    ProbeOptions options;
    JpegEncoder encoder(config->encode);
    const FramePtr frame = sceneFrame(config->capture.width, config->capture.height);
    std::optional<JpegImage> image = encoder.encode(*frame);
    if (!image) {
        fmt::print(stderr, "dmsd probe: the test image could not be encoded\n");
        return kExitInputFailed;
    }
    options.image = *image;
    options.maxImages = std::max(4, config->sampling.framesPerSequence);
    options.numPredict = llm.model.options.numPredict;
    if (llm.server.api == LlmApi::Ollama) {
        options.numCtx = llm.model.options.numCtx;
        options.withNumCtx = [&io, llm](int numCtx) {
            LlmSettings larger = llm;
            larger.model.options.numCtx = numCtx;
            return createModelClient(io.get_executor(), larger);
        };
    }

    fmt::print("dmsd probe: {} at {} (llm.api {}), images {}x{} JPEG q{} ({} kB)\n", llm.model.name,
               redactUrl(llm.server.url), llmApiName(llm.server.api), image->width, image->height,
               config->encode.jpegQuality, image->bytes->size() / 1024);
    std::fflush(stdout);

    ModelClientPtr client = createModelClient(io.get_executor(), llm);
    std::optional<ProbeFigures> measured;
    std::exception_ptr failure;
    boost::asio::co_spawn(io, probeServer(client, options),
                          [&](std::exception_ptr e, ProbeFigures figures) {
                              failure = std::move(e);
                              measured = std::move(figures);
                          });
    io.run();
    if (failure || !measured) {
        fmt::print(stderr, "dmsd probe: the measurement failed\n");
        return kExitInputFailed;
    }
    const ProbeFigures& f = *measured;
    if (!f.health.usable()) {
        fmt::print(stderr, "dmsd probe: {}\n", f.health.problem);
        return kExitModelUnusable;
    }
    if (!f.health.version.empty()) {
        fmt::print("server version {}\n", f.health.version);
    }
    fmt::print("cold start (warm-up, loads the model): {}{}\n", ms(*f.coldStart),
               f.warmUpError.empty() ? "" : " (failed: " + f.warmUpError + ")");
    fmt::print("images  latency   prompt tokens\n");
    for (const ImageCountFigure& row : f.perImageCount) {
        if (row.ok) {
            fmt::print("{:>6}  {:>7}   {:>13}\n", row.images, ms(row.latency),
                       row.promptTokens > 0 ? std::to_string(row.promptTokens) : "-");
        } else {
            fmt::print("{:>6}  refused: {}\n", row.images, row.error);
        }
    }
    fmt::print("largest image count: {}\n", f.largestImageCount);
    fmt::print("tokens per image: {}\n",
               f.tokensPerImage ? std::to_string(*f.tokensPerImage) : "not reported");
    if (f.numCtxRaisedTo > 0) {
        fmt::print("(the questions' num_ctx was raised to {} where {} did not hold the prompt)\n",
                   f.numCtxRaisedTo, llm.model.options.numCtx);
    }
    if (f.largestImageCount == 0) {
        fmt::print(stderr, "dmsd probe: not even a question with one image was answered\n");
        return kExitModelUnusable;
    }
    fmt::print("concurrent  wall      speed-up\n");
    for (const ConcurrencyFigure& row : f.concurrency) {
        fmt::print("{:>10}  {:>8}  {:>7.2f}x{}\n", row.concurrent, ms(row.wall), row.speedup,
                   row.failed > 0 ? fmt::format(" ({} failed)", row.failed) : "");
    }

    const ProbeRecommendation r = recommend(f, llm, config->sampling, config->encode);
    const std::string dropIn =
        r.dropIn(fmt::format("dmsd probe of {} at {}", llm.model.name, redactUrl(llm.server.url)));
    fmt::print("\nrecommended settings:\n{}", dropIn);
    if (!write.empty()) {
        if (std::error_code error = writeFileAtomically(write, dropIn)) {
            fmt::print(stderr, "dmsd probe: --write {}: {}\n", write, error.message());
            return kExitInputFailed;
        }
        fmt::print("written to {} (check it with: dmsd check-config {} {})\n", write, configPath,
                   write);
    }
    return kExitOk;
}

} // namespace dmsd::cli
