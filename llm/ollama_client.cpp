#include "llm/ollama_client.h"

#include <algorithm>
#include <deque>
#include <random>
#include <span>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "base/json.h"
#include "base/log.h"
#include "llm/request_body.h"
#include "llm/server_url.h"

namespace dmsd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

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
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (!ec && v.is_object()) {
        if (const json::value* e = v.get_object().if_contains("error")) {
            if (e->is_string()) {
                return std::string(e->get_string());
            }
            if (e->is_object()) {
                if (const json::value* m = e->get_object().if_contains("message");
                    m != nullptr && m->is_string()) {
                    return std::string(m->get_string());
                }
            }
            return writeJson(*e);
        }
    }
    std::string text(body.substr(0, 300));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.pop_back();
    }
    return text;
}

AnalysisError makeError(AnalysisError::Kind kind, std::string message, int status = 0) {
    return AnalysisError{kind, status, std::move(message)};
}

} // namespace

bool isSingleImageError(const AnalysisError& error) {
    if (error.kind != AnalysisError::Kind::HttpStatus &&
        error.kind != AnalysisError::Kind::ServerError) {
        return false;
    }
    const std::string m = toLower(error.message);
    return m.find("one image") != std::string::npos || m.find("single image") != std::string::npos;
}

// ---------------------------------------------------------------------------

struct OllamaClient::Impl {
    /// A keep-alive connection; counts itself in `open` while alive.
    struct Connection {
        Connection(asio::any_io_executor ex, std::size_t& open) : stream(ex), open_(open) {
            ++open_;
        }
        ~Connection() { --open_; }
        Connection(const Connection&) = delete;
        Connection& operator=(const Connection&) = delete;
        beast::tcp_stream stream;
        beast::flat_buffer buffer;
        std::size_t& open_;
    };
    using ConnectionPtr = std::unique_ptr<Connection>;

    struct Waiter {
        explicit Waiter(asio::any_io_executor ex) : timer(ex) {}
        asio::steady_timer timer;
        bool granted = false;
    };

    /// How a failed attempt may be retried.
    enum class Retry { No, Stale, Backoff, Once };

    /// One HTTP exchange's outcome, before it is read as an answer.
    struct Exchange {
        int status = 0;
        std::string body; ///< non-2xx, or 2xx when not read line by line
        boost::system::error_code ec;
        enum class Phase { Connect, Write, FirstByte, Body, Done } phase = Phase::Connect;
        bool reused = false;
        bool receivedAny = false;
        bool tooLarge = false;
        bool aborted = false; ///< a line handler said stop
        std::optional<Clock::time_point> firstBodyByte;
        Clock::time_point phaseDeadline{};
    };

    using LineHandler = std::function<bool(std::string_view)>;

    Impl(asio::any_io_executor ex, const LlmSettings& s, ClientOptions o)
        : executor(std::move(ex)), settings(s), options(o), rng(std::random_device{}()) {
        // The configuration checked llm.url with the same parser: a failure here
        // means a caller skipped it, and every request reports why instead.
        std::string problem;
        if (auto endpoint = parseServerUrl(s.server.url, &problem)) {
            host = endpoint->host;
            port = endpoint->port;
            hostHeader = endpoint->hostHeader;
        } else {
            unusable = fmt::format("llm.url: {}", problem);
        }
        settings.server.maxInFlight = std::max(1, s.server.maxInFlight);
        optionsJson = dmsd::optionsJson(s.model.options);
        keepAlive = keepAliveJson(s.model.keepAlive);
        allCancel = std::make_shared<CancelSignal>();
    }

    asio::any_io_executor executor;
    LlmSettings settings;
    ClientOptions options;
    std::string host, port, hostHeader, basePath;
    std::string unusable; ///< why no request can be made (a bad llm.url); empty: fine
    json::object optionsJson;
    json::value keepAlive;

    std::size_t open = 0;
    std::vector<ConnectionPtr> idle;
    std::size_t inFlight = 0;
    std::deque<std::shared_ptr<Waiter>> waiters;
    CancelSignalPtr allCancel;
    std::mt19937 rng;
    std::uint64_t attempts = 0;
    std::uint64_t retries = 0;
    std::uint64_t opened = 0;

    std::string target(std::string_view path) const { return basePath + std::string(path); }

    // --- slots (llm.max_in_flight), FIFO --------------------------------

