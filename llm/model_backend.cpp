#include "llm/model_backend.h"

#include "llm/ollama_client.h"

namespace dmsd {

ModelClientPtr createModelClient(HttpTransportPtr transport, const ModelSettings& model) {
    return OllamaClient::create(std::move(transport), model);
}

ModelClientPtr createModelClient(boost::asio::any_io_executor executor, const LlmSettings& settings,
                                 TransportOptions options) {
    return createModelClient(HttpTransport::create(std::move(executor), settings.server, options),
                             settings.model);
}

} // namespace dmsd
