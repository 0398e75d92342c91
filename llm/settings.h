#pragma once

/// \file
/// Settings of the analysis layer: `llm:` (where the model server is, which
/// model is asked and how, how sequences are scheduled) and `analyses:`
/// (which questions are asked, with which prompts), with their keys, ranges
/// and checks (base/keys.h). The three parts of `llm:` are restarted apart on
/// a reload: a new mode does not close the server connections.

#include <array>
#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/duration.h"
#include "base/keys.h"
#include "llm/answers.h"
#include "llm/api_key.h"
#include "llm/server_url.h"

namespace dmsd {

/// Which API the model server speaks.
enum class LlmApi { Ollama, OpenAi };
inline constexpr std::array<std::pair<std::string_view, LlmApi>, 2> kLlmApiNames = {{
    {"ollama", LlmApi::Ollama},
    {"openai", LlmApi::OpenAi},
}};

/// "ollama", "openai".
constexpr std::string_view llmApiName(LlmApi api) {
    return choiceName(ChoiceNames<LlmApi>(kLlmApiNames), api);
}

/// The model server(s) and the transport to each. Every server of a list
/// gets the same settings (API, key, CA, slots, deadlines) and a transport of
/// its own: `max_in_flight` is per server (llm/server_pool.h).
struct ServerSettings {
    /// `llm.url`: the model server, or the first of the list.
    std::string url = "http://127.0.0.1:11434";
    /// `llm.url` as a list: the servers after the first; empty: one server.
    std::vector<std::string> moreUrls;
    LlmApi api = LlmApi::Ollama;
    /// `llm.api_key_file`: where the API key is (empty: none is sent).
    std::string apiKeyFile;
    /// The key itself, read from apiKeyFile whenever the configuration is
    /// loaded (start, reload, check-config); never written anywhere. A new
    /// key in the same file therefore restarts the transport on a reload.
    std::string apiKey;
    /// `llm.ca_file`: the CA certificates (PEM) an https server's certificate
    /// must chain to; empty: the system's store.
    std::string caFile;
    int maxInFlight = 4;         ///< requests open at once
    Millis timeout{20000};       ///< whole request, retries included
    Millis connectTimeout{2000}; ///< name resolution and TCP connect
    Millis firstByteTimeout{0};  ///< 0: bounded by `timeout` only
    Millis idleTimeout{0};       ///< gap between streamed lines; 0: bounded by `timeout`
    std::size_t maxResponseBytes = 1 << 20;
    /// A response slower than this (bytes per second, from its first byte,
    /// after a second of grace) is stalled: a drip, or a body cut short with
    /// the connection held open. 0: only the deadlines apply.
    std::size_t minResponseRate = 64;

    friend bool operator==(const ServerSettings&, const ServerSettings&) = default;
};

/// Every server of \a server, in order: `llm.url`, one or a list.
inline std::vector<std::string> serverUrls(const ServerSettings& server) {
    std::vector<std::string> urls{server.url};
    urls.insert(urls.end(), server.moreUrls.begin(), server.moreUrls.end());
    return urls;
}

/// `llm.url` for messages: the URLs, ", "-separated (as a pool's url()).
inline std::string serverUrlsText(const ServerSettings& server) {
    std::string text = server.url;
    for (const std::string& url : server.moreUrls) {
        text += ", " + url;
    }
    return text;
}

/// The settings of one transport: \a server's, for its \a index'th URL.
inline ServerSettings serverSettingsAt(const ServerSettings& server, std::size_t index) {
    ServerSettings one = server;
    one.url = serverUrls(server).at(index);
    one.moreUrls.clear();
    return one;
}

/// Ollama `options`; kept identical across requests (a change of num_ctx reloads the model).
struct ModelOptions {
    double temperature = 0.1;
    int topK = 10;
    double topP = 0.5;
    int numCtx = 8192;
    int numPredict = 256;
    std::optional<int> seed;
    std::optional<int> numGpu;    ///< layers offloaded to the GPU; unset: the server decides
    std::optional<int> numThread; ///< CPU threads; unset: the server decides

    friend bool operator==(const ModelOptions&, const ModelOptions&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.number("temperature", s.temperature, 0.0, 2.0);
        k.integer("top_k", s.topK, 1, 1000);
        k.number("top_p", s.topP, 0.0, 1.0);
        k.integer("num_ctx", s.numCtx, 256, 131072);
        k.integer("num_predict", s.numPredict, 1, 16384);
        k.optionalInteger("seed", s.seed, std::numeric_limits<int>::min(),
                          std::numeric_limits<int>::max());
        k.optionalInteger("num_gpu", s.numGpu, 0, 1024);
        k.optionalInteger("num_thread", s.numThread, 1, 1024);
    }
};

/// `llm.context:`: how the budget is checked and fitted.
struct ContextSettings {
    /// Fit the configuration to the context at start (false: only report).
    bool fit = true;
    /// Ollama: the largest `num_ctx` the fit may raise it to (0: never raise).
    int maxNumCtx = 16384;
    /// OpenAI API: the server's context in tokens (llama.cpp `--ctx-size`,
    /// vLLM `--max-model-len`); 0: unknown until the server names it in an error.
    int size = 0;
    /// check-config's figure of tokens per image; unset: the model's family estimate.
    std::optional<int> tokensPerImage;

    friend bool operator==(const ContextSettings&, const ContextSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.boolean("fit", s.fit);
        k.integer("max_num_ctx", s.maxNumCtx, 0, 131072);
        k.integer("size", s.size, 0, 1048576);
        k.optionalInteger("tokens_per_image", s.tokensPerImage, 1, 65536);
    }
};

/// What is asked of the server: the model and how it runs.
struct ModelSettings {
    std::string name = "llava:7b-v1.6-mistral-q2_K";
    Millis keepAlive{300000};
    ModelOptions options;
    /// The context budget's limits (llm/context_budget.h).
    ContextSettings context;

