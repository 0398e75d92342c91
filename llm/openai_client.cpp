#include "llm/openai_client.h"

#include <algorithm>

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "base/base64.h"
#include "base/json.h"
#include "base/redact.h"

namespace dmsd {

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

milliseconds msSince(Clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

AnalysisError makeError(AnalysisError::Kind kind, std::string message, int status = 0) {
    return AnalysisError{kind, status, std::move(message)};
}

/// The server's error text: {"error":{"message":...}} (OpenAI, vLLM,
/// llama.cpp), {"error":"..."} (Ollama's /v1), {"detail":...} (some
/// FastAPI servers), else the body itself, shortened.
std::string errorText(std::string_view body) {
    return serverErrorText(body, {"error", "detail"});
}

/// `json_schema.name` must match ^[a-zA-Z0-9_-]{1,64}$ (OpenAI; vLLM and
/// llama.cpp accept more, none accept less).
std::string schemaNameOf(std::string_view label) {
    std::string name;
    for (char c : label) {
        const auto u = static_cast<unsigned char>(c);
        name += (std::isalnum(u) != 0 || c == '_' || c == '-') ? c : '_';
        if (name.size() == 64) {
            break;
        }
    }
    return name.empty() ? std::string("answer") : name;
}

std::int64_t countOf(const json::object& o, std::string_view key) {
    const json::value* n = o.if_contains(key);
    if (n == nullptr || !n->is_number()) {
        return 0;
    }
    boost::system::error_code ec;
    const auto value = n->to_number<std::int64_t>(ec);
    return ec ? 0 : value;
}

/// Reads one `/v1/chat/completions` answer (one JSON body).
class CompletionReader final : public ResponseReader {
public:
    CompletionReader(const OpenAiClient& client, std::string what, bool judgesTruncation)
        : client_(client), what_(std::move(what)), judgesTruncation_(judgesTruncation) {}

    std::optional<std::pair<AnalysisError, Retry>> judge(const HttpExchange& x) override {
        using K = AnalysisError::Kind;
        if (x.status < 200 || x.status >= 300) {
            return client_.statusError(x.status, x.body, what_);
        }
        auto malformed = [&](std::string_view why) {
            return std::pair{makeError(K::MalformedBody, fmt::format("{}: the answer from {} {}",
                                                                     what_, client_.url(), why)),
                             Retry::No};
        };
        boost::system::error_code ec;
        json::value v = json::parse(x.body, ec);
        if (ec || !v.is_object()) {
            return malformed("is not a JSON object");
        }
        const json::object& o = v.get_object();
        if (o.contains("error")) {
            // An error under HTTP 200 (a proxy, or a server reporting a failed generation).
            AnalysisError e =
                makeError(K::ServerError, fmt::format("{}: {} reported: {}", what_, client_.url(),
                                                      errorText(x.body)));
            const Retry retry = isSingleImageError(e) ? Retry::No : Retry::Once;
            return std::pair{std::move(e), retry};
        }
        const json::value* choices = o.if_contains("choices");
        if (choices == nullptr || !choices->is_array() || choices->get_array().empty() ||
            !choices->get_array()[0].is_object()) {
            return malformed("has no \"choices\"");
        }
        const json::object& choice = choices->get_array()[0].get_object();
        const json::value* message = choice.if_contains("message");
        if (message == nullptr || !message->is_object()) {
            return malformed("has no \"choices[0].message\"");
        }
        if (const json::value* c = message->get_object().if_contains("content");
            c != nullptr && c->is_string()) {
            result_.content = std::string(c->get_string());
        } else if (c != nullptr && !c->is_null()) {
            return malformed("has a \"content\" that is not text");
        }
        if (const json::value* r = choice.if_contains("finish_reason");
            r != nullptr && r->is_string()) {
            result_.doneReason = std::string(r->get_string());
        }
        if (const json::value* u = o.if_contains("usage"); u != nullptr && u->is_object()) {
            result_.promptTokens = countOf(u->get_object(), "prompt_tokens");
            result_.evalTokens = countOf(u->get_object(), "completion_tokens");
        }
        // Not compared: the `model` an OpenAI-compatible server names in its
        // answer (llama.cpp names its file or alias, vLLM its served name).
        if (judgesTruncation_ && result_.doneReason == "length") {
            client_.transport()->countTruncated();
            return std::pair{
                makeError(K::InvalidAnswer,
                          fmt::format("{}: the answer from {} was cut at max_tokens "
                                      "(llm.options.num_predict, {} tokens; finish_reason "
                                      "\"length\"): not used",
                                      what_, client_.url(), client_.numPredict())),
                Retry::No};
        }
        return std::nullopt;
    }

    ChatResult& result() { return result_; }

private:
    const OpenAiClient& client_;
    std::string what_;
    bool judgesTruncation_;
    ChatResult result_;
};

class PlainReader final : public ResponseReader {
public:
    std::optional<std::pair<AnalysisError, Retry>> judge(const HttpExchange&) override {
        return std::nullopt;
    }
};

} // namespace

std::string buildOpenAiChatBody(const OpenAiBodyParts& parts) {
    static constexpr std::string_view kDataUrl = "data:image/jpeg;base64,";
    std::size_t imageBytes = 0;
    if (parts.images != nullptr) {
        for (const JpegImage& image : *parts.images) {
            imageBytes +=
                (image.base64 ? image.base64->size()
                              : base64EncodedSize(image.bytes ? image.bytes->size() : 0)) +
                kDataUrl.size() + 64;
        }
    }
    std::string body;
    body.reserve(imageBytes + parts.systemPrompt.size() + parts.userPrompt.size() + 2048);
    body += R"({"model":)";
    appendJsonString(body, parts.model);
    body += R"(,"messages":[{"role":"system","content":)";
    appendJsonString(body, parts.systemPrompt);
    body += R"(},{"role":"user","content":[{"type":"text","text":)";
    appendJsonString(body, parts.userPrompt);
    body += '}';
    if (parts.images != nullptr) {
        for (const JpegImage& image : *parts.images) {
            body += R"(,{"type":"image_url","image_url":{"url":")";
            body += kDataUrl;
            if (image.base64) {
                body += *image.base64; // encoded once per frame, shared by every request
            } else if (image.bytes) {
                appendBase64(body, image.bytes->data(), image.bytes->size());
            }
            body += R"("}})";
        }
    }
    body += R"(]}],"stream":false)";
    if (parts.options != nullptr) {
        json::object o;
        o["max_tokens"] = parts.maxTokens.value_or(parts.options->numPredict);
        o["temperature"] = parts.options->temperature;
        o["top_p"] = parts.options->topP;
        if (parts.options->seed) {
            o["seed"] = *parts.options->seed;
        }
        const std::string options = writeJson(o);
        body += ',';
        body.append(options, 1, options.size() - 2); // the members, without the braces
    }
    if (parts.format != nullptr) {
        body += R"(,"response_format":{"type":"json_schema","json_schema":{"name":)";
        appendJsonString(body, schemaNameOf(parts.schemaName));
        body += R"(,"schema":)";
        body += writeJson(*parts.format);
        body += R"(,"strict":true}})";
    }
    body += '}';
    return body;
}

