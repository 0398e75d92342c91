#include "llm/model_backend.h"

#include "llm/ollama_client.h"
#include "llm/openai_client.h"

namespace dmsd {

ModelClientPtr createModelClient(HttpTransportPtr transport, const ModelSettings& model) {
    switch (transport->settings().api) {
    case LlmApi::OpenAi:
        return OpenAiClient::create(std::move(transport), model);
    case LlmApi::Ollama:
        break;
    }
    return OllamaClient::create(std::move(transport), model);
}

ModelClientPtr createModelClient(boost::asio::any_io_executor executor, const LlmSettings& settings,
                                 TransportOptions options) {
    return createModelClient(HttpTransport::create(std::move(executor), settings.server, options),
                             settings.model);
}

} // namespace dmsd
