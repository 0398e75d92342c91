#pragma once

/// \file
/// Asynchronous HTTP/1.1 client for Ollama's native API on the caller's
/// io_context (Boost.Beast, C++20 coroutines). One coroutine per request:
/// bounded in flight, keep-alive pool, four deadlines (connect, first byte,
/// gap between streamed lines, whole request), real cancellation (the socket is
/// closed, so the server frees its slot), response size cap, classified errors
/// as values and retries within the request's deadline. See docs/llm.md.
///
/// Threading: every member function must be called on the io_context's thread
/// (or through asio::post); completion handlers run there too.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include "llm/answers.h"
#include "llm/cancel.h"
#include "llm/settings.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// One `/api/chat` question.
struct ChatRequest {
    std::string label; ///< what is asked ("face_state"), for messages and logs
    std::string systemPrompt;
    std::string userPrompt;
    std::vector<JpegImage> images;      ///< their base64 goes into the body
    const boost::json::value* format{}; ///< JSON schema (must outlive the call); null: none
    bool stream = false;                ///< NDJSON streaming (gives time to first token)
};

/// A successful answer and its figures.
struct ChatResult {
    std::string content; ///< the concatenated `message.content`
    std::string doneReason;
    std::chrono::milliseconds latency{0};                ///< whole call, retries included
    std::optional<std::chrono::milliseconds> firstToken; ///< streamed: first content byte
    std::int64_t promptTokens = 0;                       ///< prompt_eval_count
    std::int64_t evalTokens = 0;                         ///< eval_count
    int attempts = 1;
};

/// The answer or the classified error in its place.
struct ChatOutcome {
    std::optional<ChatResult> result;
    std::optional<AnalysisError> error;
    std::chrono::milliseconds latency{0}; ///< also set on error
    int attempts = 0;
    bool ok() const { return result.has_value(); }
};

/// Result of the start-up / recovery health check.
struct HealthReport {
    bool serverReachable = false;
    std::string version;            ///< from /api/version
    bool modelPresent = false;      ///< `x` and `x:latest` are the same model
    bool vision = false;            ///< `vision` in /api/show capabilities
    bool capabilitiesKnown = false; ///< false on servers older than 0.6.4
    std::vector<std::string> capabilities;
    /// Empty when usable; else one line naming the URL/model and what to do.
    std::string problem;
    bool usable() const { return serverReachable && modelPresent && vision; }
};

/// Live figures of the client.
struct ClientStats {
    std::size_t openConnections = 0; ///< sockets open (idle in the pool + in use)
    std::size_t idleConnections = 0;
    std::size_t inFlight = 0; ///< requests holding one of the max_in_flight slots
    std::size_t queued = 0;   ///< requests waiting for a slot
    std::uint64_t attempts = 0;
    std::uint64_t retries = 0;
    std::uint64_t connectionsOpened = 0;
};

/// Tuning beyond LlmSettings (defaults fit a local Ollama).
struct ClientOptions {
    std::size_t maxQueued = 64;                   ///< waiting requests beyond max_in_flight
    std::chrono::milliseconds backoffInitial{50}; ///< 503/connection retry, doubled each time
    std::chrono::milliseconds backoffMax{1000};
    int maxAttempts = 6; ///< per call, all causes together
};

/// True when Ollama's error text says the model takes one image per message
/// (llama3.2-vision: "this model only supports one image while more than one
/// image requested"; v0.6: "vision model only supports a single image per message").
bool isSingleImageError(const AnalysisError& error);

class OllamaClient : public std::enable_shared_from_this<OllamaClient> {
public:
    /// Never throws: a `llm.url` that llm/server_url.h refuses (the
    /// configuration checks it first) makes every request fail, naming it.
    static std::shared_ptr<OllamaClient> create(boost::asio::any_io_executor executor,
                                                LlmSettings settings, ClientOptions options = {});
    ~OllamaClient();
    OllamaClient(const OllamaClient&) = delete;
    OllamaClient& operator=(const OllamaClient&) = delete;

    /// Asks one question. Never throws on I/O; returns the answer or an error.
    /// \a cancel (optional) aborts it at once: the socket is closed.
    boost::asio::awaitable<ChatOutcome> chat(ChatRequest request, CancelSignalPtr cancel = {});

    /// Callback form of chat(); \a done runs on the io_context exactly once.
    void chat(ChatRequest request, CancelSignalPtr cancel, std::function<void(ChatOutcome)> done);

    /// `/api/version`, `/api/tags` and `POST /api/show`: reachable? model present? vision?
    boost::asio::awaitable<HealthReport> checkHealth();
    void checkHealth(std::function<void(HealthReport)> done);

    /// Loads the model (a chat with no messages, same options and keep_alive as
    /// every request) so the first real question does not pay the load time.
    /// Returns the error, if any. Bounded by max(llm.timeout, 120 s).
    boost::asio::awaitable<std::optional<AnalysisError>> warmUp();
    void warmUp(std::function<void(std::optional<AnalysisError>)> done);

    /// Aborts every request (queued or open) with Cancelled and closes all
    /// connections (shutdown). The client stays usable.
    void cancelAll();

    ClientStats stats() const;
    const LlmSettings& settings() const { return settings_; }
    /// "http://127.0.0.1:11434" as configured (for messages).
    const std::string& url() const { return settings_.server.url; }

    struct Impl;

private:
    OllamaClient(boost::asio::any_io_executor executor, LlmSettings settings,
                 ClientOptions options);
    LlmSettings settings_;
    std::unique_ptr<Impl> impl_;
};

using OllamaClientPtr = std::shared_ptr<OllamaClient>;

} // namespace dmsd