    void releaseSlot() {
        while (!waiters.empty()) {
            auto w = waiters.front();
            waiters.pop_front();
            w->granted = true; // the slot passes on: inFlight stays
            w->timer.cancel();
            return;
        }
        --inFlight;
    }

    struct SlotGuard {
        Impl* impl = nullptr;
        SlotGuard() = default;
        explicit SlotGuard(Impl* i) : impl(i) {}
        SlotGuard(SlotGuard&& o) noexcept : impl(std::exchange(o.impl, nullptr)) {}
        SlotGuard& operator=(SlotGuard&& o) noexcept {
            release();
            impl = std::exchange(o.impl, nullptr);
            return *this;
        }
        ~SlotGuard() { release(); }
        void release() {
            if (impl != nullptr) {
                std::exchange(impl, nullptr)->releaseSlot();
            }
        }
    };

    asio::awaitable<std::optional<AnalysisError>>
    acquireSlot(Clock::time_point deadline, CancelSignal& cancel, SlotGuard& guard) {
        if (cancel.cancelled()) {
            co_return makeError(AnalysisError::Kind::Cancelled, "cancelled");
        }
        if (!unusable.empty()) {
            co_return makeError(AnalysisError::Kind::ConnectionFailed, unusable);
        }
        if (inFlight < static_cast<std::size_t>(settings.server.maxInFlight) && waiters.empty()) {
            ++inFlight;
            guard = SlotGuard(this);
            co_return std::nullopt;
        }
        if (waiters.size() >= options.maxQueued) {
            co_return makeError(AnalysisError::Kind::ConnectionFailed,
                                fmt::format("too many requests waiting for {} ({} queued, "
                                            "llm.max_in_flight {}); the server is too slow",
                                            settings.server.url, waiters.size(),
                                            settings.server.maxInFlight));
        }
        auto w = std::make_shared<Waiter>(executor);
        w->timer.expires_at(deadline);
        waiters.push_back(w);
        {
            auto reg = cancel.onCancel([w] { w->timer.cancel(); });
            co_await w->timer.async_wait(kUseTuple);
        }
        if (w->granted) {
            guard = SlotGuard(this);
            co_return std::nullopt;
        }
        waiters.erase(std::remove(waiters.begin(), waiters.end(), w), waiters.end());
        if (cancel.cancelled()) {
            co_return makeError(AnalysisError::Kind::Cancelled, "cancelled");
        }
        co_return makeError(AnalysisError::Kind::Timeout,
                            fmt::format("no free request slot for {} within llm.timeout ({} ms; "
                                        "llm.max_in_flight {})",
                                        settings.server.url, settings.server.timeout.count(),
                                        settings.server.maxInFlight));
    }

    // --- one HTTP exchange ---------------------------------------------

    ConnectionPtr takeIdle() {
        if (idle.empty()) {
            return nullptr;
        }
        ConnectionPtr c = std::move(idle.back());
        idle.pop_back();
        return c;
    }

    void keepIdle(ConnectionPtr c) {
        if (idle.size() < static_cast<std::size_t>(settings.server.maxInFlight)) {
            idle.push_back(std::move(c));
        }
    }

    static Clock::time_point earliest(Clock::time_point deadline, milliseconds limit) {
        if (limit.count() <= 0) {
            return deadline;
        }
        return std::min(deadline, Clock::now() + limit);
    }

