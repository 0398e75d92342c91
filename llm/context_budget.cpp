#include "llm/context_budget.h"

#include <algorithm>
#include <array>
#include <cctype>

#include <fmt/format.h>

#include "llm/analysis.h"

namespace dmsd {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool has(const std::string& s, std::string_view part) {
    return s.find(part) != std::string::npos;
}

/// llava-1.6 "anyres" as llama.cpp's clip does it: the image is fitted to the
/// grid resolution (in 336-pixel tiles) that keeps most of its pixels and
/// wastes least; each grid tile and the 336x336 overview cost 576 tokens.
std::int64_t llavaNextTokens(int width, int height) {
    static constexpr std::array<std::array<int, 2>, 5> kGrids = {
        {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}}};
    std::int64_t bestEffective = -1;
    std::int64_t bestWasted = 0;
    std::int64_t tiles = 4;
    for (const auto& [gw, gh] : kGrids) {
        const double scale =
            std::min(static_cast<double>(gw) / width, static_cast<double>(gh) / height);
        const auto w = static_cast<std::int64_t>(width * scale);
        const auto h = static_cast<std::int64_t>(height * scale);
        const std::int64_t effective =
            std::min(w * h, static_cast<std::int64_t>(width) * static_cast<std::int64_t>(height));
        const std::int64_t wasted = static_cast<std::int64_t>(gw) * gh - effective;
        if (effective > bestEffective || (effective == bestEffective && wasted < bestWasted)) {
            bestEffective = effective;
            bestWasted = wasted;
            tiles = static_cast<std::int64_t>(gw / 336) * (gh / 336);
        }
    }
    return 576 * (1 + tiles);
}

} // namespace

std::string_view contextStateName(ContextReport::State state) {
    switch (state) {
    case ContextReport::State::Pending:
        return "pending";
    case ContextReport::State::Measured:
        return "measured";
    case ContextReport::State::Failed:
        return "failed";
    }
    return "pending";
}

std::optional<std::int64_t> contextInError(std::string_view message) {
    const std::string m = lower(message);
    for (std::string_view marker :
         {std::string_view("context length is "), std::string_view("\"n_ctx\":"),
          std::string_view("n_ctx = "), std::string_view("context ")}) {
        std::size_t at = 0;
        while ((at = m.find(marker, at)) != std::string::npos) {
            at += marker.size();
            std::size_t end = at;
            while (end < m.size() && std::isdigit(static_cast<unsigned char>(m[end])) != 0) {
                ++end;
            }
            if (end > at && end - at <= 9) {
                return std::stoll(m.substr(at, end - at));
            }
        }
    }
    return std::nullopt;
}

int contextSizeFor(std::int64_t tokens) {
    return static_cast<int>((tokens + 255) / 256 * 256);
}

std::int64_t requestTokens(const BudgetNeed& need, int images) {
    return static_cast<std::int64_t>(images) * need.tokensPerImage + need.promptTokens +
           need.numPredict;
}

