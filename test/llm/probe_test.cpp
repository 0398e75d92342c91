#include <catch2/catch.hpp>

#include "llm/context_budget.h"
#include "llm/probe.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// A server that took \a largest images, at \a perQuestion per question and
/// \a tokensPerImage each, with the given speed-up of 4 concurrent questions.
ProbeFigures figures(int largest, std::chrono::milliseconds perQuestion, double speedup,
                     std::int64_t tokensPerImage = 576) {
    ProbeFigures f;
    f.health.serverReachable = f.health.modelPresent = f.health.vision = true;
    f.coldStart = 3000ms;
    for (int n = 1; n <= largest; ++n) {
        ImageCountFigure row;
        row.images = n;
        row.ok = true;
        row.latency = perQuestion + std::chrono::milliseconds(20 * n);
        row.promptTokens = 185 + n * tokensPerImage;
        f.perImageCount.push_back(row);
    }
    if (largest < 4) {
        ImageCountFigure refused;
        refused.images = largest + 1;
        refused.error = "this model only supports one image while more than one image requested";
        f.perImageCount.push_back(refused);
    }
    f.largestImageCount = largest;
    if (largest >= 2) {
        f.tokensPerImage = tokensPerImage;
    }
    f.concurrency.push_back({2, perQuestion, speedup * 0.6, 0});
    f.concurrency.push_back({4, perQuestion, speedup, 0});
    return f;
}

} // namespace

TEST_CASE("probe: a server that takes four images and pays for concurrency", "[llm][probe]") {
    const ProbeRecommendation r =
        recommend(figures(4, 400ms, 3.2), LlmSettings{}, SamplingSettings{}, EncodeSettings{});
    CHECK(r.mode == LlmMode::Parallel);
    CHECK(r.framesPerSequence == 4);
    CHECK(r.layout == ImageLayout::Separate);
    CHECK(r.interval == 2s); // 2 x 480 ms, with a quarter to spare, within the configured 2 s
    // 4 x 576 + 185 of text + 256 to answer = 2745: the next multiple of 256
    // up, as the daemon's fit rounds (contextSizeFor).
    REQUIRE(r.numCtx);
    CHECK(*r.numCtx == 2816);
    CHECK(*r.numCtx == contextSizeFor(2745));
    const std::string dropIn = r.dropIn("probe of X");
    INFO(dropIn);
    CHECK(dropIn.starts_with("# probe of X\n"));
    CHECK(dropIn.find("  frames_per_sequence: 4\n") != std::string::npos);
    CHECK(dropIn.find("  mode: parallel\n") != std::string::npos);
    CHECK(dropIn.find("  max_side: 336\n") != std::string::npos); // the default, as measured
    CHECK(dropIn.find("    num_ctx: 2816\n") != std::string::npos);
    CHECK(dropIn.find("#   num_ctx 2816: 4 images x 576 tokens + 185 tokens of text + 256 to "
                      "answer = 2745\n") != std::string::npos);
}

TEST_CASE("probe: one slot asks one combined question, a slow server a longer interval",
          "[llm][probe]") {
    const ProbeRecommendation r =
        recommend(figures(4, 1800ms, 1.05), LlmSettings{}, SamplingSettings{}, EncodeSettings{});
    CHECK(r.mode == LlmMode::Combined);
    // One question of 1880 ms on the critical path, a quarter more (2350): 2.5 s.
    CHECK(r.interval == 2500ms);
}

TEST_CASE("probe: one image per question is the mosaic", "[llm][probe]") {
    const ProbeRecommendation r =
        recommend(figures(1, 400ms, 3.0), LlmSettings{}, SamplingSettings{}, EncodeSettings{});
    CHECK(r.layout == ImageLayout::Mosaic);
    CHECK(r.framesPerSequence == 4); // tiled into the one image
    CHECK_FALSE(r.numCtx);           // one image: no second count to learn the cost from
}

TEST_CASE("probe: fewer frames where the server takes fewer images, OpenAI keeps its context",
          "[llm][probe]") {
    LlmSettings openai;
    openai.server.api = LlmApi::OpenAi;
    const ProbeRecommendation r =
        recommend(figures(3, 400ms, 3.0), openai, SamplingSettings{}, EncodeSettings{});
    CHECK(r.framesPerSequence == 3);
    CHECK(r.layout == ImageLayout::Separate);
    CHECK_FALSE(r.numCtx); // the server's own setting
    CHECK(r.dropIn("x").find("num_ctx") == std::string::npos);
}

TEST_CASE("probe: nothing answered changes nothing", "[llm][probe]") {
    ProbeFigures f;
    SamplingSettings sampling;
    sampling.framesPerSequence = 6;
    const ProbeRecommendation r = recommend(f, LlmSettings{}, sampling, EncodeSettings{});
    CHECK(r.framesPerSequence == 6);
    REQUIRE(r.reasons.size() == 1);
    CHECK(r.reasons[0].starts_with("nothing changed"));
}