    friend bool operator==(const ModelSettings&, const ModelSettings&) = default;
};

/// How a sequence's questions are put to the server.
enum class LlmMode { Auto, Parallel, Combined, Sequential };
inline constexpr std::array<std::pair<std::string_view, LlmMode>, 4> kLlmModeNames = {{
    {"auto", LlmMode::Auto},
    {"parallel", LlmMode::Parallel},
    {"combined", LlmMode::Combined},
    {"sequential", LlmMode::Sequential},
}};

/// "auto", "parallel", "combined", "sequential".
constexpr std::string_view llmModeName(LlmMode mode) {
    return choiceName(ChoiceNames<LlmMode>(kLlmModeNames), mode);
}

struct CacheSettings {
    int entries = 256;
    Millis ttl{60000};

    friend bool operator==(const CacheSettings&, const CacheSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.integer("entries", s.entries, 0, 100000);
        k.duration("ttl", s.ttl, 0ms, 24h);
    }
};

/// The scheduler's own settings.
struct SchedulerSettings {
    LlmMode mode = LlmMode::Auto;
    CacheSettings cache;

    friend bool operator==(const SchedulerSettings&, const SchedulerSettings&) = default;
};

/// `llm:`; its keys are flat in the file and land in the part that uses them.
struct LlmSettings {
    ServerSettings server;
    ModelSettings model;
    SchedulerSettings scheduler;

    friend bool operator==(const LlmSettings&, const LlmSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.textList("url", s.server.url, s.server.moreUrls, "http[s]://HOST[:PORT][/PATH]",
                   serverUrlProblem);
        k.choice("api", s.server.api, ChoiceNames<LlmApi>(kLlmApiNames));
        k.text("api_key_file", s.server.apiKeyFile,
               "an absolute path to a file readable by its owner only; empty: no key", nullptr,
               true);
        k.text("ca_file", s.server.caFile,
               "an absolute path to PEM CA certificates; empty: the system's store", caFileProblem,
               true);
        k.text("model", s.model.name, "a model name the server knows, e.g. llava:7b");
        k.choice("mode", s.scheduler.mode, ChoiceNames<LlmMode>(kLlmModeNames));
        k.integer("max_in_flight", s.server.maxInFlight, 1, 64);
        k.duration("timeout", s.server.timeout, 100ms, 1h);
        k.duration("keep_alive", s.model.keepAlive, 0ms, 24h);
        k.section("options", s.model.options);
        k.section("cache", s.scheduler.cache);
        k.section("context", s.model.context);
        k.duration("connect_timeout", s.server.connectTimeout, 100ms, 1min);
        k.duration("first_byte_timeout", s.server.firstByteTimeout, 0ms, 1h);
        k.duration("idle_timeout", s.server.idleTimeout, 0ms, 1h);
        k.integer("max_response_bytes", s.server.maxResponseBytes, std::size_t{1024},
                  std::size_t{64} << 20);
        k.integer("min_response_rate", s.server.minResponseRate, std::size_t{0},
                  std::size_t{1} << 30);
        // The key file is read here, whenever a configuration is loaded: so
        // check-config, the start and every reload read (and judge) the same
        // file, and a reload with a bad key file is rejected like any bad value.
        if constexpr (!std::is_const_v<Self>) {
            k.crossCheck(
                {"api_key_file"},
                [&s]() -> std::optional<std::string> {
                    s.server.apiKey.clear();
                    if (s.server.apiKeyFile.empty()) {
                        return std::nullopt;
                    }
                    std::string problem;
                    if (auto key = readApiKeyFile(s.server.apiKeyFile, problem)) {
                        s.server.apiKey = std::move(*key);
                        return std::nullopt;
                    }
                    return problem;
                },
                "a file of one line (the key), owned by the service and not readable by group "
                "or others (chmod 600)");
        }
    }
};

/// What a change of `llm:` restarts, least first: only the scheduler (mode,
/// cache), the client too (the model and its options, over the same server
/// connections), or the transport too (the server, its limits and deadlines).
enum class LlmRestart { None, Scheduler, Client, Transport };

constexpr LlmRestart llmRestart(const LlmSettings& before, const LlmSettings& after) {
    if (before.server != after.server) {
        return LlmRestart::Transport;
    }
    if (before.model != after.model) {
        return LlmRestart::Client;
    }
    return before.scheduler != after.scheduler ? LlmRestart::Scheduler : LlmRestart::None;
}

/// One analysis: asked or not, and its instruction.
struct AnalysisSettings {
    bool enabled = true;
    std::string prompt; ///< empty: the built-in prompt

    friend bool operator==(const AnalysisSettings&, const AnalysisSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.boolean("enabled", s.enabled);
        k.text("prompt", s.prompt, "text; empty for the built-in prompt", nullptr, true);
    }
};

/// `analyses:`, one section per analysis.
struct AnalysesSettings {
    std::array<AnalysisSettings, kAnalysisCount> byKind{};

    AnalysisSettings& operator[](AnalysisKind kind) {
        return byKind[static_cast<std::size_t>(kind)];
    }
    const AnalysisSettings& operator[](AnalysisKind kind) const {
        return byKind[static_cast<std::size_t>(kind)];
    }
    friend bool operator==(const AnalysesSettings&, const AnalysesSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        for (AnalysisKind kind : kAllAnalyses) {
            k.section(analysisName(kind), s[kind]);
        }
    }
};

} // namespace dmsd