OpenAiClient::OpenAiClient(HttpTransportPtr transport, ModelSettings model)
    : transport_(std::move(transport)), model_(std::move(model)), url_(transport_->settings().url) {
}

std::shared_ptr<OpenAiClient> OpenAiClient::create(HttpTransportPtr transport,
                                                   ModelSettings model) {
    return std::shared_ptr<OpenAiClient>(new OpenAiClient(std::move(transport), std::move(model)));
}

std::pair<AnalysisError, Retry> OpenAiClient::statusError(int status, std::string_view body,
                                                          std::string_view what) const {
    using K = AnalysisError::Kind;
    const std::string& key = transport_->settings().apiKey;
    // A server may quote the header it refused: the key never reaches a message.
    const std::string text = redactSecrets(errorText(body), std::span(&key, 1));
    const std::string said = text.empty() ? std::string() : fmt::format(": {}", text);
    if (status == 401 || status == 403) {
        return {makeError(K::HttpStatus,
                          fmt::format("{}: {} refused the request (HTTP {}{}): {}", what, url_,
                                      status, said,
                                      transport_->settings().apiKeyFile.empty()
                                          ? std::string("it wants an API key; set llm.api_key_file")
                                          : fmt::format("check the key in llm.api_key_file \"{}\"",
                                                        transport_->settings().apiKeyFile)),
                          status),
                Retry::No};
    }
    if (status == 404) {
        return {makeError(K::HttpStatus,
                          fmt::format("{}: model '{}' is not available on {} (HTTP 404{}); "
                                      "GET {}/v1/models lists the models it serves",
                                      what, model_.name, url_, said, url_),
                          status),
                Retry::No};
    }
    AnalysisError e = makeError(
        K::HttpStatus, fmt::format("{}: {} answered HTTP {}{}", what, url_, status, said), status);
    if (status == 503 || status == 429) {
        return {e, Retry::Backoff};
    }
    if (status >= 500) {
        return {e, isSingleImageError(e) ? Retry::No : Retry::Once};
    }
    return {e, Retry::No};
}

