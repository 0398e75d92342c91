#pragma once

/// \file
/// The context budget of a request: frames x tokens per image + the prompt's
/// text + `num_predict` must fit the model's context (Ollama: `num_ctx`;
/// OpenAI-compatible servers: their own context, `llm.context.size`). Offers
/// the plan that fits a configuration within
/// them (raise `num_ctx`, else fewer frames down to 2, else the mosaic), the
/// prompt a budget is measured with, and the per-model estimate of tokens per
/// image that `check-config` uses before any server is asked. Pure: no I/O.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "llm/settings.h"
#include "pipeline/settings.h"

namespace dmsd {

/// What one request of a configuration costs and may use.
struct BudgetNeed {
    LlmApi api = LlmApi::Ollama;
    /// Ollama: `num_ctx`; OpenAI: the server's context (0: unknown).
    std::int64_t context = 0;
    int frames = 4; ///< sampling.frames_per_sequence
    ImageLayout layout = ImageLayout::Separate;
    std::int64_t tokensPerImage = 0;
    std::int64_t promptTokens = 0; ///< the text of the largest request (system + user)
    int numPredict = 256;
};

/// The tokens of one request of \a images images.
std::int64_t requestTokens(const BudgetNeed& need, int images);

/// The Ollama `num_ctx` that holds \a tokens: rounded up to a multiple of
/// 256 (any value works; a round one reads better). The daemon's fit and
/// `dmsd probe` both size the context with it.
int contextSizeFor(std::int64_t tokens);

/// The budget as configured and what the fit changes, if anything.
struct BudgetPlan {
    std::int64_t needed = 0;  ///< tokens of the largest request as configured
    std::int64_t context = 0; ///< as configured (0: unknown)
    bool fitsAsConfigured = false;
    bool fits = false;                 ///< after the changes below (were they applied)
    std::optional<int> numCtx;         ///< Ollama num_ctx raised to this
    std::optional<int> frames;         ///< frames per sequence lowered to this
    std::optional<ImageLayout> layout; ///< the mosaic instead of separate images
    std::int64_t neededAfter = 0;      ///< tokens of the largest request after the changes
    std::int64_t contextAfter = 0;     ///< the context after the changes
    /// One line: "none", "llm.options.num_ctx 2048 -> 8192", "not fitted ...".
    std::string change;
    bool changed() const { return numCtx || frames || layout; }
};

/// Checks \a need against its context and, when it does not fit and \a
/// limits.fit, finds the least change that makes it fit, in this order:
/// raise `num_ctx` (Ollama, up to limits.maxNumCtx: nothing is lost but
/// memory); else fewer frames per sequence, down to 2 (each image keeps its
/// detail); else the mosaic (one image: every frame, at a fraction of the
/// detail), with `num_ctx` raised as far as it then needs. Unknown context
/// (OpenAI without llm.context.size): fits, nothing changed.
BudgetPlan planContextBudget(const BudgetNeed& need, const ContextSettings& limits);

/// What the daemon learned and chose (GetStatus `model.context`, the journal).
struct ContextReport {
    enum class State { Pending, Measured, Failed };
    State state = State::Pending;
    std::int64_t tokensPerImage = 0;
    std::int64_t promptTokens = 0;
    int imageWidth = 0;
    int imageHeight = 0;
    int numPredict = 0;
    BudgetPlan plan;
    std::string problem; ///< Failed: why nothing was measured
};

/// "pending", "measured", "failed".
std::string_view contextStateName(ContextReport::State state);

/// The context a server names in its refusal of a prompt too long for it:
/// llama.cpp ("... (N prompt tokens, context C) ...", `"n_ctx":C`), vLLM
/// ("maximum context length is C tokens"); nullopt when it names none.
std::optional<std::int64_t> contextInError(std::string_view message);

/// The text the budget counts: the system prompt and the combined question
/// about \a frames separate images (the longest user message dmsd sends).
struct BudgetPrompt {
    std::string system;
    std::string user;
};
BudgetPrompt budgetPrompt(const AnalysesSettings& analyses, int frames);

/// A documented estimate of tokens per image before any server is asked
/// (docs/tuning.md, "Context budget").
struct ImageTokenEstimate {
    std::int64_t tokens = 0;
    std::string basis; ///< the family and its rule, for messages
};
/// The estimate for \a model with images of \a width x \a height.
ImageTokenEstimate estimateImageTokens(std::string_view model, int width, int height);

/// check-config's estimate of the text: one token per 3 bytes (English runs
/// at about 4 bytes per token in these tokenizers: 3 leaves room for the
/// chat template).
std::int64_t estimateTextTokens(const BudgetPrompt& prompt);

} // namespace dmsd
