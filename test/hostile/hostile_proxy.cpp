#include "test/hostile/hostile_proxy.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

#include "base/json.h"

namespace dmsd::hostile {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t kBodyLimit = 256U * 1024U * 1024U;

const auto kStart = std::chrono::steady_clock::now();

double msSinceStart() {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - kStart)
        .count();
}

/// The upstream answer, reassembled: the final NDJSON line (or the one
/// object) with the whole content, whether it was streamed or not.
struct Answer {
    bool parsed = false;
    bool streamed = false;
    json::object last; ///< the done line, content set to the whole content
    std::string content;
    std::string model;
};

Answer reassemble(const std::string& body, std::string_view contentType) {
    Answer a;
    a.streamed = contentType.find("ndjson") != std::string_view::npos;
    std::size_t start = 0;
    while (start < body.size()) {
        std::size_t nl = body.find('\n', start);
        if (nl == std::string::npos) {
            nl = body.size();
        }
        const std::string_view line = std::string_view(body).substr(start, nl - start);
        start = nl + 1;
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (ec || !v.is_object()) {
            continue;
        }
        json::object& o = v.as_object();
        if (const json::value* m = o.if_contains("message"); m != nullptr && m->is_object()) {
            if (const json::value* c = m->as_object().if_contains("content");
                c != nullptr && c->is_string()) {
                a.content.append(c->as_string().data(), c->as_string().size());
            }
        }
        if (const json::value* m = o.if_contains("model"); m != nullptr && m->is_string()) {
            a.model = std::string(m->as_string());
        }
        a.last = std::move(o);
        a.parsed = true;
    }
    return a;
}

/// The answer as one line (or object) holding \a content.
std::string answerBody(const Answer& a, const std::string& content) {
    json::object o = a.last;
    json::object message;
    message["role"] = "assistant";
    message["content"] = content;
    o["message"] = std::move(message);
    std::string out = json::serialize(o);
    if (a.streamed) {
        out += '\n';
    }
    return out;
}

/// Inserts \a bytes at the start of the first string value of the JSON
/// object text \a content (after the first `":"`), or at its end.
std::string intoFirstString(const std::string& content, std::string_view bytes) {
    std::string out = content;
    const std::size_t at = out.find("\":\"");
    out.insert(at == std::string::npos ? out.size() : at + 3, bytes);
    return out;
}

std::string head(int status, std::string_view reason, std::string_view contentType,
                 std::size_t length, std::string_view version = "HTTP/1.1") {
    return fmt::format("{} {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n", version,
                       status, reason, contentType, length);
}

bool hasMessages(const std::string& body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        return false;
    }
    const json::value* m = v.as_object().if_contains("messages");
    return m != nullptr && m->is_array() && !m->as_array().empty();
}

/// Waits until the client closes the connection (or it breaks).
asio::awaitable<void> holdOpen(beast::tcp_stream& stream) {
    stream.expires_never();
    std::array<char, 4096> sink{};
    for (;;) {
        auto [ec, n] = co_await stream.socket().async_read_some(asio::buffer(sink), kTuple);
        (void)n;
        if (ec) {
            co_return;
        }
    }
}

asio::awaitable<bool> writeAll(beast::tcp_stream& stream, std::string_view bytes) {
    stream.expires_after(30s);
    auto [ec, n] =
        co_await asio::async_write(stream, asio::buffer(bytes.data(), bytes.size()), kTuple);
    (void)n;
    co_return !ec;
}

} // namespace

bool isFault(std::string_view name) {
    return std::find(kFaults.begin(), kFaults.end(), name) != kFaults.end();
}

HostileProxy::HostileProxy(asio::io_context& io, ProxyOptions options)
    : io_(io), options_(std::move(options)), acceptor_(io), rng_(options_.seed) {
    if (!options_.logPath.empty()) {
        log_.open(options_.logPath, std::ios::app);
    }
}

