#pragma once

/// \file
/// The one place a model server API is chosen: a client of the configured
/// model over a transport to the configured server. Adding a backend (another
/// API) is one class implementing ModelClient and one branch here.

#include <chrono>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

#include "llm/http_transport.h"
#include "llm/model_client.h"
#include "llm/settings.h"

namespace dmsd {

/// A client asking \a model over \a transport (which several clients may share).
ModelClientPtr createModelClient(HttpTransportPtr transport, const ModelSettings& model);

/// A client asking \a model over \a transports, one per server of `llm.url`:
/// the one server's client, or a ServerPool (llm/server_pool.h) over a
/// client per server; \a timeout is the request's deadline across servers.
ModelClientPtr createModelClient(boost::asio::any_io_executor executor,
                                 const std::vector<HttpTransportPtr>& transports,
                                 const ModelSettings& model, std::chrono::milliseconds timeout);

/// A transport per server of \a server (`llm.url`, one or a list).
std::vector<HttpTransportPtr> createTransports(const boost::asio::any_io_executor& executor,
                                               const ServerSettings& server,
                                               TransportOptions options = {});

/// A client with transports of its own, for \a settings.
ModelClientPtr createModelClient(const boost::asio::any_io_executor& executor,
                                 const LlmSettings& settings, TransportOptions options = {});

} // namespace dmsd
