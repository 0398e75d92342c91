#include "llm/ollama_client.h"

#include <algorithm>

#include <boost/asio/this_coro.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "llm/ollama_body.h"

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

std::string toLower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// Ollama's error text from a body: {"error":"..."} (possibly nested JSON from
/// llama-server), else the text itself, shortened.
std::string errorText(std::string_view body) {
    return serverErrorText(body, {"error"});
}

AnalysisError makeError(AnalysisError::Kind kind, std::string message, int status = 0) {
    return AnalysisError{kind, status, std::move(message)};
}

/// A model name as Ollama compares them: case-insensitive, `x` is `x:latest`.
std::string canonicalModel(std::string_view name) {
    std::string out = toLower(name);
    if (out.find(':') == std::string::npos) {
        out += ":latest";
    }
    return out;
}

/// Reads one `/api/chat` answer: NDJSON lines (streamed) or one JSON object.
class ChatReader final : public ResponseReader {
public:
    ChatReader(const OllamaClient& client, std::string what, Clock::time_point start,
               bool streaming, bool judgesTruncation)
        : client_(client), what_(std::move(what)), start_(start), streaming_(streaming),
          judgesTruncation_(judgesTruncation) {}

    bool readsLines() const override { return true; }

    bool line(std::string_view line) override {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
            line.remove_suffix(1);
        }
        if (line.empty()) {
            return true;
        }
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec || !v.is_object()) {
            badLine_ = std::string(line.substr(0, 120));
            return false;
        }
        const json::object& o = v.get_object();
        if (const json::value* e = o.if_contains("error")) {
            serverError_ = e->is_string() ? std::string(e->get_string()) : writeJson(*e);
            return false;
        }
        // An answer from another model than the one asked (a server or proxy
        // mixing up requests, a model swapped behind the name) was not made by
        // the prompts and schema dmsd tuned for its model: not trusted.
        if (const json::value* m = o.if_contains("model"); m != nullptr) {
            const std::string named = m->is_string() ? std::string(m->get_string()) : writeJson(*m);
            if (canonicalModel(named) != canonicalModel(client_.model())) {
                otherModel_ = named.substr(0, 120);
                return false;
            }
        }
        if (const json::value* m = o.if_contains("message"); m != nullptr && m->is_object()) {
            if (const json::value* c = m->get_object().if_contains("content");
                c != nullptr && c->is_string() && !c->get_string().empty()) {
                if (streaming_ && !result_.firstToken) {
                    result_.firstToken = msSince(start_);
                }
                result_.content.append(c->get_string().data(), c->get_string().size());
            }
        }
        if (const json::value* d = o.if_contains("done");
            d != nullptr && d->is_bool() && d->get_bool()) {
            done_ = true;
            auto count = [&](std::string_view key) -> std::int64_t {
                const json::value* n = o.if_contains(key);
                if (n == nullptr || !n->is_number()) {
                    return 0;
                }
                boost::system::error_code nec;
                const auto value = n->to_number<std::int64_t>(nec);
                return nec ? 0 : value;
            };
            result_.promptTokens = count("prompt_eval_count");
            result_.evalTokens = count("eval_count");
            if (const json::value* r = o.if_contains("done_reason");
                r != nullptr && r->is_string()) {
                result_.doneReason = std::string(r->get_string());
            }
        }
        return true;
    }

    std::optional<std::pair<AnalysisError, Retry>> judge(const HttpExchange& x) override {
        using K = AnalysisError::Kind;
        if (x.status < 200 || x.status >= 300) {
            return client_.statusError(x.status, x.body, what_);
        }
        if (serverError_) {
            // An {"error"} line under HTTP 200: after output started (or a server before 0.12.6).
            AnalysisError e = makeError(K::ServerError, fmt::format("{}: {} reported: {}", what_,
                                                                    client_.url(), *serverError_));
            const Retry retry = isSingleImageError(e) ? Retry::No : Retry::Once;
            return std::pair{std::move(e), retry};
        }
        if (otherModel_) {
            return std::pair{
                makeError(K::InvalidAnswer,
                          fmt::format("{}: {} answered as model \"{}\", not the "
                                      "model asked (\"{}\"); the answer is not "
                                      "trusted",
                                      what_, client_.url(), *otherModel_, client_.model())),
                Retry::No};
        }
        if (badLine_) {
            return std::pair{makeError(K::MalformedBody,
                                       fmt::format("{}: {} sent a line that is not JSON: \"{}\"",
                                                   what_, client_.url(), *badLine_)),
                             Retry::No};
        }
        if (!done_) {
            return std::pair{
                makeError(K::MalformedBody, fmt::format("{}: the answer from {} ended without "
                                                        "\"done\":true (truncated)",
                                                        what_, client_.url())),
                Retry::Once};
        }
        if (auto why = judgesTruncation_ ? client_.truncation(result_) : std::nullopt) {
            client_.transport()->countTruncated();
            return std::pair{makeError(K::InvalidAnswer, fmt::format("{}: {}", what_, *why)),
                             Retry::No};
        }
        return std::nullopt;
    }

    ChatResult& result() { return result_; }

