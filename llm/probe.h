#pragma once

/// \file
/// `dmsd probe`: what a model server can do, measured through the same
/// `ModelClient` the daemon uses, and the settings that fit it.
/// `probeServer()` measures (health, the cold start that loads the model,
/// the latency and prompt tokens of one question with 1..N images, the
/// tokens one image costs, the largest image count the server takes, the
/// speed-up of 2 and 4 concurrent questions); `recommend()` turns the
/// figures into settings (mode, frames per sequence, layout, interval,
/// num_ctx) with a reason for each. The two are apart so that tests drive
/// the rules with figures of their own.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "llm/model_client.h"
#include "llm/settings.h"
#include "pipeline/sequence.h"
#include "pipeline/settings.h"

namespace dmsd {

struct ProbeOptions {
    JpegImage image;   ///< the image every question carries (as the capture would send it)
    int maxImages = 4; ///< image counts tried: 1..maxImages
    /// Concurrent questions tried for the speed-up (each with the largest
    /// image count that worked).
    std::vector<int> concurrency{2, 4};
    /// Ollama, where the request sets the context: the `num_ctx` the
    /// client's requests carry, and how to get a client with a larger one.
    /// A question that failed only for want of context (its measured
    /// prompt would not fit) is asked again with a context that fits, so
    /// the image count the server takes is not confused with the context
    /// configured. Unset (OpenAI): the server's context is its own.
    int numCtx = 0;
    int numPredict = 256;
    std::function<ModelClientPtr(int numCtx)> withNumCtx;
};

/// One question with `images` images.
struct ImageCountFigure {
    int images = 0;
    bool ok = false;
    std::chrono::milliseconds latency{0};
    std::int64_t promptTokens = 0; ///< as the server reported them (0: not reported)
    std::string error;             ///< when not ok
};

/// `concurrent` questions at once: the wall time, and the speed-up against
/// asking them one after another (concurrent x one question's latency / wall).
struct ConcurrencyFigure {
    int concurrent = 0;
    std::chrono::milliseconds wall{0};
    double speedup = 0.0;
    int failed = 0;
};

struct ProbeFigures {
    HealthReport health;
    std::optional<std::chrono::milliseconds> coldStart; ///< the warm-up (loads the model)
    std::string warmUpError;
    std::vector<ImageCountFigure> perImageCount; ///< 1.., up to the first failure
    int largestImageCount = 0;                   ///< 0: not even one image worked
    /// Prompt tokens of the second image minus the first's; unset when the
    /// server reports no prompt tokens or only one image worked.
    std::optional<std::int64_t> tokensPerImage;
    /// The context the probe had to raise its questions to (0: it did not).
    int numCtxRaisedTo = 0;
    std::vector<ConcurrencyFigure> concurrency;
};

/// Measures the server behind \a client. Never throws; an unusable server
/// gives figures with `health.usable()` false and nothing else.
boost::asio::awaitable<ProbeFigures> probeServer(ModelClientPtr client, ProbeOptions options);

/// What the probe recommends, each value with the reason for it.
struct ProbeRecommendation {
    LlmMode mode = LlmMode::Parallel;
    int framesPerSequence = 4;
    ImageLayout layout = ImageLayout::Separate;
    int maxSide = 0; ///< `encode.max_side`: the size the figures were measured at
    Millis interval{2000};
    std::optional<int> numCtx; ///< Ollama only, when the tokens per image are known
    std::vector<std::string> reasons;

    /// A configuration drop-in (YAML) setting exactly these values, with
    /// the reasons as comments; \a header goes first, as comment lines.
    std::string dropIn(const std::string& header) const;
};

/// The speed-up from which concurrent questions pay (as `llm.mode: auto` decides).
inline constexpr double kProbeParallelGain = 1.5;

/// The settings that fit \a figures, starting from the configured ones.
ProbeRecommendation recommend(const ProbeFigures& figures, const LlmSettings& llm,
                              const SamplingSettings& sampling, const EncodeSettings& encode);

} // namespace dmsd