    asio::awaitable<Exchange> roundTrip(http::verb verb, std::string target,
                                        std::shared_ptr<const std::string> body,
                                        Clock::time_point deadline, CancelSignal& cancel,
                                        const LineHandler* onLine, bool forceFresh) {
        Exchange x;
        if (cancel.cancelled()) {
            x.ec = asio::error::operation_aborted;
            co_return x;
        }
        ConnectionPtr conn = forceFresh ? nullptr : takeIdle();
        x.reused = conn != nullptr;
        CancelSignal::Registration reg;
        if (!conn) {
            x.phase = Exchange::Phase::Connect;
            conn = std::make_unique<Connection>(executor, open);
            ++opened;
            tcp::resolver resolver(executor);
            {
                auto rreg = cancel.onCancel([&resolver] { resolver.cancel(); });
                auto [rec, results] = co_await resolver.async_resolve(host, port, kUseTuple);
                if (rec || cancel.cancelled()) {
                    x.ec = cancel.cancelled() ? asio::error::operation_aborted : rec;
                    co_return x;
                }
                x.phaseDeadline = earliest(deadline, settings.server.connectTimeout);
                conn->stream.expires_at(x.phaseDeadline);
                reg = cancel.onCancel([c = conn.get()] { c->stream.close(); });
                auto [cec, ep] = co_await conn->stream.async_connect(results, kUseTuple);
                (void)ep;
                if (cec) {
                    x.ec = cec;
                    co_return x;
                }
            }
            boost::system::error_code ignored;
            conn->stream.socket().set_option(tcp::no_delay(true), ignored);
        } else {
            reg = cancel.onCancel([c = conn.get()] { c->stream.close(); });
        }

        x.phase = Exchange::Phase::Write;
        http::request<http::span_body<const char>> req{verb, target, 11};
        req.set(http::field::host, hostHeader);
        req.set(http::field::user_agent, "dmsd/"
                                         "0.1");
        req.set(http::field::accept, "application/x-ndjson, application/json");
        if (body) {
            req.set(http::field::content_type, "application/json");
            req.body() = std::span<const char>(body->data(), body->size());
        }
        req.prepare_payload();
        x.phaseDeadline = deadline;
        conn->stream.expires_at(deadline);
        {
            auto [wec, n] = co_await http::async_write(conn->stream, req, kUseTuple);
            (void)n;
            if (wec) {
                x.ec = wec;
                co_return x;
            }
        }

        x.phase = Exchange::Phase::FirstByte;
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(settings.server.maxResponseBytes);
        x.phaseDeadline = earliest(deadline, settings.server.firstByteTimeout);
        conn->stream.expires_at(x.phaseDeadline);
        {
            auto [hec, n] =
                co_await http::async_read_header(conn->stream, conn->buffer, parser, kUseTuple);
            (void)n;
            x.receivedAny = parser.got_some() || conn->buffer.size() > 0;
            if (hec) {
                x.ec = hec;
                x.tooLarge = hec == http::error::header_limit || hec == http::error::body_limit;
                co_return x;
            }
        }
        x.receivedAny = true;
        x.status = static_cast<int>(parser.get().result_int());
        const bool lines = onLine != nullptr && x.status >= 200 && x.status < 300;

        x.phase = Exchange::Phase::Body;
        std::array<char, 16384> chunk{};
        std::string lineBuffer;
        std::size_t total = 0;
        while (!parser.is_done()) {
            parser.get().body().data = chunk.data();
            parser.get().body().size = chunk.size();
            x.phaseDeadline = earliest(deadline, settings.server.idleTimeout);
            conn->stream.expires_at(x.phaseDeadline);
            auto [bec, n] =
                co_await http::async_read(conn->stream, conn->buffer, parser, kUseTuple);
            (void)n;
            if (bec == http::error::need_buffer) {
                bec = {};
            }
            const std::size_t got = chunk.size() - parser.get().body().size;
            if (got > 0 && !x.firstBodyByte) {
                x.firstBodyByte = Clock::now();
            }
            total += got;
            if (bec == http::error::body_limit || total > settings.server.maxResponseBytes) {
                x.tooLarge = true;
                x.ec = http::error::body_limit;
                co_return x;
            }
            if (lines) {
                lineBuffer.append(chunk.data(), got);
                std::size_t start = 0;
                for (std::size_t nl = lineBuffer.find('\n'); nl != std::string::npos;
                     nl = lineBuffer.find('\n', start)) {
                    if (!(*onLine)(std::string_view(lineBuffer).substr(start, nl - start))) {
                        x.aborted = true;
                        break;
                    }
                    start = nl + 1;
                }
                lineBuffer.erase(0, start);
                if (x.aborted) {
                    co_return x; // connection dropped: the rest is not worth reading
                }
            } else {
                x.body.append(chunk.data(), got);
            }
            if (bec) {
                x.ec = bec;
                co_return x;
            }
        }
        if (lines && !lineBuffer.empty()) {
            x.aborted = !(*onLine)(lineBuffer);
        }
        x.phase = Exchange::Phase::Done;
        reg.reset();
        if (!x.aborted && parser.keep_alive() && !cancel.cancelled()) {
            keepIdle(std::move(conn));
        }
        co_return x;
    }