private:
    const OllamaClient& client_;
    std::string what_;
    Clock::time_point start_;
    bool streaming_;
    bool judgesTruncation_;
    ChatResult result_;
    bool done_ = false;
    std::optional<std::string> serverError_;
    std::optional<std::string> badLine_;
    std::optional<std::string> otherModel_;
};

/// Takes any complete response as it is (health requests judge the status themselves).
class PlainReader final : public ResponseReader {
public:
    std::optional<std::pair<AnalysisError, Retry>> judge(const HttpExchange&) override {
        return std::nullopt;
    }
};

} // namespace

bool isSingleImageError(const AnalysisError& error) {
    if (error.kind != AnalysisError::Kind::HttpStatus &&
        error.kind != AnalysisError::Kind::ServerError) {
        return false;
    }
    const std::string m = toLower(error.message);
    return m.find("one image") != std::string::npos || m.find("single image") != std::string::npos;
}

OllamaClient::OllamaClient(HttpTransportPtr transport, ModelSettings model)
    : transport_(std::move(transport)), model_(std::move(model)), url_(transport_->settings().url),
      optionsJson_(dmsd::optionsJson(model_.options)), keepAlive_(keepAliveJson(model_.keepAlive)) {
}

std::shared_ptr<OllamaClient> OllamaClient::create(HttpTransportPtr transport,
                                                   ModelSettings model) {
    return std::shared_ptr<OllamaClient>(new OllamaClient(std::move(transport), std::move(model)));
}

std::shared_ptr<OllamaClient> OllamaClient::create(asio::any_io_executor executor,
                                                   const LlmSettings& settings,
                                                   TransportOptions options) {
    return create(HttpTransport::create(std::move(executor), settings.server, options),
                  settings.model);
}

std::pair<AnalysisError, Retry> OllamaClient::statusError(int status, std::string_view body,
                                                          std::string_view what) const {
    using K = AnalysisError::Kind;
    const std::string& key = transport_->settings().apiKey;
    // A proxy may quote the header it refused: the key never reaches a message.
    const std::string text = redactSecrets(errorText(body), std::span(&key, 1));
    const std::string said = text.empty() ? std::string() : fmt::format(": {}", text);
    if (status == 401 || status == 403) {
        // Ollama itself wants no key; a proxy in front of it (llm.url with a
        // path prefix, https) does. Asking again with the same key is no use.
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
                          fmt::format("{}: model '{}' is not available on {}: run `ollama "
                                      "pull {}` (HTTP 404{})",
                                      what, model_.name, url_, model_.name, said),
                          status),
                Retry::No};
    }
    AnalysisError e = makeError(
        K::HttpStatus, fmt::format("{}: {} answered HTTP {}{}", what, url_, status, said), status);
    if (status == 503) {
        return {e, Retry::Backoff};
    }
    if (status >= 500) {
        return {e, isSingleImageError(e) ? Retry::No : Retry::Once};
    }
    return {e, Retry::No};
}