BudgetPlan planContextBudget(const BudgetNeed& need, const ContextSettings& limits) {
    BudgetPlan plan;
    const int images = need.layout == ImageLayout::Mosaic ? 1 : need.frames;
    plan.needed = requestTokens(need, images);
    plan.context = need.context;
    plan.neededAfter = plan.needed;
    plan.contextAfter = plan.context;
    if (need.context <= 0) {
        plan.fitsAsConfigured = plan.fits = true;
        plan.change = "none (the server's context is unknown: set llm.context.size)";
        return plan;
    }
    plan.fitsAsConfigured = plan.needed <= need.context;
    if (plan.fitsAsConfigured) {
        plan.fits = true;
        plan.change = "none";
        return plan;
    }
    const bool ollama = need.api == LlmApi::Ollama;
    // The context a fit may use: Ollama's num_ctx up to the ceiling; an
    // OpenAI-compatible server's context is its own setting.
    const std::int64_t ceiling =
        ollama ? std::max<std::int64_t>(need.context, limits.maxNumCtx) : need.context;
    auto contextFor = [&](std::int64_t tokens) -> std::int64_t {
        return tokens <= need.context ? need.context
                                      : std::min<std::int64_t>(contextSizeFor(tokens), ceiling);
    };
    BudgetPlan fitted = plan;
    if (plan.needed <= ceiling) {
        fitted.numCtx = static_cast<int>(contextFor(plan.needed));
        fitted.neededAfter = plan.needed;
    } else if (need.layout == ImageLayout::Separate && requestTokens(need, 2) <= ceiling) {
        int frames = need.frames;
        while (frames > 2 && requestTokens(need, frames) > ceiling) {
            --frames;
        }
        fitted.frames = frames;
        fitted.neededAfter = requestTokens(need, frames);
    } else if (need.layout == ImageLayout::Separate && requestTokens(need, 1) <= ceiling) {
        fitted.layout = ImageLayout::Mosaic;
        fitted.neededAfter = requestTokens(need, 1);
    }
    if (fitted.frames || fitted.layout) {
        const std::int64_t ctx = contextFor(fitted.neededAfter);
        if (ctx != need.context) {
            fitted.numCtx = static_cast<int>(ctx);
        }
    }
    fitted.contextAfter = fitted.numCtx ? *fitted.numCtx : need.context;
    fitted.fits = fitted.changed() && fitted.neededAfter <= fitted.contextAfter;

    std::string what;
    auto add = [&what](const std::string& part) {
        what += what.empty() ? part : ", " + part;
    };
    if (fitted.frames) {
        add(fmt::format("sampling.frames_per_sequence {} -> {}", need.frames, *fitted.frames));
    }
    if (fitted.layout) {
        add("encode.layout separate -> mosaic");
    }
    if (fitted.numCtx) {
        add(fmt::format("llm.options.num_ctx {} -> {}", need.context, *fitted.numCtx));
    }
    if (!fitted.fits) {
        plan.change = fmt::format(
            "none: nothing within the limits fits ({} tokens for one image alone{}); lower "
            "encode.max_side, choose a model that spends fewer tokens per image{}",
            requestTokens(need, 1),
            ollama ? fmt::format(", llm.context.max_num_ctx {}", limits.maxNumCtx)
                   : fmt::format(", the server's context {}", need.context),
            ollama ? " or raise llm.context.max_num_ctx" : " or give the server a larger context");
        return plan;
    }
    if (!limits.fit) {
        plan.change = fmt::format("none (llm.context.fit is false; it would take: {})", what);
        return plan;
    }
    fitted.change = what;
    return fitted;
}

BudgetPrompt budgetPrompt(const AnalysesSettings& analyses, int frames) {
    EncodedSequence sequence;
    sequence.frames.resize(static_cast<std::size_t>(std::max(frames, 1)));
    for (std::size_t i = 0; i < sequence.frames.size(); ++i) {
        // Times as the real prompts write them ("12.34 s"): the same length.
        sequence.frames[i].ptsSeconds = 10.0 + 0.25 * static_cast<double>(i);
    }
    BudgetPrompt prompt;
    prompt.system = std::string(systemPrompt());
    prompt.user = buildCombinedPrompt(
        enabledAnalyses(analyses), analyses,
        framesDescription(sequence, false, static_cast<std::size_t>(std::max(frames, 1))));
    return prompt;
}

ImageTokenEstimate estimateImageTokens(std::string_view model, int width, int height) {
    const std::string m = lower(model);
    if (has(m, "bakllava") || has(m, "llava-llama3") || has(m, "llava-phi3") || has(m, "v1.5") ||
        has(m, "llava1.5") || has(m, "llava-1.5")) {
        return {576, "llava-1.5 family: 24x24 patches of a 336x336 image, 576 tokens"};
    }
    if (has(m, "llava")) {
        return {llavaNextTokens(width, height),
                fmt::format("llava-1.6 (anyres): a 336x336 overview and the 336-pixel grid "
                            "tiles a {}x{} image is fitted to, 576 tokens each",
                            width, height)};
    }
    if (has(m, "qwen2") && has(m, "vl")) {
        const std::int64_t tokens =
            static_cast<std::int64_t>((width + 27) / 28) * ((height + 27) / 28) + 2;
        return {tokens, fmt::format("qwen2-vl family: one token per 28x28 pixels of a {}x{} "
                                    "image, and 2",
                                    width, height)};
    }
    if (has(m, "gemma3")) {
        return {256, "gemma3: 256 tokens per image"};
    }
    return {2880, "unknown family: the conservative 2,880 of llava-1.6 at its largest (state "
                  "the figure with llm.context.tokens_per_image)"};
}

std::int64_t estimateTextTokens(const BudgetPrompt& prompt) {
    return static_cast<std::int64_t>((prompt.system.size() + prompt.user.size() + 2) / 3);
}

} // namespace dmsd
