#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "config/loader.h"
#include "llm/context_budget.h"

namespace dmsd::cli {
namespace {

void printCheckConfigUsage(std::FILE* out) {
    fmt::print(out,
               "usage: dmsd check-config [--print] MAIN.yaml [EXTRA.yaml...]\n"
               "  Validates MAIN.yaml with its conf.d/*.yaml drop-ins, as 'dmsd run --config\n"
               "  MAIN.yaml' would load it, then EXTRA files merged on top in the order given\n"
               "  (to check a new drop-in before renaming it into conf.d).\n"
               "  --print  also print the effective configuration (JSON, itself valid YAML)\n"
               "  Exit status: 0 valid, 1 invalid (every error is listed), 2 usage error.\n");
}

/// The context budget judged with the documented estimate of tokens per image
/// (llm/context_budget.h; docs/tuning.md, "Context budget"): a warning when
/// the configuration as written does not fit the context, and when even the
/// fit within llm.context's limits keeps fewer frames or the mosaic, or
/// cannot fit at all.
std::vector<std::string> budgetWarnings(const Config& config) {
    const LlmSettings& llm = config.llm;
    const auto [width, height] =
        scaledToMaxSide(config.capture.width, config.capture.height, config.encode.maxSide);
    ImageTokenEstimate estimate = estimateImageTokens(llm.model.name, width, height);
    if (llm.model.context.tokensPerImage) {
        estimate = {*llm.model.context.tokensPerImage, "llm.context.tokens_per_image"};
    }
    BudgetNeed need;
    need.api = llm.server.api;
    const bool ollama = need.api == LlmApi::Ollama;
    need.context = ollama ? llm.model.options.numCtx : llm.model.context.size;
    need.frames = config.sampling.framesPerSequence;
    need.layout = config.encode.layout;
    need.tokensPerImage = estimate.tokens;
    need.promptTokens = estimateTextTokens(budgetPrompt(config.analyses, need.frames));
    need.numPredict = llm.model.options.numPredict;
    const BudgetPlan plan = planContextBudget(need, llm.model.context);
    std::vector<std::string> warnings;
    if (plan.fitsAsConfigured) {
        return warnings;
    }
    const int images = need.layout == ImageLayout::Mosaic ? 1 : need.frames;
    warnings.push_back(fmt::format(
        "the context budget does not fit: {} image{} of {}x{} x {} tokens ({}) + about {} "
        "tokens of prompt + {} (llm.options.num_predict) = {} tokens, beyond the context of {} "
        "({}); dmsd learns the real figure from the server at start. Fit: {}",
        images, images == 1 ? "" : "s", width, height, estimate.tokens, estimate.basis,
        need.promptTokens, need.numPredict, plan.needed, plan.context,
        ollama ? "llm.options.num_ctx" : "llm.context.size", plan.change));
    if (plan.frames || plan.layout || !plan.fits) {
        warnings.push_back(fmt::format(
            "sampling.frames_per_sequence {} x {} tokens per image cannot fit within {} tokens "
            "({}): lower encode.max_side, the frames per sequence, or choose a model that "
            "spends fewer tokens per image",
            need.frames, estimate.tokens,
            ollama ? std::max<std::int64_t>(plan.context, llm.model.context.maxNumCtx)
                   : plan.context,
            ollama ? "llm.context.max_num_ctx" : "the server's context, llm.context.size"));
    }
    return warnings;
}

int checkConfig(Args args) {
    bool print = false;
    std::vector<std::filesystem::path> paths;
    bool optionsDone = false;
    for (std::string_view arg : args) {
        if (!optionsDone && (arg == "--help" || arg == "-h")) {
            printCheckConfigUsage(stdout);
            return kExitOk;
        }
        if (!optionsDone && arg == "--print") {
            print = true;
        } else if (!optionsDone && arg == "--") {
            optionsDone = true;
        } else if (!optionsDone && arg.starts_with('-') && arg.size() > 1) {
            fmt::print(stderr, "dmsd check-config: unknown option '{}'\n", arg);
            printCheckConfigUsage(stderr);
            return kExitUsage;
        } else {
            paths.emplace_back(arg);
        }
    }
    if (paths.empty()) {
        fmt::print(stderr, "dmsd check-config: no configuration file given\n");
        printCheckConfigUsage(stderr);
        return kExitUsage;
    }

    const std::vector<std::filesystem::path> extra(paths.begin() + 1, paths.end());
    const ConfigLoad load = loadConfig(paths.front(), extra);
    if (!load.config) {
        for (const ConfigError& error : load.errors) {
            fmt::print(stderr, "{}\n", error.format());
        }
        fmt::print(stderr, "dmsd check-config: configuration invalid ({} error{} in {} file{})\n",
                   load.errors.size(), load.errors.size() == 1 ? "" : "s", load.files.size(),
                   load.files.size() == 1 ? "" : "s");
        return kExitInputFailed;
    }
    std::vector<std::string> names;
    for (const auto& file : load.files) {
        names.push_back(file.string());
    }
    fmt::print("configuration valid: {}; files: {}\n", summary(*load.config),
               fmt::join(names, ", "));
    // Valid all the same (exit 0): the daemon fits what it can at start.
    for (const std::string& warning : budgetWarnings(*load.config)) {
        fmt::print(stderr, "dmsd check-config: warning: {}\n", warning);
    }
    if (print) {
        fmt::print("{}", effectiveConfigJson(*load.config));
    }
    return kExitOk;
}

} // namespace

int runCheckConfig(Args args) {
    // Never a stack trace: whatever escapes is reported as one line.
    try {
        return checkConfig(args);
    } catch (const std::exception& e) {
        fmt::print(stderr, "dmsd check-config: could not check the configuration: {}\n", e.what());
    } catch (...) {
        fmt::print(stderr, "dmsd check-config: could not check the configuration\n");
    }
    return kExitInputFailed;
}

} // namespace dmsd::cli