std::optional<std::string> OllamaClient::truncation(const ChatResult& result) const {
    if (result.doneReason == "length") {
        return fmt::format("the answer from {} was cut at llm.options.num_predict ({} tokens; "
                           "done_reason \"length\"): not used",
                           url_, model_.options.numPredict);
    }
    if (result.promptTokens >= model_.options.numCtx) {
        return fmt::format("the prompt did not fit the context: {} reports {} prompt tokens, "
                           "llm.options.num_ctx is {}, so the start of the prompt (the "
                           "instructions, the first frames) was cut: not used",
                           url_, result.promptTokens, model_.options.numCtx);
    }
    return std::nullopt;
}

asio::awaitable<ChatOutcome> OllamaClient::ask(std::shared_ptr<const std::string> body,
                                               std::string what, Clock::time_point deadline,
                                               bool streaming, std::string deadlineText,
                                               bool judgesTruncation) {
    const Clock::time_point start = Clock::now();
    HttpCall call;
    call.path = "/api/chat";
    call.body = std::move(body);
    call.what = std::move(what);
    call.deadline = deadline;
    call.deadlineText = std::move(deadlineText);
    HttpTransport::ReaderFactory reader = [this, label = call.what, start, streaming,
                                           judgesTruncation] {
        return std::make_unique<ChatReader>(*this, label, start, streaming, judgesTruncation);
    };
    HttpCallResult sent = co_await transport_->call(std::move(call), std::move(reader));
    co_return chatOutcome<ChatReader>(std::move(sent), msSince(start));
}

asio::awaitable<ChatOutcome> OllamaClient::chat(ChatRequest request) {
    auto self = shared_from_this(); // the coroutine keeps the client (and its transport) alive
    ChatBodyParts parts;
    parts.model = model_.name;
    parts.systemPrompt = request.systemPrompt;
    parts.userPrompt = request.userPrompt;
    parts.images = &request.images;
    parts.stream = request.stream;
    parts.format = request.format;
    parts.options = &optionsJson_;
    parts.keepAlive = &keepAlive_;
    auto body = std::make_shared<const std::string>(buildChatBody(parts));
    request.images.clear(); // the body holds them now; release the JPEG references early
    const auto deadline = Clock::now() + transport_->settings().timeout;
    // No temporaries inside the co_await expression: GCC 12 destroys some twice.
    std::string what = request.label.empty() ? std::string("chat") : request.label;
    ChatOutcome out = co_await ask(std::move(body), std::move(what), deadline, request.stream);
    co_return out;
}

asio::awaitable<OllamaClient::Plain> OllamaClient::plain(http::verb verb, std::string_view path,
                                                         std::shared_ptr<const std::string> body,
                                                         Clock::time_point deadline) {
    HttpCall call;
    call.verb = verb;
    call.path = std::string(path);
    call.body = std::move(body);
    call.what = std::string(path);
    call.deadline = deadline;
    call.takesSlot = false;
    call.retries = false;
    HttpCallResult sent =
        co_await transport_->call(std::move(call), [] { return std::make_unique<PlainReader>(); });
    Plain p;
    if (sent.error) {
        p.error = std::move(sent.error);
        co_return p;
    }
    p.status = sent.exchange.status;
    p.body = std::move(sent.exchange.body);
    co_return p;
}