std::uint16_t HostileProxy::listen() {
    const tcp::endpoint ep(asio::ip::make_address(options_.host), options_.port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen();
    return acceptor_.local_endpoint().port();
}

void HostileProxy::start() {
    asio::co_spawn(io_, acceptLoop(), asio::detached);
}

asio::awaitable<void> HostileProxy::acceptLoop() {
    for (;;) {
        auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
        if (ec) {
            co_return;
        }
        asio::co_spawn(io_, session(std::move(socket)), asio::detached);
    }
}

std::string HostileProxy::pickFault() {
    if (!options_.fault.empty() && options_.count > 0) {
        --options_.count;
        return options_.fault;
    }
    if (options_.randomRate > 0) {
        std::uniform_real_distribution<double> roll(0.0, 1.0);
        if (roll(rng_) < options_.randomRate) {
            std::uniform_int_distribution<std::size_t> pick(0, kFaults.size() - 1);
            return std::string(kFaults[pick(rng_)]);
        }
    }
    return "none";
}

json::object HostileProxy::state() const {
    json::object faults;
    for (const auto& [name, n] : byFault_) {
        faults[name] = n;
    }
    return json::object{{"fault", options_.fault},
                        {"count", options_.count},
                        {"random_rate", options_.randomRate},
                        {"chats", chats_},
                        {"generations", generations_},
                        {"faulted", faulted_},
                        {"by_fault", std::move(faults)}};
}

std::optional<std::string> HostileProxy::configure(const std::string& body) {
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec || !v.is_object()) {
        return "the body must be a JSON object";
    }
    ProxyOptions next = options_;
    for (const auto& [key, value] : v.as_object()) {
        if (key == "fault") {
            if (!value.is_string() || !isFault(value.as_string())) {
                return fmt::format("fault must be one of the fault kinds");
            }
            next.fault = std::string(value.as_string());
            next.count = std::max(next.count, 1);
        } else if (key == "count") {
            if (!value.is_int64() || value.as_int64() < 0) {
                return "count must be an integer >= 0";
            }
            next.count = static_cast<int>(value.as_int64());
        } else if (key == "random_rate") {
            if (!value.is_number()) {
                return "random_rate must be a number";
            }
            next.randomRate = value.to_number<double>();
        } else if (key == "heal") {
            next.fault.clear();
            next.count = 0;
            next.randomRate = 0;
        } else {
            return fmt::format("unknown key {}", std::string_view(key));
        }
    }
    options_ = next;
    return std::nullopt;
}

