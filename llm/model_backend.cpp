#include "llm/model_backend.h"

#include "llm/ollama_client.h"
#include "llm/openai_client.h"
#include "llm/server_pool.h"

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

ModelClientPtr createModelClient(boost::asio::any_io_executor executor,
                                 const std::vector<HttpTransportPtr>& transports,
                                 const ModelSettings& model, std::chrono::milliseconds timeout) {
    if (transports.size() == 1) {
        return createModelClient(transports.front(), model);
    }
    std::vector<ModelClientPtr> members;
    members.reserve(transports.size());
    for (const HttpTransportPtr& transport : transports) {
        members.push_back(createModelClient(transport, model));
    }
    PoolOptions options;
    options.timeout = timeout;
    return ServerPool::create(std::move(executor), std::move(members), options);
}

std::vector<HttpTransportPtr> createTransports(const boost::asio::any_io_executor& executor,
                                               const ServerSettings& server,
                                               TransportOptions options) {
    std::vector<HttpTransportPtr> transports;
    const std::size_t count = serverUrls(server).size();
    transports.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
        transports.push_back(HttpTransport::create(executor, serverSettingsAt(server, i), options));
    }
    return transports;
}

ModelClientPtr createModelClient(const boost::asio::any_io_executor& executor,
                                 const LlmSettings& settings, TransportOptions options) {
    return createModelClient(executor, createTransports(executor, settings.server, options),
                             settings.model, settings.server.timeout);
}

} // namespace dmsd