    /// Describes a transport failure of \a x and how it may be retried.
    std::pair<AnalysisError, Retry> transportError(const Exchange& x, std::string_view what,
                                                   Clock::time_point deadline,
                                                   CancelSignal& cancel) const {
        using K = AnalysisError::Kind;
        if (cancel.cancelled()) {
            return {makeError(K::Cancelled, fmt::format("{}: cancelled", what)), Retry::No};
        }
        if (x.tooLarge) {
            return {
                makeError(K::MalformedBody,
                          fmt::format("{}: response from {} larger than {} bytes "
                                      "(llm.maxResponseBytes); connection closed",
                                      what, settings.server.url, settings.server.maxResponseBytes)),
                Retry::No};
        }
        const bool timeout = x.ec == beast::error::timeout;
        const bool overall = timeout && Clock::now() >= deadline - milliseconds(1);
        switch (x.phase) {
        case Exchange::Phase::Connect:
            if (timeout) {
                return {
                    makeError(K::Timeout, fmt::format("{}: connecting to {} timed out after {} ms",
                                                      what, settings.server.url,
                                                      settings.server.connectTimeout.count())),
                    Retry::Backoff};
            }
            return {makeError(K::ConnectionFailed,
                              fmt::format("{}: cannot connect to the model server at {}: {}", what,
                                          settings.server.url, x.ec.message())),
                    Retry::Backoff};
        case Exchange::Phase::Write:
        case Exchange::Phase::FirstByte:
            if (timeout) {
                return {makeError(K::Timeout,
                                  overall ? fmt::format("{}: no answer from {} within llm.timeout "
                                                        "({} ms)",
                                                        what, settings.server.url,
                                                        settings.server.timeout.count())
                                          : fmt::format("{}: no answer from {} within {} ms "
                                                        "(first byte)",
                                                        what, settings.server.url,
                                                        settings.server.firstByteTimeout.count())),
                        Retry::No};
            }
            if (!x.receivedAny) {
                // A pooled connection the server closed meanwhile (restart, idle close).
                return {makeError(K::ConnectionFailed,
                                  fmt::format("{}: connection to {} closed before an answer: {}",
                                              what, settings.server.url, x.ec.message())),
                        x.reused ? Retry::Stale : Retry::Backoff};
            }
            return {
                makeError(K::MalformedBody, fmt::format("{}: malformed HTTP answer from {}: {}",
                                                        what, settings.server.url, x.ec.message())),
                Retry::No};
        case Exchange::Phase::Body:
            if (timeout) {
                return {makeError(K::Timeout,
                                  overall ? fmt::format("{}: answer from {} not complete within "
                                                        "llm.timeout ({} ms)",
                                                        what, settings.server.url,
                                                        settings.server.timeout.count())
                                          : fmt::format("{}: answer from {} stalled for more "
                                                        "than {} ms",
                                                        what, settings.server.url,
                                                        settings.server.idleTimeout.count())),
                        Retry::No};
            }
            return {makeError(K::ConnectionFailed,
                              fmt::format("{}: connection to {} lost in the middle of the "
                                          "answer: {}",
                                          what, settings.server.url, x.ec.message())),
                    Retry::Once};
        case Exchange::Phase::Done:
            break;
        }
        return {makeError(K::ConnectionFailed, fmt::format("{}: {}", what, x.ec.message())),
                Retry::No};
    }

    std::pair<AnalysisError, Retry> statusError(int status, std::string_view body,
                                                std::string_view what) const {
        using K = AnalysisError::Kind;
        const std::string text = errorText(body);
        const std::string said = text.empty() ? std::string() : fmt::format(": {}", text);
        if (status == 404) {
            return {makeError(K::HttpStatus,
                              fmt::format("{}: model '{}' is not available on {}: run `ollama "
                                          "pull {}` (HTTP 404{})",
                                          what, settings.model.name, settings.server.url,
                                          settings.model.name, said),
                              status),
                    Retry::No};
        }
        AnalysisError e = makeError(
            K::HttpStatus,
            fmt::format("{}: {} answered HTTP {}{}", what, settings.server.url, status, said),
            status);
        if (status == 503) {
            return {e, Retry::Backoff};
        }
        if (status >= 500) {
            return {e, isSingleImageError(e) ? Retry::No : Retry::Once};
        }
        return {e, Retry::No};
    }

    // --- chat -------------------------------------------------------------

    struct Attempt {
        std::optional<ChatResult> result;
        AnalysisError error;
        Retry retry = Retry::No;
    };