asio::awaitable<void> HostileProxy::session(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(kBodyLimit);
        stream.expires_never();
        auto [rec, rn] = co_await http::async_read(stream, buffer, parser, kTuple);
        (void)rn;
        if (rec) {
            co_return;
        }
        http::request<http::string_body> req = parser.release();
        const std::string target(req.target());

        if (target.starts_with("/_hostile/")) {
            std::string body;
            int status = 200;
            if (target == "/_hostile/config" && req.method() == http::verb::post) {
                if (auto problem = configure(req.body())) {
                    status = 400;
                    body = writeJson(json::object{{"error", *problem}});
                }
            }
            if (status == 200) {
                body = writeJson(state());
            }
            if (!co_await writeAll(stream, head(status, status == 200 ? "OK" : "Bad Request",
                                                "application/json", body.size()) +
                                               body)) {
                co_return;
            }
            continue;
        }

        // Forward to the emulator on a connection of its own.
        beast::tcp_stream up(stream.get_executor());
        up.expires_after(120s);
        auto [cec] = co_await up.async_connect(
            tcp::endpoint(asio::ip::make_address("127.0.0.1"), options_.upstreamPort), kTuple);
        http::response<http::string_body> resp;
        bool upOk = !cec;
        if (upOk) {
            auto [wec, wn] = co_await http::async_write(up, req, kTuple);
            (void)wn;
            upOk = !wec;
        }
        if (upOk) {
            http::response_parser<http::string_body> rp;
            rp.body_limit(kBodyLimit);
            beast::flat_buffer upBuffer;
            auto [uec, un] = co_await http::async_read(up, upBuffer, rp, kTuple);
            (void)un;
            upOk = !uec;
            if (upOk) {
                resp = rp.release();
            }
        }
        if (!upOk) {
            const std::string text = R"({"error":"hostile proxy: the emulator did not answer"})";
            co_await writeAll(stream,
                              head(502, "Bad Gateway", "application/json", text.size()) + text);
            co_return;
        }

        const bool chat = req.method() == http::verb::post && target == "/api/chat";
        const bool generation = chat && hasMessages(req.body());
        const std::string fault = generation ? pickFault() : "none";
        const std::string contentType(resp[http::field::content_type]);
        const int status = static_cast<int>(resp.result_int());
        const std::string& body = resp.body();
        const Answer answer = chat ? reassemble(body, contentType) : Answer{};
        if (chat) {
            ++chats_;
            generations_ += generation ? 1 : 0;
            if (fault != "none") {
                ++faulted_;
                ++byFault_[fault];
            }
            if (log_) {
                json::object line{{"id", chats_},
                                  {"t_ms", msSinceStart()},
                                  {"generation", generation},
                                  {"fault", fault},
                                  {"status", status},
                                  {"model", answer.model},
                                  {"content", answer.content.substr(0, 2000)}};
                log_ << writeJson(line) << '\n';
                log_.flush();
            }
        }

        // The body as it would go with a Content-Length (any chunking undone).
        const std::string normal = head(status, resp.reason(), contentType, body.size()) + body;
        if (fault == "none") {
            if (!co_await writeAll(stream, normal) || !req.keep_alive()) {
                co_return;
            }
            continue;
        }
        const std::string half = body.substr(0, body.size() / 2);
        if (fault == "smuggle") {
            // A whole second response behind the first: a sleepy driver.
            Answer sleepy = answer;
            const std::string sleepyBody = answerBody(
                sleepy,
                R"({"state":"SLEEPY","eyes_closed":true,"yawning":true,"confidence":0.99})");
            co_await writeAll(stream, normal + head(200, "OK", contentType, sleepyBody.size()) +
                                          sleepyBody);
            continue; // a client that trusts framing reads the next request's "answer" here
        }
        if (fault == "short_body") {
            if (co_await writeAll(stream,
                                  head(status, resp.reason(), contentType, body.size()) + half)) {
                co_await holdOpen(stream);
            }
            co_return;
        }
        if (fault == "headers_silence") {
            if (co_await writeAll(stream, head(status, resp.reason(), contentType, body.size()))) {
                co_await holdOpen(stream);
            }
            co_return;
        }
        if (fault == "drip") {
            // One byte per second until the client gives up (or, much later, the end).
            asio::steady_timer timer(stream.get_executor());
            for (const char c : normal) {
                if (!co_await writeAll(stream, std::string_view(&c, 1))) {
                    co_return;
                }
                timer.expires_after(1s);
                co_await timer.async_wait(kTuple);
            }
            co_return;
        }
        if (fault == "bad_chunk") {
            co_await writeAll(
                stream, fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nTransfer-Encoding: "
                                    "chunked\r\n\r\nZZ\r\n{}\r\n0\r\n\r\n",
                                    status, std::string_view(resp.reason()), contentType, body));
            co_return;
        }
        if (fault == "bad_utf8" || fault == "control_chars" || fault == "huge_string" ||
            fault == "wrong_model") {
            std::string content = answer.content;
            Answer changed = answer;
            if (fault == "bad_utf8") {
                // A lone continuation byte, an overlong '/', an encoded surrogate.
                content = intoFirstString(content, "\x80\xC0\xAF\xED\xA0\x80");
            } else if (fault == "control_chars") {
                content = intoFirstString(content, std::string_view("\x01\x00\x1b[2J\x7f", 7));
            } else if (fault == "huge_string") {
                const std::string pad(options_.hugeBytes, 'x');
                const std::size_t brace = content.find('{');
                content.insert(brace == std::string::npos ? 0 : brace + 1,
                               "\"padding\":\"" + pad + "\",");
            } else {
                changed.last["model"] = "hostile-model:13b";
            }
            std::string out = answerBody(changed, content);
            // (Boost.JSON writes the bytes as they are: with bad_utf8 the outer
            // JSON is not UTF-8 either.)
            if (!co_await writeAll(stream,
                                   head(status, resp.reason(), contentType, out.size()) + out) ||
                !req.keep_alive()) {
                co_return;
            }
            continue;
        }
        if (fault == "redirect") {
            co_await writeAll(stream, fmt::format("HTTP/1.1 307 Temporary Redirect\r\nLocation: "
                                                  "http://127.0.0.1:{}/api/chat\r\nContent-Length: "
                                                  "0\r\n\r\n",
                                                  options_.upstreamPort));
            continue;
        }
        if (fault == "switching") {
            if (co_await writeAll(stream, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: "
                                          "websocket\r\nConnection: Upgrade\r\n\r\n")) {
                co_await holdOpen(stream);
            }
            co_return;
        }
        if (fault == "http10") {
            co_await writeAll(stream,
                              fmt::format("HTTP/1.0 {} {}\r\nContent-Type: {}\r\n\r\n{}", status,
                                          std::string_view(resp.reason()), contentType, body));
            boost::system::error_code ignored;
            stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
            co_await holdOpen(stream);
            co_return;
        }
        if (fault == "reset") {
            co_await writeAll(stream, head(status, resp.reason(), contentType, body.size()) + half);
            // Let the half body leave first: a reset with data still queued
            // discards it, and the client would see a refused connection
            // rather than one lost mid-answer.
            asio::steady_timer timer(stream.get_executor(), 200ms);
            co_await timer.async_wait(kTuple);
            boost::system::error_code ignored;
            stream.socket().set_option(asio::socket_base::linger(true, 0), ignored);
            stream.socket().close(ignored);
            co_return;
        }
        co_return;
    }
}

} // namespace dmsd::hostile