asio::awaitable<ChatOutcome> OpenAiClient::ask(std::shared_ptr<const std::string> body,
                                               std::string what, Clock::time_point deadline,
                                               std::string deadlineText, bool judgesTruncation) {
    const Clock::time_point start = Clock::now();
    HttpCall call;
    call.path = "/v1/chat/completions";
    call.body = std::move(body);
    call.what = std::move(what);
    call.deadline = deadline;
    call.deadlineText = std::move(deadlineText);
    HttpTransport::ReaderFactory reader = [this, label = call.what, judgesTruncation] {
        return std::make_unique<CompletionReader>(*this, label, judgesTruncation);
    };
    HttpCallResult sent = co_await transport_->call(std::move(call), std::move(reader));
    co_return chatOutcome<CompletionReader>(std::move(sent), msSince(start));
}

asio::awaitable<ChatOutcome> OpenAiClient::chat(ChatRequest request) {
    auto self = shared_from_this(); // the coroutine keeps the client (and its transport) alive
    // No streaming: the answer is one JSON object either way, and a streamed
    // one (server-sent events) would buy only the time to first token.
    OpenAiBodyParts parts;
    parts.model = model_.name;
    parts.schemaName = request.label;
    parts.systemPrompt = request.systemPrompt;
    parts.userPrompt = request.userPrompt;
    parts.images = &request.images;
    parts.format = request.format;
    parts.options = &model_.options;
    auto body = std::make_shared<const std::string>(buildOpenAiChatBody(parts));
    request.images.clear(); // the body holds them now; release the JPEG references early
    const auto deadline = Clock::now() + transport_->settings().timeout;
    std::string what = request.label.empty() ? std::string("chat") : request.label;
    ChatOutcome out = co_await ask(std::move(body), std::move(what), deadline);
    co_return out;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<HealthReport> OpenAiClient::checkHealth() {
    auto self = shared_from_this();
    HealthReport report;
    const auto deadline =
        Clock::now() + std::max(transport_->settings().timeout, milliseconds(1000));
    HttpCall call;
    call.verb = http::verb::get;
    call.path = "/v1/models";
    call.what = "/v1/models";
    call.deadline = deadline;
    call.takesSlot = false;
    call.retries = false;
    HttpCallResult sent =
        co_await transport_->call(std::move(call), [] { return std::make_unique<PlainReader>(); });
    if (sent.error) {
        report.problem = fmt::format("cannot reach the model server at {} ({}): start it or "
                                     "correct llm.url",
                                     url_, sent.error->message);
        co_return report;
    }
    const int status = sent.exchange.status;
    if (status == 401 || status == 403) {
        report.serverReachable = true;
        report.problem = statusError(status, sent.exchange.body, "/v1/models").first.message;
        co_return report;
    }
    if (status != 200) {
        report.problem = fmt::format("{}/v1/models answered HTTP {} ({}): is llm.url an "
                                     "OpenAI-compatible server (llm.api: openai)?",
                                     url_, status, errorText(sent.exchange.body));
        co_return report;
    }
    report.serverReachable = true;
    boost::system::error_code ec;
    json::value v = json::parse(sent.exchange.body, ec);
    const json::value* data = (!ec && v.is_object()) ? v.get_object().if_contains("data") : nullptr;
    if (data == nullptr || !data->is_array()) {
        report.problem = fmt::format("{}/v1/models did not answer a model list", url_);
        co_return report;
    }
    // `x` and `x:latest` are one model on Ollama's /v1; other servers name
    // their models exactly as they are asked for.
    auto same = [](std::string_view a, std::string_view b) {
        auto canonical = [](std::string_view n) {
            std::string out(n);
            if (out.find(':') == std::string::npos) {
                out += ":latest";
            }
            return out;
        };
        return a == b || canonical(a) == canonical(b);
    };
    std::string listed;
    for (const json::value& m : data->get_array()) {
        const json::value* id = m.is_object() ? m.get_object().if_contains("id") : nullptr;
        if (id == nullptr || !id->is_string()) {
            continue;
        }
        const std::string_view name = id->get_string();
        if (same(name, model_.name)) {
            report.modelPresent = true;
        }
        if (listed.size() < 300) {
            listed += listed.empty() ? std::string(name) : fmt::format(", {}", name);
        }
    }
    if (!report.modelPresent) {
        report.problem = fmt::format("model '{}' is not available on {} (it serves: {}): set "
                                     "llm.model to one of them, or load it on the server",
                                     model_.name, url_, listed.empty() ? "none" : listed);
        co_return report;
    }
    // /v1/models does not say whether a model sees images: the first answer
    // (or its error) will.
    report.vision = true;
    report.capabilitiesKnown = false;
    co_return report;
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

asio::awaitable<std::optional<AnalysisError>> OpenAiClient::warmUp() {
    auto self = shared_from_this();
    // The API has no load-only request: a one-token question loads the model
    // (on servers that load on demand) with the options of every request.
    OpenAiBodyParts parts;
    parts.model = model_.name;
    parts.userPrompt = "Answer OK.";
    parts.options = &model_.options;
    parts.maxTokens = 1;
    auto body = std::make_shared<const std::string>(buildOpenAiChatBody(parts));
    const milliseconds budget = std::max(transport_->settings().timeout, milliseconds(120000));
    const auto deadline = Clock::now() + budget;
    std::string what = "warm-up";
    ChatOutcome out = co_await ask(std::move(body), std::move(what), deadline,
                                   fmt::format("the warm-up deadline ({} ms: the larger of "
                                               "llm.timeout and 120 s)",
                                               budget.count()),
                                   false); // one token asked: "length" is the expected end
    if (out.error) {
        co_return out.error;
    }
    co_return std::nullopt;
}

asio::awaitable<PromptMeasurement> OpenAiClient::measurePrompt(std::string system, std::string user,
                                                               JpegImage image) {
    auto self = shared_from_this();
    PromptMeasurement measured;
    std::vector<JpegImage> images{std::move(image)};
    const std::string withImageSystem = "Measurement 1. " + system;
    const std::string textSystem = "Measurement 2. " + system;
    OpenAiBodyParts parts;
    parts.model = model_.name;
    parts.userPrompt = user;
    parts.options = &model_.options;
    parts.maxTokens = 1; // only usage.prompt_tokens is wanted
    parts.systemPrompt = withImageSystem;
    parts.images = &images;
    auto withImage = std::make_shared<const std::string>(buildOpenAiChatBody(parts));
    parts.systemPrompt = textSystem;
    parts.images = nullptr;
    auto textOnly = std::make_shared<const std::string>(buildOpenAiChatBody(parts));
    const milliseconds budget = std::max(transport_->settings().timeout, milliseconds(120000));
    std::string what = "context budget (one image)";
    ChatOutcome first =
        co_await ask(std::move(withImage), std::move(what), Clock::now() + budget, {}, false);
    if (first.error) {
        measured.error = std::move(first.error);
        co_return measured;
    }
    what = "context budget (text)";
    ChatOutcome second =
        co_await ask(std::move(textOnly), std::move(what), Clock::now() + budget, {}, false);
    if (second.error) {
        measured.error = std::move(second.error);
        co_return measured;
    }
    takePromptCounts(measured, *first.result, *second.result, model_.context.size, url_,
                     "raise the server's context (and llm.context.size)");
    co_return measured;
}

void OpenAiClient::cancelAll() {
    transport_->cancelAll();
}

ClientStats OpenAiClient::stats() const {
    return transport_->stats();
}

int OpenAiClient::maxInFlight() const {
    return transport_->settings().maxInFlight;
}

} // namespace dmsd
