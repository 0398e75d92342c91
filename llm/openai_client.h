#pragma once

/// \file
/// The OpenAI-compatible chat API (a ModelClient), as llama.cpp's server,
/// vLLM, NanoLLM/MLC and Ollama's own `/v1` routes speak it: `POST
/// {url}/v1/chat/completions` with the user message's content as parts
/// (`text`, then one `image_url` per frame as a `data:image/jpeg;base64,`
/// URL), the answer's JSON schema as `response_format` (`json_schema`,
/// strict), `max_tokens`, `temperature`, `top_p` and `seed` from
/// `llm.options`, never streamed; health by `GET {url}/v1/models` (the model
/// must be listed); warm-up by a one-token question. `{"error":{"message"}}`
/// bodies are classified as the Ollama client classifies its errors. The
/// HTTP side is llm/http_transport.h.
///
/// Threading: call on the transport's io_context thread.

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>

#include "llm/http_transport.h"
#include "llm/model_client.h"
#include "llm/settings.h"

namespace dmsd {

/// What goes into one `/v1/chat/completions` body.
struct OpenAiBodyParts {
    std::string_view model;
    std::string_view schemaName; ///< `json_schema.name` (made safe: [A-Za-z0-9_-], 1..64)
    std::string_view systemPrompt;
    std::string_view userPrompt;
    const std::vector<JpegImage>* images = nullptr; ///< may be null: no images
    const boost::json::value* format = nullptr;     ///< JSON schema; null: no response_format
    const ModelOptions* options = nullptr;
    std::optional<int> maxTokens; ///< overrides options->numPredict (the warm-up asks for 1)
};

/// `{"model","messages":[system,user parts],"stream":false,"max_tokens",
/// "temperature","top_p"[,"seed"][,"response_format"]}`, in one buffer.
std::string buildOpenAiChatBody(const OpenAiBodyParts& parts);

class OpenAiClient final : public ModelClient, public std::enable_shared_from_this<OpenAiClient> {
public:
    /// A client for \a model over \a transport (shared with other clients of the server).
    static std::shared_ptr<OpenAiClient> create(HttpTransportPtr transport, ModelSettings model);
    OpenAiClient(const OpenAiClient&) = delete;
    OpenAiClient& operator=(const OpenAiClient&) = delete;

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
    int numPredict() const { return model_.options.numPredict; }

    /// An HTTP status and its body as an OpenAI-compatible server means them
    /// (404: model missing; 401/403: the key; 503: busy; 5xx: once).
    std::pair<AnalysisError, Retry> statusError(int status, std::string_view body,
                                                std::string_view what) const;

private:
    OpenAiClient(HttpTransportPtr transport, ModelSettings model);
    boost::asio::awaitable<ChatOutcome> ask(std::shared_ptr<const std::string> body,
                                            std::string what,
                                            std::chrono::steady_clock::time_point deadline,
                                            std::string deadlineText = {},
                                            bool judgesTruncation = true);

    HttpTransportPtr transport_;
    ModelSettings model_;
    std::string url_;
};

} // namespace dmsd
