#pragma once

/// \file
/// Ollama's native API (a ModelClient): `POST /api/chat` with the frames as
/// base64 in the user message's `images`, `format` set to the answer's JSON
/// schema, `options` and `keep_alive` from `llm:`, streamed (NDJSON) or not;
/// health from `/api/version` and `/api/show` (model present, `vision`
/// capability); warm-up by a chat without messages. The HTTP side (pool,
/// slots, deadlines, retries, cancellation) is llm/http_transport.h, which
/// several clients of one server share: a new model or new options make a new
/// client over the same transport (docs/llm.md).
///
/// Threading: call on the transport's io_context thread.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "llm/http_transport.h"
#include "llm/model_client.h"
#include "llm/settings.h"

namespace dmsd {

class OllamaClient final : public ModelClient, public std::enable_shared_from_this<OllamaClient> {
public:
    /// A client for \a model over \a transport (shared with other clients of the server).
    static std::shared_ptr<OllamaClient> create(HttpTransportPtr transport, ModelSettings model);
    /// A client with a transport of its own.
    static std::shared_ptr<OllamaClient> create(boost::asio::any_io_executor executor,
                                                const LlmSettings& settings,
                                                TransportOptions options = {});
    OllamaClient(const OllamaClient&) = delete;
    OllamaClient& operator=(const OllamaClient&) = delete;

    boost::asio::awaitable<ChatOutcome> chat(ChatRequest request) override;
    boost::asio::awaitable<HealthReport> checkHealth() override;
    boost::asio::awaitable<std::optional<AnalysisError>> warmUp() override;
    boost::asio::awaitable<PromptMeasurement> measurePrompt(std::string system, std::string user,
                                                            JpegImage image) override;
    void cancelAll() override;
    ClientStats stats() const override;
    const std::string& url() const override { return url_; }
    const std::string& model() const override { return model_.name; }
    int maxInFlight() const override;

    const HttpTransportPtr& transport() const { return transport_; }
    /// Why \a result was made from a truncated prompt or cut short, or
    /// nullopt: `done_reason` "length" (llm.options.num_predict reached), or
    /// `prompt_eval_count` at least llm.options.num_ctx (the prompt filled the
    /// context: Ollama kept its tail, the head is lost).
    std::optional<std::string> truncation(const ChatResult& result) const;
    /// An HTTP status as Ollama means it: the error in the answer's place and
    /// how it may be retried (404: model missing; 503: busy; 5xx: once).
    std::pair<AnalysisError, Retry> statusError(int status, std::string_view body,
                                                std::string_view what) const;

    /// Where the model sits after the last warm-up, from `/api/ps`.
    using Placement = ModelPlacement;
    const std::optional<Placement>& placement() const { return placement_; }

    /// The warm-up may take this long at least (loading a model takes seconds
    /// to minutes): its deadline is max(llm.timeout, this).
    static constexpr std::chrono::milliseconds kWarmUpMinimum{120000};

private:
    struct Plain {
        int status = 0;
        std::string body;
        std::optional<AnalysisError> error;
    };

    OllamaClient(HttpTransportPtr transport, ModelSettings model);
    boost::asio::awaitable<ChatOutcome> ask(std::shared_ptr<const std::string> body,
                                            std::string what,
                                            std::chrono::steady_clock::time_point deadline,
                                            bool streaming, std::string deadlineText = {},
                                            bool judgesTruncation = true);
    boost::asio::awaitable<Plain> plain(boost::beast::http::verb verb, std::string_view path,
                                        std::shared_ptr<const std::string> body,
                                        std::chrono::steady_clock::time_point deadline);

    HttpTransportPtr transport_;
    ModelSettings model_;
    std::string url_;
    boost::json::object optionsJson_;
    boost::json::value keepAlive_;
    std::optional<Placement> placement_;
};

using OllamaClientPtr = std::shared_ptr<OllamaClient>;

} // namespace dmsd
