#include "llm/ollama_body.h"

#include "base/json.h"

namespace dmsd {

namespace json = boost::json;

json::object optionsJson(const ModelOptions& options) {
    json::object o;
    o["temperature"] = options.temperature;
    o["top_k"] = options.topK;
    o["top_p"] = options.topP;
    o["num_ctx"] = options.numCtx;
    o["num_predict"] = options.numPredict;
    if (options.seed) {
        o["seed"] = *options.seed;
    }
    if (options.numGpu) {
        o["num_gpu"] = *options.numGpu;
    }
    if (options.numThread) {
        o["num_thread"] = *options.numThread;
    }
    return o;
}

json::value keepAliveJson(Millis keepAlive) {
    const auto ms = keepAlive.count();
    if (ms < 0) {
        return json::value(-1);
    }
    // Go's time.ParseDuration needs a unit; "300s" and "1500ms" both parse.
    if (ms % 1000 == 0) {
        return json::value(std::to_string(ms / 1000) + "s");
    }
    return json::value(std::to_string(ms) + "ms");
}

std::string buildChatBody(const ChatBodyParts& parts) {
    std::size_t imageBytes = 0;
    if (parts.images != nullptr) {
        for (const JpegImage& image : *parts.images) {
            imageBytes +=
                // + 8: quotes, comma, and the encoder's own headroom (base/base64.h)
                (image.base64 ? image.base64->size()
                              : base64EncodedSize(image.bytes ? image.bytes->size() : 0)) +
                8;
        }
    }
    std::string body;
    body.reserve(imageBytes + parts.systemPrompt.size() + parts.userPrompt.size() + 2048);
    body += R"({"model":)";
    appendJsonString(body, parts.model);
    body += R"(,"messages":[{"role":"system","content":)";
    appendJsonString(body, parts.systemPrompt);
    body += R"(},{"role":"user","content":)";
    appendJsonString(body, parts.userPrompt);
    if (parts.images != nullptr && !parts.images->empty()) {
        body += R"(,"images":[)";
        bool first = true;
        for (const JpegImage& image : *parts.images) {
            if (!first) {
                body += ',';
            }
            first = false;
            body += '"';
            if (image.base64) {
                body += *image.base64; // encoded once per frame, shared by every request
            } else if (image.bytes) {
                appendBase64(body, image.bytes->data(), image.bytes->size());
            }
            body += '"';
        }
        body += ']';
    }
    body += R"(}],"stream":)";
    body += parts.stream ? "true" : "false";
    if (parts.format != nullptr) {
        body += R"(,"format":)";
        body += writeJson(*parts.format);
    }
    if (parts.options != nullptr) {
        body += R"(,"options":)";
        body += writeJson(*parts.options);
    }
    if (parts.keepAlive != nullptr) {
        body += R"(,"keep_alive":)";
        body += writeJson(*parts.keepAlive);
    }
    body += R"(,"think":false})";
    return body;
}

std::string buildWarmUpBody(std::string_view model, const json::object& options,
                            const json::value& keepAlive) {
    json::object o;
    o["model"] = model;
    o["messages"] = json::array();
    o["options"] = options;
    o["keep_alive"] = keepAlive;
    o["stream"] = false;
    return writeJson(o);
}

} // namespace dmsd
