#pragma once

/// \file
/// The one place a model server API is chosen: a client of the configured
/// model over a transport to the configured server. Adding a backend (another
/// API) is one class implementing ModelClient and one branch here.

#include <boost/asio/any_io_executor.hpp>

#include "llm/http_transport.h"
#include "llm/model_client.h"
#include "llm/settings.h"

namespace dmsd {

/// A client asking \a model over \a transport (which several clients may share).
ModelClientPtr createModelClient(HttpTransportPtr transport, const ModelSettings& model);

/// A client with a transport of its own, for \a settings.
ModelClientPtr createModelClient(boost::asio::any_io_executor executor, const LlmSettings& settings,
                                 TransportOptions options = {});

} // namespace dmsd