    asio::awaitable<Attempt> chatAttempt(const std::shared_ptr<const std::string>& body,
                                         std::string_view what, Clock::time_point start,
                                         Clock::time_point deadline, CancelSignal& cancel,
                                         bool forceFresh, bool streaming) {
        using K = AnalysisError::Kind;
        ChatResult result;
        bool done = false;
        std::optional<std::string> serverError;
        std::optional<std::string> badLine;
        LineHandler onLine = [&](std::string_view line) -> bool {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
                line.remove_suffix(1);
            }
            if (line.empty()) {
                return true;
            }
            boost::system::error_code ec;
            json::value v = json::parse(line, ec);
            if (ec || !v.is_object()) {
                badLine = std::string(line.substr(0, 120));
                return false;
            }
            const json::object& o = v.get_object();
            if (const json::value* e = o.if_contains("error")) {
                serverError = e->is_string() ? std::string(e->get_string()) : writeJson(*e);
                return false;
            }
            if (const json::value* m = o.if_contains("message"); m != nullptr && m->is_object()) {
                if (const json::value* c = m->get_object().if_contains("content");
                    c != nullptr && c->is_string() && !c->get_string().empty()) {
                    if (streaming && !result.firstToken) {
                        result.firstToken = msSince(start);
                    }
                    result.content.append(c->get_string().data(), c->get_string().size());
                }
            }
            if (const json::value* d = o.if_contains("done");
                d != nullptr && d->is_bool() && d->get_bool()) {
                done = true;
                auto count = [&](std::string_view key) -> std::int64_t {
                    const json::value* n = o.if_contains(key);
                    if (n == nullptr || !n->is_number()) {
                        return 0;
                    }
                    boost::system::error_code nec;
                    const auto value = n->to_number<std::int64_t>(nec);
                    return nec ? 0 : value;
                };
                result.promptTokens = count("prompt_eval_count");
                result.evalTokens = count("eval_count");
                if (const json::value* r = o.if_contains("done_reason");
                    r != nullptr && r->is_string()) {
                    result.doneReason = std::string(r->get_string());
                }
            }
            return true;
        };

