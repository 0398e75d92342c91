#pragma once

/// \file
/// The seam between the analysis layer and a model server: ask one question
/// (with images, a JSON schema for the answer), check that the server can
/// answer (reachable, model present, sees images), load the model. Ollama's
/// native API is one implementation (llm/ollama_client.h); a backend is one
/// class implementing this interface over the shared HTTP transport
/// (llm/http_transport.h).
///
/// Every call is a coroutine on the caller's io_context. Cancellation is
/// Asio's: cancelling the awaiting coroutine (its cancellation slot, e.g. a
/// scheduler's per-sequence signal or a parallel group) aborts the request at
/// once, its connection is closed (so the server frees its slot) and the
/// outcome is AnalysisError::Kind::Cancelled. Nothing throws on I/O.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>
#include <boost/json/value.hpp>

#include "llm/answers.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// One question.
struct ChatRequest {
    std::string label; ///< what is asked ("face_state"), for messages and logs
    std::string systemPrompt;
    std::string userPrompt;
    std::vector<JpegImage> images;      ///< their base64 goes into the body
    const boost::json::value* format{}; ///< JSON schema (must outlive the call); null: none
    bool stream = false;                ///< streamed answer (gives time to first token)
};

/// A successful answer and its figures.
struct ChatResult {
    std::string content; ///< the model's whole answer text
    std::string doneReason;
    std::chrono::milliseconds latency{0};                ///< whole call, retries included
    std::optional<std::chrono::milliseconds> firstToken; ///< streamed: first content byte
    std::int64_t promptTokens = 0;
    std::int64_t evalTokens = 0;
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
    std::string version;            ///< the server's own version, when it says
    bool modelPresent = false;      ///< `x` and `x:latest` are the same model
    bool vision = false;            ///< the model takes images
    bool capabilitiesKnown = false; ///< false when the server does not list them
    std::vector<std::string> capabilities;
    /// Empty when usable; else one line naming the URL/model and what to do.
    std::string problem;
    bool usable() const { return serverReachable && modelPresent && vision; }
};

/// One server of a pool (`llm.url` a list; llm/server_pool.h).
struct ServerStatus {
    std::string url; ///< as configured (redact before showing)
    bool inService = true;
    std::string reason;          ///< why it is set aside; empty in service
    std::size_t outstanding = 0; ///< requests sent to it and not finished
    double latencyEwmaMs = 0;    ///< its peak-EWMA latency estimate
    std::uint64_t requests = 0;  ///< requests sent to it
    std::uint64_t failures = 0;  ///< of which failed with a server fault
    std::uint64_t setAsides = 0; ///< times it was set aside

    friend bool operator==(const ServerStatus&, const ServerStatus&) = default;
};

/// Where the model sits, as Ollama's `/api/ps` says after a warm-up: its
/// size and the part of it in GPU memory (both 0 when the server did not say).
struct ModelPlacement {
    std::int64_t size = 0;
    std::int64_t sizeVram = 0;
    bool wholeInGpu() const { return sizeVram >= size; }
};

/// Live figures of a client.
struct ClientStats {
    std::size_t openConnections = 0; ///< sockets open (idle in the pool + in use)
    std::size_t idleConnections = 0;
    std::size_t inFlight = 0; ///< requests holding one of the max_in_flight slots
    std::size_t queued = 0;   ///< requests waiting for a slot
    std::uint64_t attempts = 0;
    std::uint64_t retries = 0;
    std::uint64_t connectionsOpened = 0;
    /// Responses (or unsolicited bytes) that broke HTTP's framing; their
    /// connections were closed and their bytes discarded.
    std::uint64_t protocolErrors = 0;
    /// Responses that arrived slower than llm.min_response_rate.
    std::uint64_t stalledResponses = 0;
    /// Answers made from a truncated prompt or cut at the token limit
    /// (`done_reason`/`finish_reason` "length", or a prompt that filled the
    /// whole context): failed, never taken as evidence.
    std::uint64_t truncatedAnswers = 0;
    /// Ollama: the model's placement after the last warm-up (`/api/ps`);
    /// unset for other APIs or before one (several servers: the first that said).
    std::optional<ModelPlacement> placement;
    /// Per server when the client is a pool of several; empty for one server.
    std::vector<ServerStatus> servers;
};

/// The prompt tokens the server counts for one text, alone and with one
/// image: what an image costs of the context (llm/context_budget.h).
struct PromptMeasurement {
    std::int64_t textTokens = 0;      ///< the text alone
    std::int64_t withImageTokens = 0; ///< the same text and one image
    std::optional<AnalysisError> error;
    /// The error is that one image and the text already fill the context.
    bool contextFull = false;
    bool ok() const { return !error; }
    std::int64_t tokensPerImage() const {
        return withImageTokens > textTokens ? withImageTokens - textTokens : 0;
    }
};

/// True when the server's error says the model takes one image per message
/// (llama3.2-vision: "this model only supports one image while more than one
/// image requested"; v0.6: "vision model only supports a single image per message").
bool isSingleImageError(const AnalysisError& error);

class ModelClient {
public:
    virtual ~ModelClient() = default;

    /// Asks one question; the answer or the error in its place.
    virtual boost::asio::awaitable<ChatOutcome> chat(ChatRequest request) = 0;

    /// Reachable? The model present? Does it see images?
    virtual boost::asio::awaitable<HealthReport> checkHealth() = 0;

    /// Loads the model with the same options as every request, so the first
    /// real question does not pay the load time. The error, if any.
    virtual boost::asio::awaitable<std::optional<AnalysisError>> warmUp() = 0;

    /// Asks the server what \a image costs: the prompt tokens of \a system and
    /// \a user with the image (asked first), then without it (one generated
    /// token each, never judged as truncated). Each system prompt starts with
    /// its own marker ("Measurement 1.", "Measurement 2."), so a server's
    /// prompt cache (Ollama and llama.cpp reuse a common prefix and count only
    /// what they evaluate) cannot hide the text: at most the chat template's
    /// first tokens and the marker's first word are reused by the second
    /// request, which then counts a few tokens less and the image a few more
    /// (the safe side).
    virtual boost::asio::awaitable<PromptMeasurement>
    measurePrompt(std::string system, std::string user, JpegImage image) = 0;

    /// Aborts every request of this client (queued or open) with Cancelled and
    /// closes its connections (shutdown). The client stays usable.
    virtual void cancelAll() = 0;

    virtual ClientStats stats() const = 0;
    /// `llm.url` as configured (for messages).
    virtual const std::string& url() const = 0;
    /// The model asked (`llm.model`): part of the response cache key.
    virtual const std::string& model() const = 0;
    /// Requests the server is sent at once (`llm.max_in_flight`).
    virtual int maxInFlight() const = 0;
};

using ModelClientPtr = std::shared_ptr<ModelClient>;

} // namespace dmsd
