#include "llm/probe.h"

#include <algorithm>
#include <cmath>
#include <exception>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "base/duration.h"
#include "llm/analysis.h"
#include "llm/context_budget.h"

namespace dmsd {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

milliseconds since(Clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

/// One face_state question with \a images copies of the image. \a marker
/// leads the system prompt so that no two questions share a prefix: a
/// server's prompt cache would otherwise skip the evaluation (and the count)
/// of what it has seen.
ChatRequest question(const ProbeOptions& options, int images, int marker) {
    ChatRequest request;
    request.label = "probe";
    request.systemPrompt = fmt::format("Probe {}. {}", marker, systemPrompt());
    request.userPrompt = std::string(analysis(AnalysisKind::FaceState).defaultPrompt());
    request.images.assign(static_cast<std::size_t>(images), options.image);
    request.format = &analysis(AnalysisKind::FaceState).schema();
    return request;
}

asio::awaitable<ConcurrencyFigure> concurrent(ModelClientPtr client, const ProbeOptions& options,
                                              int count, int images, int& marker,
                                              milliseconds one) {
    const auto executor = co_await asio::this_coro::executor;
    using Op = decltype(asio::co_spawn(executor, client->chat(ChatRequest{}), asio::deferred));
    std::vector<Op> ops;
    ops.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        ops.push_back(asio::co_spawn(executor, client->chat(question(options, images, ++marker)),
                                     asio::deferred));
    }
    const Clock::time_point start = Clock::now();
    auto [order, exceptions, outcomes] =
        co_await asio::experimental::make_parallel_group(std::move(ops))
            .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
    ConcurrencyFigure figure;
    figure.concurrent = count;
    figure.wall = std::max(milliseconds(1), since(start));
    for (std::size_t i = 0; i < outcomes.size(); ++i) {
        if (exceptions[i] || !outcomes[i].ok()) {
            ++figure.failed;
        }
    }
    figure.speedup =
        static_cast<double>(count * one.count()) / static_cast<double>(figure.wall.count());
    co_return figure;
}

} // namespace

asio::awaitable<ProbeFigures> probeServer(ModelClientPtr client, ProbeOptions options) {
    ProbeFigures figures;
    figures.health = co_await client->checkHealth();
    if (!figures.health.usable()) {
        co_return figures;
    }
    // Cold: the warm-up loads the model (with the options every question
    // carries); whatever comes after is warm.
    const Clock::time_point start = Clock::now();
    if (std::optional<AnalysisError> error = co_await client->warmUp()) {
        figures.warmUpError = error->message;
    }
    figures.coldStart = since(start);

    int marker = 0;
    int numCtx = options.numCtx;
    for (int images = 1; images <= options.maxImages; ++images) {
        ChatOutcome outcome = co_await client->chat(question(options, images, ++marker));
        if (!outcome.ok() && options.withNumCtx && images >= 3 && numCtx > 0) {
            // Would this question's prompt fit? From the two before it: the
            // text and one more image each.
            const std::int64_t last = figures.perImageCount.back().promptTokens;
            const std::int64_t perImage =
                last - figures.perImageCount[figures.perImageCount.size() - 2].promptTokens;
            const std::int64_t need = last + perImage + options.numPredict;
            if (perImage > 0 && need > numCtx) {
                numCtx = contextSizeFor(need);
                client = options.withNumCtx(numCtx);
                figures.numCtxRaisedTo = numCtx;
                co_await client->warmUp(); // the server reloads the model with it
                outcome = co_await client->chat(question(options, images, ++marker));
            }
        }
        ImageCountFigure figure;
        figure.images = images;
        figure.ok = outcome.ok();
        figure.latency = outcome.latency;
        if (outcome.result) {
            figure.promptTokens = outcome.result->promptTokens;
        } else if (outcome.error) {
            figure.error = outcome.error->message;
        }
        figures.perImageCount.push_back(figure);
        if (!figure.ok) {
            break; // more images will not work where fewer did not
        }
        figures.largestImageCount = images;
    }
    if (figures.largestImageCount >= 2) {
        const std::int64_t one = figures.perImageCount[0].promptTokens;
        const std::int64_t two = figures.perImageCount[1].promptTokens;
        if (one > 0 && two > one) {
            figures.tokensPerImage = two - one;
        }
    }
    if (figures.largestImageCount == 0) {
        co_return figures;
    }
    const milliseconds one =
        figures.perImageCount[static_cast<std::size_t>(figures.largestImageCount - 1)].latency;
    for (int count : options.concurrency) {
        figures.concurrency.push_back(
            co_await concurrent(client, options, count, figures.largestImageCount, marker, one));
    }
    co_return figures;
}

namespace {

Millis roundUp(milliseconds value, Millis step) {
    const auto steps = (value.count() + step.count() - 1) / step.count();
    return Millis(std::max<std::int64_t>(1, steps) * step.count());
}

} // namespace