        std::string chatTarget = target("/api/chat");
        Exchange x = co_await roundTrip(http::verb::post, std::move(chatTarget), body, deadline,
                                        cancel, &onLine, forceFresh);
        Attempt a;
        if (x.ec) {
            std::tie(a.error, a.retry) = transportError(x, what, deadline, cancel);
            co_return a;
        }
        if (x.status < 200 || x.status >= 300) {
            std::tie(a.error, a.retry) = statusError(x.status, x.body, what);
            co_return a;
        }
        if (serverError) {
            // An {"error"} line under HTTP 200: after output started (or a server before 0.12.6).
            AnalysisError e =
                makeError(K::ServerError, fmt::format("{}: {} reported: {}", what,
                                                      settings.server.url, *serverError));
            a.retry = isSingleImageError(e) ? Retry::No : Retry::Once;
            a.error = std::move(e);
            co_return a;
        }
        if (badLine) {
            a.error = makeError(K::MalformedBody, fmt::format("{}: {} sent a line that is not "
                                                              "JSON: \"{}\"",
                                                              what, settings.server.url, *badLine));
            co_return a;
        }
        if (!done) {
            a.error = makeError(K::MalformedBody,
                                fmt::format("{}: the answer from {} ended without \"done\":true "
                                            "(truncated)",
                                            what, settings.server.url));
            a.retry = Retry::Once;
            co_return a;
        }
        a.result = std::move(result);
        co_return a;
    }

    asio::awaitable<ChatOutcome> runChat(std::shared_ptr<const std::string> body, std::string what,
                                         Clock::time_point deadline, CancelSignalPtr cancel,
                                         bool streaming) {
        const Clock::time_point start = Clock::now();
        // cancelAll() reaches this request through its own signal.
        CancelSignalPtr all = allCancel;
        auto link = all->onCancel([c = cancel.get()] { c->cancel(); });
        ChatOutcome out;
        bool staleRetried = false;
        bool onceUsed = false;
        bool forceFresh = false;
        milliseconds backoff = options.backoffInitial;
        while (true) {
            SlotGuard slot;
            // GCC 12 mishandles co_await in an if-initializer: keep it a statement.
            std::optional<AnalysisError> slotError = co_await acquireSlot(deadline, *cancel, slot);
            if (slotError) {
                out.error = std::move(*slotError);
                break;
            }
            ++out.attempts;
            ++attempts;
            Attempt a =
                co_await chatAttempt(body, what, start, deadline, *cancel, forceFresh, streaming);
            slot.release();
            forceFresh = false;
            if (a.result) {
                a.result->attempts = out.attempts;
                a.result->latency = msSince(start);
                out.result = std::move(a.result);
                break;
            }
            Retry retry = a.retry;
            if (retry == Retry::Stale && staleRetried) {
                retry = Retry::Backoff;
            }
            if (cancel->cancelled() || out.attempts >= options.maxAttempts) {
                retry = Retry::No;
            }
            if (retry == Retry::Stale) {
                staleRetried = true;
                forceFresh = true;
                ++retries;
                continue;
            }
            if (retry == Retry::Once && !onceUsed) {
                onceUsed = true;
                ++retries;
                log::debug("{}; retrying once", a.error.message);
                continue;
            }
            if (retry == Retry::Backoff) {
                std::uniform_real_distribution<double> jitter(0.5, 1.0);
                const auto delay = milliseconds(static_cast<std::int64_t>(
                    double(std::min(backoff, options.backoffMax).count()) * jitter(rng)));
                if (Clock::now() + delay < deadline) {
                    backoff *= 2;
                    ++retries;
                    asio::steady_timer timer(executor, delay);
                    auto reg = cancel->onCancel([&timer] { timer.cancel(); });
                    co_await timer.async_wait(kUseTuple);
                    if (!cancel->cancelled()) {
                        continue;
                    }
                    a.error = makeError(AnalysisError::Kind::Cancelled,
                                        fmt::format("{}: cancelled", what));
                }
            }
            if (out.attempts > 1 && a.error.kind != AnalysisError::Kind::Cancelled) {
                a.error.message += fmt::format(" (after {} attempts)", out.attempts);
            }
            out.error = std::move(a.error);
            break;
        }
        out.latency = msSince(start);
        co_return out;
    }

    // --- plain requests (health) -----------------------------------------

    struct Plain {
        int status = 0;
        std::string body;
        std::optional<AnalysisError> error;
    };

    asio::awaitable<Plain> plainRequest(http::verb verb, std::string_view path,
                                        std::shared_ptr<const std::string> body,
                                        Clock::time_point deadline, CancelSignalPtr cancel) {
        CancelSignalPtr all = allCancel;
        auto link = all->onCancel([c = cancel.get()] { c->cancel(); });
        Plain p;
        if (!unusable.empty()) {
            p.error = makeError(AnalysisError::Kind::ConnectionFailed, unusable);
            co_return p;
        }
        bool fresh = false;
        const std::string fullTarget = target(path);
        for (int attempt = 0; attempt < 2; ++attempt) {
            Exchange x =
                co_await roundTrip(verb, fullTarget, body, deadline, *cancel, nullptr, fresh);
            if (x.ec) {
                auto [e, retry] = transportError(x, path, deadline, *cancel);
                if (retry == Retry::Stale && !fresh) {
                    fresh = true;
                    continue;
                }
                p.error = std::move(e);
                co_return p;
            }
            p.status = x.status;
            p.body = std::move(x.body);
            co_return p;
        }
        co_return p;
    }
};

// ---------------------------------------------------------------------------

OllamaClient::OllamaClient(asio::any_io_executor executor, LlmSettings settings,
                           ClientOptions options)
    : settings_(std::move(settings)),
      impl_(std::make_unique<Impl>(std::move(executor), settings_, options)) {
}

OllamaClient::~OllamaClient() = default;

std::shared_ptr<OllamaClient> OllamaClient::create(asio::any_io_executor executor,
                                                   LlmSettings settings, ClientOptions options) {
    return std::shared_ptr<OllamaClient>(
        new OllamaClient(std::move(executor), std::move(settings), options));
}