// GCC 12 reports Asio's recycled coroutine frame (aligned_new, then the frame's
// sized operator delete) as a mismatched pair in this coroutine: a known false
// positive (GCC PR middle-end/109224), silenced here only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
asio::awaitable<HealthReport> OllamaClient::checkHealth() {
    auto self = shared_from_this();
    HealthReport report;
    const auto deadline =
        Clock::now() + std::max(transport_->settings().timeout, milliseconds(1000));
    const std::string& url = url_;
    const std::string& model = model_.name;

    // No temporaries inside co_await expressions: GCC 12 mishandles them.
    const std::shared_ptr<const std::string> noBody;
    Plain version = co_await plain(http::verb::get, "/api/version", noBody, deadline);
    if (version.error) {
        report.problem = fmt::format(
            "cannot reach the model server at {} ({}): start it (`ollama serve`, or `systemctl "
            "start ollama`) or correct llm.url",
            url, version.error->message);
        co_return report;
    }
    if (version.status == 401 || version.status == 403) {
        report.serverReachable = true;
        report.problem = statusError(version.status, version.body, "/api/version").first.message;
        co_return report;
    }
    if (version.status != 200) {
        report.problem =
            fmt::format("{}/api/version answered HTTP {} ({}): is llm.url an Ollama server?", url,
                        version.status, errorText(version.body));
        co_return report;
    }
    report.serverReachable = true;
    {
        boost::system::error_code ec;
        json::value v = json::parse(version.body, ec);
        if (!ec && v.is_object()) {
            if (const json::value* s = v.get_object().if_contains("version");
                s != nullptr && s->is_string()) {
                report.version = std::string(s->get_string());
            }
        }
    }

    // `x` and `x:latest` are the same model: ask for the name as configured,
    // then for its other spelling.
    std::vector<std::string> names{model};
    if (model.find(':') == std::string::npos) {
        names.push_back(model + ":latest");
    } else if (model.size() > 7 && model.ends_with(":latest")) {
        names.push_back(model.substr(0, model.size() - 7));
    }
    Plain show;
    for (const std::string& name : names) {
        json::object req;
        req["model"] = name;
        auto showBody = std::make_shared<const std::string>(writeJson(req));
        show = co_await plain(http::verb::post, "/api/show", showBody, deadline);
        if (show.error || show.status != 404) {
            break;
        }
    }
    if (show.error) {
        report.problem =
            fmt::format("cannot ask {} about model '{}': {}", url, model, show.error->message);
        co_return report;
    }
    if (show.status == 404) {
        report.problem = fmt::format("model '{}' is not available on {}: run `ollama pull {}`",
                                     model, url, model);
        co_return report;
    }
    if (show.status != 200) {
        report.problem = fmt::format("{}/api/show for model '{}' answered HTTP {}: {}", url, model,
                                     show.status, errorText(show.body));
        co_return report;
    }
    report.modelPresent = true;
    boost::system::error_code ec;
    json::value v = json::parse(show.body, ec);
    if (ec || !v.is_object()) {
        report.problem = fmt::format("{}/api/show for model '{}' did not answer JSON", url, model);
        co_return report;
    }
    const json::object& o = v.get_object();
    if (const json::value* caps = o.if_contains("capabilities");
        caps != nullptr && caps->is_array()) {
        report.capabilitiesKnown = true;
        for (const json::value& c : caps->get_array()) {
            if (c.is_string()) {
                report.capabilities.emplace_back(c.get_string());
            }
        }
        report.vision = std::find(report.capabilities.begin(), report.capabilities.end(),
                                  "vision") != report.capabilities.end();
    } else {
        // Servers before 0.6.4: a projector or a clip/mllama family means vision.
        report.vision = o.contains("projector_info");
        if (const json::value* d = o.if_contains("details"); d != nullptr && d->is_object()) {
            if (const json::value* f = d->get_object().if_contains("families");
                f != nullptr && f->is_array()) {
                for (const json::value& fam : f->get_array()) {
                    if (fam.is_string() &&
                        (fam.get_string() == "clip" || fam.get_string() == "mllama")) {
                        report.vision = true;
                    }
                }
            }
        }
    }
    if (!report.vision) {
        std::string caps;
        for (const auto& c : report.capabilities) {
            caps += caps.empty() ? c : ", " + c;
        }
        report.problem = fmt::format(
            "model '{}' on {} cannot see images (capabilities: {}): set llm.model to a vision "
            "model (e.g. llava, qwen2.5vl, gemma3)",
            model, url, report.capabilitiesKnown ? (caps.empty() ? "none" : caps) : "unknown");
    }
    co_return report;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

asio::awaitable<std::optional<AnalysisError>> OllamaClient::warmUp() {
    auto self = shared_from_this();
    auto body =
        std::make_shared<const std::string>(buildWarmUpBody(model_.name, optionsJson_, keepAlive_));
    // Loading a model takes seconds to minutes: allow more than one request's
    // timeout, and say which deadline passed (not llm.timeout).
    const milliseconds budget = std::max(transport_->settings().timeout, kWarmUpMinimum);
    const auto deadline = Clock::now() + budget;
    std::string what = "warm-up";
    ChatOutcome out = co_await ask(std::move(body), std::move(what), deadline, false,
                                   fmt::format("the warm-up deadline ({} ms: the larger of "
                                               "llm.timeout and {} s)",
                                               budget.count(), kWarmUpMinimum.count() / 1000));
    if (out.error) {
        co_return out.error;
    }
    // Loaded: is it wholly in GPU memory? A model partly on the CPU answers
    // several times slower, which the operator should hear of once per load.
    const auto psDeadline =
        Clock::now() + std::max(transport_->settings().timeout, milliseconds(1000));
    const std::shared_ptr<const std::string> noBody;
    Plain ps = co_await plain(http::verb::get, "/api/ps", noBody, psDeadline);
    placement_.reset();
    boost::system::error_code ec;
    json::value v = ps.error || ps.status != 200 ? json::value() : json::parse(ps.body, ec);
    const json::value* models =
        (!ec && v.is_object()) ? v.get_object().if_contains("models") : nullptr;
    if (models != nullptr && models->is_array()) {
        for (const json::value& m : models->get_array()) {
            const json::object* o = m.if_object();
            const json::value* name = o != nullptr ? o->if_contains("name") : nullptr;
            if (name == nullptr || !name->is_string() ||
                canonicalModel(name->get_string()) != canonicalModel(model_.name)) {
                continue;
            }
            auto count = [&](std::string_view key) -> std::int64_t {
                const json::value* n = o->if_contains(key);
                boost::system::error_code nec;
                const auto value =
                    (n != nullptr && n->is_number()) ? n->to_number<std::int64_t>(nec) : 0;
                return nec ? 0 : value;
            };
            placement_ = Placement{count("size"), count("size_vram")};
        }
    }
    if (placement_ && !placement_->wholeInGpu()) {
        log::warning("model '{}' on {} is not wholly in GPU memory: {} of {} MiB ({}%); the rest "
                     "runs on the CPU and answers are slower (a smaller model or quantisation, "
                     "a smaller llm.options.num_ctx, or llm.options.num_gpu)",
                     model_.name, url_, placement_->sizeVram >> 20, placement_->size >> 20,
                     placement_->size > 0 ? placement_->sizeVram * 100 / placement_->size : 0);
    }
    co_return std::nullopt;
}

asio::awaitable<PromptMeasurement> OllamaClient::measurePrompt(std::string system, std::string user,
                                                               JpegImage image) {
    auto self = shared_from_this();
    PromptMeasurement measured;
    // num_predict 1: only the prompt's count is wanted. num_predict is no
    // load option, so the model stays loaded as the warm-up left it.
    json::object options = optionsJson_;
    options["num_predict"] = 1;
    std::vector<JpegImage> images{std::move(image)};
    const std::string withImageSystem = "Measurement 1. " + system;
    const std::string textSystem = "Measurement 2. " + system;
    ChatBodyParts parts;
    parts.model = model_.name;
    parts.userPrompt = user;
    parts.options = &options;
    parts.keepAlive = &keepAlive_;
    parts.systemPrompt = withImageSystem;
    parts.images = &images;
    auto withImage = std::make_shared<const std::string>(buildChatBody(parts));
    parts.systemPrompt = textSystem;
    parts.images = nullptr;
    auto textOnly = std::make_shared<const std::string>(buildChatBody(parts));
    const milliseconds budget = std::max(transport_->settings().timeout, kWarmUpMinimum);
    std::string what = "context budget (one image)";
    ChatOutcome first =
        co_await ask(std::move(withImage), std::move(what), Clock::now() + budget, false, {},
                     false); // one token asked: "length" is the expected end
    if (first.error) {
        measured.error = std::move(first.error);
        co_return measured;
    }
    what = "context budget (text)";
    ChatOutcome second =
        co_await ask(std::move(textOnly), std::move(what), Clock::now() + budget, false, {}, false);
    if (second.error) {
        measured.error = std::move(second.error);
        co_return measured;
    }
    takePromptCounts(measured, *first.result, *second.result, model_.options.numCtx, url_,
                     "raise llm.options.num_ctx");
    co_return measured;
}

void OllamaClient::cancelAll() {
    transport_->cancelAll();
}

ClientStats OllamaClient::stats() const {
    ClientStats stats = transport_->stats();
    stats.placement = placement_;
    return stats;
}

int OllamaClient::maxInFlight() const {
    return transport_->settings().maxInFlight;
}

} // namespace dmsd
