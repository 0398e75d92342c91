#pragma once

/// \file
/// The JSON bodies sent to Ollama's `/api/chat` (docs/interfaces.md section 7), built
/// in one buffer. Each JPEG frame's base64 was made once by the frame path
/// (JpegImage::base64) and is copied in; a frame without it is encoded here.

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "base/base64.h"
#include "llm/settings.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// Ollama `options` as sent with every request (identical across requests so
/// the server never reloads the model because of them).
boost::json::object optionsJson(const ModelOptions& options);

/// `keep_alive` as Ollama understands it: a Go duration string ("300s",
/// "1500ms"), or -1 (forever) for a negative duration.
boost::json::value keepAliveJson(Millis keepAlive);

/// What goes into one `/api/chat` body.
struct ChatBodyParts {
    std::string_view model;
    std::string_view systemPrompt;
    std::string_view userPrompt;
    const std::vector<JpegImage>* images = nullptr; ///< may be null: no images
    bool stream = false;
    const boost::json::value* format = nullptr; ///< JSON schema; null: no `format`
    const boost::json::object* options = nullptr;
    const boost::json::value* keepAlive = nullptr;
};

/// `{"model","messages":[system,user+images],"stream","format","options","keep_alive","think":false}`.
std::string buildChatBody(const ChatBodyParts& parts);

/// A load-only request (`messages: []`) that warms the model with the same
/// `options` as the real requests, so the first real request finds it loaded.
std::string buildWarmUpBody(std::string_view model, const boost::json::object& options,
                            const boost::json::value& keepAlive);

} // namespace dmsd