asio::awaitable<ChatOutcome> OllamaClient::chat(ChatRequest request, CancelSignalPtr cancel) {
    auto self = shared_from_this(); // the coroutine keeps the client (and its pool) alive
    if (!cancel) {
        cancel = std::make_shared<CancelSignal>();
    }
    ChatBodyParts parts;
    parts.model = settings_.model.name;
    parts.systemPrompt = request.systemPrompt;
    parts.userPrompt = request.userPrompt;
    parts.images = &request.images;
    parts.stream = request.stream;
    parts.format = request.format;
    parts.options = &impl_->optionsJson;
    parts.keepAlive = &impl_->keepAlive;
    auto body = std::make_shared<const std::string>(buildChatBody(parts));
    request.images.clear(); // the body holds them now; release the JPEG references early
    const auto deadline = Clock::now() + settings_.server.timeout;
    // No temporaries inside the co_await expression: GCC 12 destroys some twice.
    std::string what = request.label.empty() ? std::string("chat") : request.label;
    ChatOutcome out =
        co_await impl_->runChat(std::move(body), std::move(what), deadline, cancel, request.stream);
    co_return out;
}

void OllamaClient::chat(ChatRequest request, CancelSignalPtr cancel,
                        std::function<void(ChatOutcome)> done) {
    auto self = shared_from_this();
    asio::co_spawn(
        impl_->executor,
        [self, request = std::move(request), cancel = std::move(cancel),
         done = std::move(done)]() mutable -> asio::awaitable<void> {
            ChatOutcome out = co_await self->chat(std::move(request), std::move(cancel));
            done(std::move(out));
        },
        [](const std::exception_ptr& e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log::error("model request failed unexpectedly: {}", ex.what());
                }
            }
        });
}

asio::awaitable<HealthReport> OllamaClient::checkHealth() {
    auto self = shared_from_this();
    HealthReport report;
    const auto deadline = Clock::now() + std::max(settings_.server.timeout, milliseconds(1000));
    auto cancel = std::make_shared<CancelSignal>();
    const std::string& url = settings_.server.url;
    const std::string& model = settings_.model.name;

    const std::shared_ptr<const std::string> noBody;
    Impl::Plain version =
        co_await impl_->plainRequest(http::verb::get, "/api/version", noBody, deadline, cancel);
    if (version.error) {
        report.problem = fmt::format(
            "cannot reach the model server at {} ({}): start it (`ollama serve`, or `systemctl "
            "start ollama`) or correct llm.url",
            url, version.error->message);
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
    Impl::Plain show;
    for (const std::string& name : names) {
        json::object req;
        req["model"] = name;
        auto showBody = std::make_shared<const std::string>(writeJson(req));
        show =
            co_await impl_->plainRequest(http::verb::post, "/api/show", showBody, deadline, cancel);
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

void OllamaClient::checkHealth(std::function<void(HealthReport)> done) {
    auto self = shared_from_this();
    asio::co_spawn(
        impl_->executor,
        [self, done = std::move(done)]() -> asio::awaitable<void> {
            HealthReport report = co_await self->checkHealth();
            done(std::move(report));
        },
        [](const std::exception_ptr&) {});
}

asio::awaitable<std::optional<AnalysisError>> OllamaClient::warmUp() {
    auto self = shared_from_this();
    auto body = std::make_shared<const std::string>(
        buildWarmUpBody(settings_.model.name, impl_->optionsJson, impl_->keepAlive));
    // Loading a model takes seconds to minutes: allow more than one request's timeout.
    const auto deadline = Clock::now() + std::max(settings_.server.timeout, milliseconds(120000));
    std::string what = "warm-up";
    auto cancel = std::make_shared<CancelSignal>();
    ChatOutcome out =
        co_await impl_->runChat(std::move(body), std::move(what), deadline, cancel, false);
    if (out.error) {
        co_return out.error;
    }
    co_return std::nullopt;
}

void OllamaClient::warmUp(std::function<void(std::optional<AnalysisError>)> done) {
    auto self = shared_from_this();
    asio::co_spawn(
        impl_->executor,
        [self, done = std::move(done)]() -> asio::awaitable<void> {
            std::optional<AnalysisError> error = co_await self->warmUp();
            done(std::move(error));
        },
        [](const std::exception_ptr&) {});
}

void OllamaClient::cancelAll() {
    CancelSignalPtr old = std::exchange(impl_->allCancel, std::make_shared<CancelSignal>());
    old->cancel();
    impl_->idle.clear();
}

ClientStats OllamaClient::stats() const {
    ClientStats s;
    s.openConnections = impl_->open;
    s.idleConnections = impl_->idle.size();
    s.inFlight = impl_->inFlight;
    s.queued = impl_->waiters.size();
    s.attempts = impl_->attempts;
    s.retries = impl_->retries;
    s.connectionsOpened = impl_->opened;
    return s;
}

} // namespace dmsd