ProbeRecommendation recommend(const ProbeFigures& figures, const LlmSettings& llm,
                              const SamplingSettings& sampling, const EncodeSettings& encode) {
    ProbeRecommendation r;
    r.framesPerSequence = sampling.framesPerSequence;
    r.layout = encode.layout;
    r.maxSide = encode.maxSide;
    r.interval = sampling.interval;
    r.mode = llm.scheduler.mode == LlmMode::Auto ? LlmMode::Parallel : llm.scheduler.mode;
    const int largest = figures.largestImageCount;
    if (largest == 0) {
        r.reasons.push_back("nothing changed: not even a question with one image was answered");
        return r;
    }

    // Images per question.
    if (largest == 1) {
        r.layout = ImageLayout::Mosaic;
        r.reasons.push_back(fmt::format(
            "layout mosaic: the server answers one image per question ({}); the frames go "
            "tiled into one",
            figures.perImageCount.size() > 1 ? figures.perImageCount[1].error : "one tried"));
    } else {
        r.framesPerSequence = std::min(sampling.framesPerSequence, largest);
        r.reasons.push_back(fmt::format("frames_per_sequence {}: the server took {} image{} in "
                                        "one question",
                                        r.framesPerSequence, largest, largest == 1 ? "" : "s"));
        r.reasons.push_back(r.layout == ImageLayout::Mosaic
                                ? std::string("layout mosaic: as configured")
                                : std::string("layout separate: one image per frame"));
    }
    const int perQuestion = r.layout == ImageLayout::Mosaic ? 1 : r.framesPerSequence;
    r.reasons.push_back(
        r.maxSide > 0
            ? fmt::format(
                  "max_side {}: the image size measured (what an image costs depends on it)",
                  r.maxSide)
            : std::string("max_side 0: the capture size, as measured"));

    // Concurrent questions, as llm.mode auto would decide.
    const auto best =
        std::max_element(figures.concurrency.begin(), figures.concurrency.end(),
                         [](const auto& a, const auto& b) { return a.speedup < b.speedup; });
    if (best != figures.concurrency.end()) {
        r.mode = best->speedup >= kProbeParallelGain ? LlmMode::Parallel : LlmMode::Combined;
        r.reasons.push_back(fmt::format(
            "mode {}: {} concurrent questions ran {:.2f}x faster than one after another ({} "
            "from {:.1f}x)",
            llmModeName(r.mode), best->concurrent, best->speedup,
            r.mode == LlmMode::Parallel ? "parallel pays" : "combined below", kProbeParallelGain));
    }

    // The interval: at least a sequence's critical path, with a quarter to spare.
    const std::size_t index = static_cast<std::size_t>(std::min(perQuestion, largest) - 1);
    const milliseconds question = figures.perImageCount[index].latency;
    const int onPath = r.mode == LlmMode::Parallel ? 2 : 1; // the dependent question after
    const milliseconds critical = question * onPath;
    const Millis needed = roundUp(critical + critical / 4, Millis(500));
    if (needed > r.interval) {
        r.interval = needed;
    }
    r.reasons.push_back(fmt::format(
        "interval {}: a sequence takes about {} ms ({} question{} of {} ms with {} image{} on its "
        "critical path)",
        formatDuration(r.interval), critical.count(), onPath, onPath == 1 ? "" : "s",
        question.count(), perQuestion, perQuestion == 1 ? "" : "s"));

    // The context (Ollama sets it per request; an OpenAI server has its own).
    if (figures.tokensPerImage && llm.server.api == LlmApi::Ollama) {
        const std::int64_t text = std::max<std::int64_t>(0, figures.perImageCount[0].promptTokens -
                                                                *figures.tokensPerImage);
        BudgetNeed cost; // what one request costs, as the daemon's fit counts it
        cost.tokensPerImage = *figures.tokensPerImage;
        cost.promptTokens = text;
        cost.numPredict = llm.model.options.numPredict;
        const std::int64_t need = requestTokens(cost, perQuestion);
        // Sized as the daemon's fit sizes it, never below Ollama's old
        // default of 2048.
        const int numCtx = std::max(2048, contextSizeFor(need));
        r.numCtx = numCtx;
        r.reasons.push_back(fmt::format(
            "num_ctx {}: {} image{} x {} tokens + {} tokens of text + {} to answer = {}", numCtx,
            perQuestion, perQuestion == 1 ? "" : "s", *figures.tokensPerImage, text,
            llm.model.options.numPredict, need));
    }
    return r;
}

std::string ProbeRecommendation::dropIn(const std::string& header) const {
    std::string out;
    for (std::size_t start = 0; start < header.size();) {
        const std::size_t end = std::min(header.find('\n', start), header.size());
        out += "# " + header.substr(start, end - start) + "\n";
        start = end + 1;
    }
    for (const std::string& reason : reasons) {
        out += "#   " + reason + "\n";
    }
    out += "sampling:\n";
    out += fmt::format("  frames_per_sequence: {}\n", framesPerSequence);
    out += fmt::format("  interval: {}\n", formatDuration(interval));
    out += "encode:\n";
    out += fmt::format("  layout: {}\n", layout == ImageLayout::Mosaic ? "mosaic" : "separate");
    out += fmt::format("  max_side: {}\n", maxSide);
    out += "llm:\n";
    out += fmt::format("  mode: {}\n", llmModeName(mode));
    if (numCtx) {
        out += fmt::format("  options:\n    num_ctx: {}\n", *numCtx);
    }
    return out;
}

} // namespace dmsd
