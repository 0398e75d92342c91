#include <catch2/catch.hpp>

#include "llm/context_budget.h"

using namespace dmsd;

namespace {

BudgetNeed need(LlmApi api, std::int64_t context, int frames, std::int64_t perImage,
                ImageLayout layout = ImageLayout::Separate) {
    BudgetNeed n;
    n.api = api;
    n.context = context;
    n.frames = frames;
    n.layout = layout;
    n.tokensPerImage = perImage;
    n.promptTokens = 500;
    n.numPredict = 256;
    return n;
}

} // namespace

TEST_CASE("The budget: frames x tokens per image + prompt + num_predict", "[budget]") {
    const BudgetNeed n = need(LlmApi::Ollama, 8192, 4, 1728);
    CHECK(requestTokens(n, 4) == 4 * 1728 + 500 + 256);
    const BudgetPlan plan = planContextBudget(n, ContextSettings{});
    CHECK(plan.needed == 7668);
    CHECK(plan.fitsAsConfigured);
    CHECK(plan.fits);
    CHECK_FALSE(plan.changed());
    CHECK(plan.change == "none");
}

TEST_CASE("Ollama: num_ctx is raised first, up to llm.context.max_num_ctx", "[budget]") {
    const BudgetPlan plan = planContextBudget(need(LlmApi::Ollama, 2048, 4, 1728), {});
    CHECK_FALSE(plan.fitsAsConfigured);
    CHECK(plan.fits);
    REQUIRE(plan.numCtx);
    CHECK(*plan.numCtx == 7680); // 7668 rounded up to a multiple of 256
    CHECK_FALSE(plan.frames);
    CHECK_FALSE(plan.layout);
    CHECK(plan.change == "llm.options.num_ctx 2048 -> 7680");
}

TEST_CASE("Beyond the ceiling: fewer frames, down to 2", "[budget]") {
    ContextSettings limits;
    limits.maxNumCtx = 6144;
    const BudgetPlan plan = planContextBudget(need(LlmApi::Ollama, 2048, 4, 1728), limits);
    CHECK(plan.fits);
    REQUIRE(plan.frames);
    CHECK(*plan.frames == 3); // 3 x 1728 + 756 = 5940 <= 6144
    REQUIRE(plan.numCtx);
    CHECK(*plan.numCtx == 6144);
    CHECK(plan.neededAfter == 5940);
    CHECK(plan.change == "sampling.frames_per_sequence 4 -> 3, llm.options.num_ctx 2048 -> 6144");
}

TEST_CASE("Beyond two frames: the mosaic", "[budget]") {
    SECTION("OpenAI: the server's context is fixed") {
        ContextSettings limits;
        const BudgetPlan plan = planContextBudget(need(LlmApi::OpenAi, 2048, 4, 1000), limits);
        CHECK(plan.fits);
        CHECK_FALSE(plan.frames);
        REQUIRE(plan.layout);
        CHECK(*plan.layout == ImageLayout::Mosaic);
        CHECK_FALSE(plan.numCtx); // not an Ollama option
        CHECK(plan.neededAfter == 1756);
        CHECK(plan.change == "encode.layout separate -> mosaic");
    }
    SECTION("OpenAI: fewer frames when two fit") {
        const BudgetPlan plan = planContextBudget(need(LlmApi::OpenAi, 2048, 4, 600), {});
        CHECK(plan.fits);
        REQUIRE(plan.frames);
        CHECK(*plan.frames == 2);
    }
}

TEST_CASE("Nothing fits, fit off, unknown context: reported, not changed", "[budget]") {
    SECTION("one image alone is beyond the context") {
        const BudgetPlan plan = planContextBudget(need(LlmApi::OpenAi, 2048, 4, 3000), {});
        CHECK_FALSE(plan.fits);
        CHECK_FALSE(plan.changed());
        CHECK_THAT(plan.change, Catch::StartsWith("none: nothing within the limits fits"));
    }
    SECTION("llm.context.fit: false") {
        ContextSettings limits;
        limits.fit = false;
        const BudgetPlan plan = planContextBudget(need(LlmApi::Ollama, 2048, 4, 1728), limits);
        CHECK_FALSE(plan.fits);
        CHECK_FALSE(plan.changed());
        CHECK(plan.change == "none (llm.context.fit is false; it would take: llm.options.num_ctx "
                             "2048 -> 7680)");
    }
    SECTION("max_num_ctx 0 never raises num_ctx") {
        ContextSettings limits;
        limits.maxNumCtx = 0;
        const BudgetPlan plan = planContextBudget(need(LlmApi::Ollama, 4096, 4, 1728), limits);
        CHECK(plan.fits);
        CHECK_FALSE(plan.numCtx);
        CHECK_FALSE(plan.frames); // 2 x 1728 + 756 = 4212 > 4096
        REQUIRE(plan.layout);     // 1728 + 756 fits
        CHECK(*plan.layout == ImageLayout::Mosaic);
    }
    SECTION("OpenAI without llm.context.size") {
        const BudgetPlan plan = planContextBudget(need(LlmApi::OpenAi, 0, 4, 3000), {});
        CHECK(plan.fits);
        CHECK_FALSE(plan.changed());
    }
}

TEST_CASE("Per-model estimates of tokens per image", "[budget]") {
    CHECK(estimateImageTokens("llava:7b-v1.6-mistral-q2_K", 640, 480).tokens == 2880);
    CHECK(estimateImageTokens("llava:7b-v1.6-mistral-q2_K", 336, 252).tokens == 1728);
    CHECK(estimateImageTokens("llava:7b-v1.5-q4_0", 640, 480).tokens == 576);
    CHECK(estimateImageTokens("bakllava", 640, 480).tokens == 576);
    CHECK(estimateImageTokens("qwen2.5vl:3b", 448, 336).tokens == 16 * 12 + 2);
    CHECK(estimateImageTokens("gemma3:4b", 640, 480).tokens == 256);
    CHECK(estimateImageTokens("some-model", 640, 480).tokens == 2880);
}

TEST_CASE("The budget's prompt is the combined question about the frames", "[budget]") {
    const BudgetPrompt prompt = budgetPrompt(AnalysesSettings{}, 4);
    CHECK_FALSE(prompt.system.empty());
    CHECK_THAT(prompt.user, Catch::Contains("The 4 images are consecutive frames"));
    CHECK(estimateTextTokens(prompt) ==
          static_cast<std::int64_t>((prompt.system.size() + prompt.user.size() + 2) / 3));
}

TEST_CASE("The context a server names when it refuses a prompt", "[budget]") {
    CHECK(contextInError("chat: http://127.0.0.1:8080 answered HTTP 400: the request exceeds the "
                         "available context size (5000 prompt tokens, context 2048), try "
                         "increasing it") == 2048);
    CHECK(contextInError("This model's maximum context length is 4096 tokens. However, you "
                         "requested 5000 tokens") == 4096);
    CHECK(contextInError("{\"code\":400,\"n_prompt_tokens\":5000,\"n_ctx\":8192}") == 8192);
    CHECK_FALSE(contextInError("model 'x' not found"));
}
