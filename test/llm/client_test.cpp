// OllamaClient against a scripted raw HTTP server in the same io_context:
// framing (chunked NDJSON split at every byte, Content-Length), error lines,
// truncated streams, statuses and retries, stale keep-alive connections,
// cancellation, the size cap, the in-flight limit and the Host header.

#include <atomic>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "llm/analyses/face_state.h"
#include "llm/analysis.h"
#include "llm/ollama_client.h"
#include "llm/openai_client.h"

using namespace dmsd;
namespace json = boost::json;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct Reply {
    std::vector<std::string> pieces;    ///< written one after the other
    bool close = false;                 ///< close the connection after the reply
    bool hang = false;                  ///< never answer; wait for the client to go
    std::chrono::milliseconds pause{0}; ///< between pieces (a drip)
    bool holdOpen = false; ///< after the pieces, say nothing more and wait for the client to go
};

/// A loopback HTTP/1.1 server answering each request with a scripted reply.
class RawServer {
public:
    using Handler = std::function<Reply(const std::string& request, int index)>;

    RawServer(asio::io_context& io, Handler handler)
        : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
          handler_(std::move(handler)) {
        asio::co_spawn(io_, accept(), asio::detached);
    }
    ~RawServer() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        for (auto& s : sockets_) {
            if (auto p = s.lock()) {
                p->close(ec);
            }
        }
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }

    /// Writes \a bytes to every open connection, now (unsolicited by any request).
    asio::awaitable<void> writeToAll(std::string bytes) {
        for (auto& weak : sockets_) {
            if (auto socket = weak.lock(); socket && socket->is_open()) {
                co_await asio::async_write(*socket, asio::buffer(bytes), kTuple);
            }
        }
    }
    std::string url() const { return fmt::format("http://127.0.0.1:{}", port()); }

    std::vector<std::string> requests;
    int connections = 0;
    int peerClosed = 0;   ///< connections the client closed while we waited
    int serverClosed = 0; ///< connections we closed after a reply
    int concurrent = 0;
    int maxConcurrent = 0;

private:
    asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
            if (ec) {
                co_return;
            }
            ++connections;
            auto s = std::make_shared<tcp::socket>(std::move(socket));
            sockets_.push_back(s);
            asio::co_spawn(io_, serve(s), asio::detached);
        }
    }

    asio::awaitable<void> serve(std::shared_ptr<tcp::socket> s) {
        std::string buffer;
        for (;;) {
            auto [ec, n] = co_await asio::async_read_until(*s, asio::dynamic_buffer(buffer),
                                                           "\r\n\r\n", kTuple);
            if (ec) {
                co_return;
            }
            std::string head = buffer.substr(0, n);
            buffer.erase(0, n);
            std::size_t length = 0;
            for (std::string_view key : {"Content-Length: ", "content-length: "}) {
                if (auto p = head.find(key); p != std::string::npos) {
                    length = std::stoul(head.substr(p + key.size()));
                }
            }
            while (buffer.size() < length) {
                std::array<char, 65536> chunk{};
                auto [rec, got] = co_await s->async_read_some(asio::buffer(chunk), kTuple);
                if (rec) {
                    co_return;
                }
                buffer.append(chunk.data(), got);
            }
            std::string request = head + buffer.substr(0, length);
            buffer.erase(0, length);
            requests.push_back(request);
            ++concurrent;
            maxConcurrent = std::max(maxConcurrent, concurrent);
            Reply reply = handler_(request, static_cast<int>(requests.size()) - 1);
            if (reply.hang) {
                std::array<char, 16> sink{};
                auto [hec, got] = co_await s->async_read_some(asio::buffer(sink), kTuple);
                (void)got;
                --concurrent;
                if (hec) {
                    ++peerClosed;
                }
                co_return;
            }
            for (const std::string& piece : reply.pieces) {
                if (reply.pause.count() > 0) {
                    asio::steady_timer pause(io_, reply.pause);
                    co_await pause.async_wait(kTuple);
                }
                auto [wec, w] = co_await asio::async_write(*s, asio::buffer(piece), kTuple);
                (void)w;
                if (wec) {
                    --concurrent;
                    ++peerClosed;
                    co_return;
                }
            }
            if (reply.holdOpen) {
                std::array<char, 16> sink{};
                auto [hec, got] = co_await s->async_read_some(asio::buffer(sink), kTuple);
                (void)got;
                --concurrent;
                if (hec) {
                    ++peerClosed;
                }
                co_return;
            }
            --concurrent;
            if (reply.close) {
                boost::system::error_code ignored;
                s->shutdown(tcp::socket::shutdown_both, ignored);
                s->close(ignored);
                ++serverClosed;
                co_return;
            }
        }
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    Handler handler_;
    std::vector<std::weak_ptr<tcp::socket>> sockets_;
};

/// Splits \a text into one-byte pieces (the worst framing a client can see).
std::vector<std::string> bytewise(const std::string& text) {
    std::vector<std::string> out;
    for (char c : text) {
        out.emplace_back(1, c);
    }
    return out;
}

std::string chunked(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        out += fmt::format("{:x}\r\n{}\r\n", p.size(), p);
    }
    return out + "0\r\n\r\n";
}

std::string ndjsonResponse(const std::vector<std::string>& lines, int status = 200) {
    std::vector<std::string> parts;
    for (const auto& l : lines) {
        parts.push_back(l + "\n");
    }
    return fmt::format("HTTP/1.1 {} X\r\nContent-Type: application/x-ndjson\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n",
                       status) +
           chunked(parts);
}

std::string jsonResponse(int status, const std::string& body, bool close = false) {
    return fmt::format("HTTP/1.1 {} X\r\nContent-Type: application/json; charset=utf-8\r\n"
                       "Content-Length: {}\r\n{}\r\n{}",
                       status, body.size(), close ? "Connection: close\r\n" : "", body);
}

std::string doneLine(const std::string& content) {
    return fmt::format(
        R"({{"model":"m","created_at":"2025-10-26T17:21:21.5Z","message":{{"role":"assistant","content":{}}},"done":true,"done_reason":"stop","total_duration":1,"prompt_eval_count":1634,"eval_count":12}})",
        boost::json::serialize(boost::json::value(content)));
}

std::string pieceLine(const std::string& content) {
    return fmt::format(
        R"({{"model":"m","created_at":"2025-10-26T17:21:21.1Z","message":{{"role":"assistant","content":{}}},"done":false}})",
        boost::json::serialize(boost::json::value(content)));
}

LlmSettings settingsFor(const RawServer& server) {
    LlmSettings s;
    s.server.url = server.url();
    s.model.name = "m:latest";
    s.server.timeout = 5000ms;
    s.server.maxInFlight = 4;
    return s;
}

template <class T>
T runAwait(asio::io_context& io, asio::awaitable<T> task) {
    std::optional<T> result;
    asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
        if (e) {
            std::rethrow_exception(e);
        }
        result = std::move(value);
    });
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!result && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) {
            io.restart();
        }
        io.run_one_for(100ms);
    }
    REQUIRE(result);
    return std::move(*result);
}

void runUntil(asio::io_context& io, const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition() && std::chrono::steady_clock::now() < deadline) {
        if (io.stopped()) {
            io.restart();
        }
        io.run_one_for(50ms);
    }
}

/// Starts \a client.chat(request) on \a io; \a done gets the outcome. With
/// \a cancel, the request runs under that cancellation signal.
void spawnChat(asio::io_context& io, ModelClient& client, ChatRequest request,
               std::function<void(ChatOutcome)> done, asio::cancellation_signal* cancel = nullptr) {
    auto handler = [done = std::move(done)](std::exception_ptr e, ChatOutcome outcome) {
        REQUIRE_FALSE(e);
        done(std::move(outcome));
    };
    if (cancel != nullptr) {
        asio::co_spawn(io, client.chat(std::move(request)),
                       asio::bind_cancellation_slot(cancel->slot(), std::move(handler)));
    } else {
        asio::co_spawn(io, client.chat(std::move(request)), std::move(handler));
    }
}

ChatRequest question() {
    ChatRequest r;
    r.label = "face_state";
    r.systemPrompt = "sys";
    r.userPrompt = "user";
    r.format = &analysis(AnalysisKind::FaceState).schema();
    r.stream = true;
    return r;
}

} // namespace

TEST_CASE("streamed NDJSON split at every byte is reassembled", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{bytewise(
            ndjsonResponse({pieceLine("{\"state\":"), pieceLine("\"SLEEPY\"}"), doneLine("")}))};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE(out.ok());
    CHECK(out.result->content == R"({"state":"SLEEPY"})");
    CHECK(out.result->firstToken.has_value());
    CHECK(out.result->promptTokens == 1634);
    CHECK(out.result->evalTokens == 12);
    CHECK(out.result->doneReason == "stop");
    CHECK(parseAnswer<FaceStateAnswer>(out.result->content).ok());
    // The request: Host as configured, JSON body with stream true.
    REQUIRE(server.requests.size() == 1);
    CHECK_THAT(server.requests[0],
               Catch::Contains(fmt::format("Host: 127.0.0.1:{}", server.port())));
    CHECK_THAT(server.requests[0], Catch::StartsWith("POST /api/chat HTTP/1.1"));
    CHECK_THAT(server.requests[0], Catch::Contains("\"stream\":true"));
    // Keep-alive: the connection went back to the pool.
    CHECK(client->stats().idleConnections == 1);
}

TEST_CASE("non-streamed answer with Content-Length, connection reused", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{jsonResponse(200, doneLine(R"({"state":"AWAKE"})"))}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    for (int i = 0; i < 3; ++i) {
        ChatOutcome out = runAwait(io, client->chat(q));
        REQUIRE(out.ok());
        CHECK(out.result->content == R"({"state":"AWAKE"})");
        CHECK_FALSE(out.result->firstToken.has_value());
    }
    CHECK(server.connections == 1);
    CHECK_THAT(server.requests[0], Catch::Contains("\"stream\":false"));
}

TEST_CASE("an error line under HTTP 200 is a ServerError, retried once", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{ndjsonResponse(
            {pieceLine("{\"st"),
             R"({"error":"an error was encountered while running the model: unexpected EOF"})"})}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::ServerError);
    CHECK_THAT(out.error->message, Catch::Contains("unexpected EOF"));
    CHECK(out.attempts == 2);
    CHECK(client->stats().openConnections == 0);
}

TEST_CASE("a stream ending without done:true is an error", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{ndjsonResponse({pieceLine("{\"state\":"), pieceLine("\"AWAKE\"}")})}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::MalformedBody);
    CHECK_THAT(out.error->message, Catch::Contains("done"));
}

TEST_CASE("statuses: 404 names the model and is not retried, 400 neither, 500 once", "[client]") {
    asio::io_context io;
    int status = 404;
    RawServer server(io, [&](const std::string&, int) {
        const char* text = status == 404   ? "model 'm:latest' not found"
                           : status == 400 ? "illegal base64 data at input byte 4"
                                           : "model runner has unexpectedly stopped";
        return Reply{{jsonResponse(status, fmt::format(R"({{"error":"{}"}})", text))}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome nf = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(nf.ok());
    CHECK(nf.error->kind == AnalysisError::Kind::HttpStatus);
    CHECK(nf.error->httpStatus == 404);
    CHECK_THAT(nf.error->message, Catch::Contains("ollama pull m:latest"));
    CHECK(nf.attempts == 1);

    status = 400;
    ChatOutcome bad = runAwait(io, client->chat(question()));
    CHECK(bad.error->httpStatus == 400);
    CHECK_THAT(bad.error->message, Catch::Contains("illegal base64"));
    CHECK(bad.attempts == 1);

    status = 500;
    ChatOutcome crash = runAwait(io, client->chat(question()));
    CHECK(crash.error->httpStatus == 500);
    CHECK(crash.attempts == 2);
}

TEST_CASE("the one-image 500 is recognised and not retried", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{jsonResponse(
            500,
            R"({"error":"this model only supports one image while more than one image requested"})")}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(isSingleImageError(*out.error));
    CHECK(out.attempts == 1);
}

TEST_CASE("503 is retried with backoff until it succeeds", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int index) {
        if (index < 2) {
            return Reply{{jsonResponse(
                503,
                R"({"error":"server busy, please try again.  maximum pending requests exceeded"})")}};
        }
        return Reply{{ndjsonResponse({doneLine(R"({"state":"AWAKE"})")})}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE(out.ok());
    CHECK(out.result->attempts == 3);
    CHECK(client->stats().retries == 2);
}

TEST_CASE("a pooled connection closed by the server is replaced transparently", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        // Keep-alive promised, but the server closes after each answer (a restart).
        return Reply{{ndjsonResponse({doneLine(R"({"state":"AWAKE"})")})}, true};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    REQUIRE(runAwait(io, client->chat(question())).ok());
    runUntil(io, [&] { return server.serverClosed == 1; });
    REQUIRE(client->stats().idleConnections == 1); // stale, but the client cannot know yet
    ChatOutcome second = runAwait(io, client->chat(question()));
    REQUIRE(second.ok());
    CHECK(server.connections == 2);
    CHECK(server.requests.size() == 2);
}

TEST_CASE("connection refused is a ConnectionFailed naming the URL", "[client]") {
    asio::io_context io;
    unsigned short port = 0;
    {
        tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
        port = probe.local_endpoint().port();
    }
    LlmSettings s;
    s.server.url = fmt::format("http://127.0.0.1:{}", port);
    s.server.timeout = 400ms;
    auto client = OllamaClient::create(io.get_executor(), s);
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::ConnectionFailed);
    CHECK_THAT(out.error->message, Catch::Contains(s.server.url));
    CHECK(out.attempts >= 2); // retried with backoff within the deadline
    HealthReport health = runAwait(io, client->checkHealth());
    CHECK_FALSE(health.serverReachable);
    CHECK_THAT(health.problem, Catch::Contains(s.server.url) && Catch::Contains("cannot reach"));
}

TEST_CASE("cancellation closes the socket at once", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) { return Reply{{}, false, true}; });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    asio::cancellation_signal cancel;
    std::optional<ChatOutcome> out;
    spawnChat(
        io, *client, question(), [&](ChatOutcome o) { out = std::move(o); }, &cancel);
    runUntil(io, [&] { return server.requests.size() == 1; });
    REQUIRE(server.requests.size() == 1);
    cancel.emit(asio::cancellation_type::terminal);
    runUntil(io, [&] { return out.has_value() && server.peerClosed == 1; });
    REQUIRE(out);
    CHECK(out->error->kind == AnalysisError::Kind::Cancelled);
    CHECK(server.peerClosed == 1);
    CHECK(client->stats().openConnections == 0);
    CHECK(client->stats().inFlight == 0);
}

TEST_CASE("cancelAll ends waiting and open requests at once, and the client stays usable",
          "[client]") {
    asio::io_context io;
    std::atomic<bool> answer{false};
    RawServer server(io, [&](const std::string&, int) {
        if (answer) {
            return Reply{{ndjsonResponse({doneLine(R"({"state":"AWAKE"})")})}};
        }
        return Reply{{}, false, true};
    });
    LlmSettings s = settingsFor(server);
    s.server.maxInFlight = 1;
    auto client = OllamaClient::create(io.get_executor(), s);
    std::vector<ChatOutcome> outs;
    spawnChat(io, *client, question(), [&](ChatOutcome o) { outs.push_back(std::move(o)); });
    spawnChat(io, *client, question(), [&](ChatOutcome o) { outs.push_back(std::move(o)); });
    // One request is open on the server, the other waits for the only slot.
    runUntil(io, [&] { return server.requests.size() == 1 && client->stats().queued == 1; });
    REQUIRE(client->stats().queued == 1);
    client->cancelAll();
    runUntil(io, [&] { return outs.size() == 2 && server.peerClosed == 1; });
    REQUIRE(outs.size() == 2);
    for (const ChatOutcome& o : outs) {
        REQUIRE_FALSE(o.ok());
        CHECK(o.error->kind == AnalysisError::Kind::Cancelled);
    }
    CHECK(client->stats().inFlight == 0);
    CHECK(client->stats().openConnections == 0);
    answer = true;
    CHECK(runAwait(io, client->chat(question())).ok());
}

TEST_CASE("first-byte timeout closes the connection", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) { return Reply{{}, false, true}; });
    LlmSettings s = settingsFor(server);
    s.server.timeout = 300ms;
    auto client = OllamaClient::create(io.get_executor(), s);
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::Timeout);
    CHECK_THAT(out.error->message, Catch::Contains("llm.timeout"));
    runUntil(io, [&] { return server.peerClosed == 1; });
    CHECK(server.peerClosed == 1);
    CHECK(client->stats().openConnections == 0);
}

TEST_CASE("the response size cap rejects a runaway answer", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        std::vector<std::string> lines(2000, pieceLine(std::string(100, 'x')));
        lines.push_back(doneLine(""));
        return Reply{{ndjsonResponse(lines)}};
    });
    LlmSettings s = settingsFor(server);
    s.server.maxResponseBytes = 64 * 1024;
    auto client = OllamaClient::create(io.get_executor(), s);
    ChatOutcome out = runAwait(io, client->chat(question()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::MalformedBody);
    CHECK_THAT(out.error->message, Catch::Contains("larger than"));
    CHECK(client->stats().openConnections == 0);
}

TEST_CASE("at most max_in_flight requests are open", "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{ndjsonResponse({doneLine(R"({"state":"AWAKE"})")})}};
    });
    LlmSettings s = settingsFor(server);
    s.server.maxInFlight = 2;
    auto client = OllamaClient::create(io.get_executor(), s);
    int done = 0;
    std::size_t maxInFlight = 0;
    for (int i = 0; i < 6; ++i) {
        spawnChat(io, *client, question(), [&](ChatOutcome o) {
            CHECK(o.ok());
            ++done;
        });
    }
    runUntil(io, [&] {
        maxInFlight = std::max(maxInFlight, client->stats().inFlight);
        return done == 6;
    });
    CHECK(done == 6);
    CHECK(maxInFlight <= 2);
    CHECK(server.connections <= 2);
    CHECK(server.maxConcurrent <= 2);
}

TEST_CASE("health: version, model presence (x == x:latest), vision", "[client]") {
    asio::io_context io;
    std::string capabilities = R"(["completion","vision"])";
    RawServer server(io, [&](const std::string& request, int) {
        if (request.starts_with("GET /api/version")) {
            return Reply{{jsonResponse(200, R"({"version":"0.12.6"})")}};
        }
        if (request.find("\"model\":\"m:latest\"") != std::string::npos) {
            return Reply{
                {jsonResponse(200, fmt::format(R"({{"capabilities":{}}})", capabilities))}};
        }
        return Reply{{jsonResponse(404, R"({"error":"model 'x' not found"})")}};
    });
    LlmSettings s = settingsFor(server);
    s.model.name = "m"; // found as m:latest
    auto client = OllamaClient::create(io.get_executor(), s);
    HealthReport ok = runAwait(io, client->checkHealth());
    CHECK(ok.usable());
    CHECK(ok.version == "0.12.6");
    CHECK(ok.problem.empty());

    capabilities = R"(["completion"])";
    HealthReport blind = runAwait(io, client->checkHealth());
    CHECK_FALSE(blind.vision);
    CHECK_THAT(blind.problem, Catch::Contains("cannot see images"));

    s.model.name = "absent:7b";
    auto other = OllamaClient::create(io.get_executor(), s);
    HealthReport missing = runAwait(io, other->checkHealth());
    CHECK_FALSE(missing.modelPresent);
    CHECK(missing.problem == fmt::format("model 'absent:7b' is not available on {}: run `ollama "
                                         "pull absent:7b`",
                                         server.url()));
}

TEST_CASE("a client on a bad llm.url fails its requests naming the key, never throws", "[client]") {
    asio::io_context io;
    for (const char* url : {"ftp://127.0.0.1:11434", "not a url"}) {
        LlmSettings s;
        s.server.url = url;
        std::shared_ptr<OllamaClient> client;
        REQUIRE_NOTHROW(client = OllamaClient::create(io.get_executor(), s));
        ChatOutcome out = runAwait(io, client->chat(question()));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error->kind == AnalysisError::Kind::ConnectionFailed);
        CHECK_THAT(out.error->message, Catch::Contains("llm.url"));
        const HealthReport health = runAwait(io, client->checkHealth());
        CHECK_FALSE(health.usable());
        CHECK_THAT(health.problem, Catch::Contains("llm.url"));
    }
}

// --- HTTP framing: a server that lies about where its answers end ----------

TEST_CASE("bytes beyond a response's framing: not trusted, connection closed, counted",
          "[client][framing]") {
    asio::io_context io;
    // The first answer carries a second, SLEEPY one behind it (a request
    // smuggled the other way): read as the next answer, it would be a false alert.
    const std::string awake = jsonResponse(200, doneLine(R"({"state":"AWAKE"})"));
    const std::string smuggled = jsonResponse(200, doneLine(R"({"state":"SLEEPY"})"));
    RawServer server(io, [&](const std::string&, int index) {
        if (index == 0) {
            return Reply{{awake + smuggled}};
        }
        return Reply{{jsonResponse(200, doneLine(R"({"state":"NEUTRAL"})"))}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    const ChatOutcome first = runAwait(io, client->chat(q));
    REQUIRE_FALSE(first.ok());
    CHECK(first.error->kind == AnalysisError::Kind::MalformedBody);
    CHECK_THAT(first.error->message, Catch::Contains("beyond its response"));
    CHECK(first.attempts == 1); // never retried: the server is not telling where answers end
    CHECK(client->stats().protocolErrors == 1);
    const ChatOutcome second = runAwait(io, client->chat(q));
    REQUIRE(second.ok());
    CHECK(second.result->content == R"({"state":"NEUTRAL"})");
    CHECK(server.connections == 2);
    CHECK(server.requests.size() == 2);
}

TEST_CASE("bytes on an idle connection are never read as the next answer", "[client][framing]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int index) {
        return Reply{{jsonResponse(
            200, doneLine(index == 0 ? R"({"state":"AWAKE"})" : R"({"state":"NEUTRAL"})"))}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    REQUIRE(runAwait(io, client->chat(q)).ok());
    REQUIRE(client->stats().idleConnections == 1);
    // While the connection waits in the pool, the server sends an answer nobody asked for.
    runAwait(io, [&]() -> asio::awaitable<bool> {
        co_await server.writeToAll(jsonResponse(200, doneLine(R"({"state":"SLEEPY"})")));
        co_return true;
    }());
    const ChatOutcome next = runAwait(io, client->chat(q));
    REQUIRE(next.ok());
    CHECK(next.result->content == R"({"state":"NEUTRAL"})");
    CHECK(client->stats().protocolErrors == 1);
    CHECK(server.connections == 2);
}

TEST_CASE("a body cut short with the connection held open is a stall, not a 20 s wait",
          "[client][framing]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        Reply r;
        r.pieces = {"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    "Content-Length: 4000\r\n\r\n{\"model\":\"m\","};
        r.holdOpen = true;
        return r;
    });
    LlmSettings s = settingsFor(server);
    s.server.timeout = std::chrono::seconds(60);
    auto client = OllamaClient::create(io.get_executor(), s);
    ChatRequest q = question();
    q.stream = false;
    const ChatOutcome out = runAwait(io, client->chat(q));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::Timeout);
    CHECK_THAT(out.error->message,
               Catch::Contains("stalled") && Catch::Contains("llm.min_response_rate"));
    CHECK(client->stats().stalledResponses == 1);
    runUntil(io, [&] { return server.peerClosed == 1; });
    CHECK(server.peerClosed == 1);
}

TEST_CASE("a drip slower than llm.min_response_rate is a stall", "[client][framing]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        Reply r;
        r.pieces = bytewise(jsonResponse(200, doneLine(R"({"state":"AWAKE"})")));
        r.pause = std::chrono::milliseconds(100); // 10 bytes/s
        return r;
    });
    LlmSettings s = settingsFor(server);
    s.server.timeout = std::chrono::seconds(60);
    s.server.minResponseRate = 64;
    auto client = OllamaClient::create(io.get_executor(), s);
    ChatRequest q = question();
    q.stream = false;
    const ChatOutcome out = runAwait(io, client->chat(q));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::Timeout);
    CHECK_THAT(out.error->message, Catch::Contains("stalled"));
    CHECK(client->stats().stalledResponses == 1);
}

TEST_CASE("framing the client cannot check is not trusted: close-delimited, 101, bad chunks",
          "[client][framing]") {
    asio::io_context io;
    const std::string body = doneLine(R"({"state":"AWAKE"})");
    RawServer server(io, [&](const std::string&, int index) {
        switch (index) {
        case 0: // HTTP/1.0: the body ends where the connection does
            return Reply{{"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body},
                         true};
        case 1:
            return Reply{{"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\n\r\n"}};
        case 2:
            return Reply{{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n" + body +
                          "\r\n0\r\n\r\n"}};
        default:
            return Reply{{jsonResponse(200, body)}};
        }
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    const ChatOutcome closeDelimited = runAwait(io, client->chat(q));
    REQUIRE_FALSE(closeDelimited.ok());
    CHECK(closeDelimited.error->kind == AnalysisError::Kind::MalformedBody);
    CHECK_THAT(closeDelimited.error->message, Catch::Contains("closing the connection"));
    CHECK(client->stats().protocolErrors == 1);
    const ChatOutcome upgrade = runAwait(io, client->chat(q));
    REQUIRE_FALSE(upgrade.ok());
    CHECK(upgrade.error->kind == AnalysisError::Kind::HttpStatus);
    CHECK(upgrade.error->httpStatus == 101);
    CHECK(client->stats().protocolErrors == 2);
    const ChatOutcome badChunk = runAwait(io, client->chat(q));
    REQUIRE_FALSE(badChunk.ok());
    CHECK(badChunk.error->kind == AnalysisError::Kind::MalformedBody);
    CHECK(client->stats().protocolErrors == 3);
    const ChatOutcome fine = runAwait(io, client->chat(q));
    REQUIRE(fine.ok());
    // None of the three connections was reused.
    CHECK(server.connections == 4);
}

namespace {

/// Collects what is written to stderr (where the log goes in tests) while alive.
class StderrCapture {
public:
    StderrCapture() {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        file_ = std::tmpfile();
        ::dup2(::fileno(file_), STDERR_FILENO);
    }
    ~StderrCapture() {
        restore();
        std::fclose(file_);
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    /// Stops capturing and returns what was written.
    std::string text() {
        restore();
        std::string out;
        std::rewind(file_);
        std::array<char, 4096> buf{};
        while (const std::size_t n = std::fread(buf.data(), 1, buf.size(), file_)) {
            out.append(buf.data(), n);
        }
        return out;
    }

private:
    void restore() {
        if (saved_ >= 0) {
            std::fflush(stderr);
            ::dup2(saved_, STDERR_FILENO);
            ::close(saved_);
            saved_ = -1;
        }
    }
    int saved_ = -1;
    std::FILE* file_ = nullptr;
};

std::size_t occurrences(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) {
        ++n;
    }
    return n;
}

} // namespace

TEST_CASE("a burst of framing violations is logged once and counted in full", "[client][framing]") {
    asio::io_context io;
    const std::string awake = jsonResponse(200, doneLine(R"({"state":"AWAKE"})"));
    RawServer server(io, [&](const std::string&, int) { return Reply{{awake + awake}}; });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    StderrCapture log;
    for (int i = 0; i < 3; ++i) {
        const ChatOutcome out = runAwait(io, client->chat(q));
        CHECK_FALSE(out.ok());
    }
    const std::string text = log.text();
    CHECK(client->stats().protocolErrors == 3);
    CHECK(occurrences(text, "broke HTTP framing") == 1);
    CHECK(server.connections == 3);
}

TEST_CASE("a response that says Connection: close is not pooled", "[client][framing]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int) {
        return Reply{{jsonResponse(200, doneLine(R"({"state":"AWAKE"})"), true)}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server));
    ChatRequest q = question();
    q.stream = false;
    REQUIRE(runAwait(io, client->chat(q)).ok());
    CHECK(client->stats().idleConnections == 0);
    REQUIRE(runAwait(io, client->chat(q)).ok());
    CHECK(client->stats().retries == 0); // a fresh connection, not a stale pooled one
    CHECK(server.connections == 2);
}

TEST_CASE("an answer naming another model is not trusted, and x and x:latest are one model",
          "[client]") {
    asio::io_context io;
    RawServer server(io, [](const std::string&, int index) {
        std::string line = doneLine(R"({"state":"SLEEPY"})");
        if (index == 0) {
            const std::string from = R"("model":"m")";
            line.replace(line.find(from), from.size(), R"("model":"other:13b")");
        } else if (index == 1) {
            const std::string from = R"("model":"m")";
            line.replace(line.find(from), from.size(), R"("model":"M:latest")");
        }
        return Reply{{jsonResponse(200, line)}};
    });
    auto client = OllamaClient::create(io.get_executor(), settingsFor(server)); // m:latest
    ChatRequest q = question();
    q.stream = false;
    const ChatOutcome other = runAwait(io, client->chat(q));
    REQUIRE_FALSE(other.ok());
    CHECK(other.error->kind == AnalysisError::Kind::InvalidAnswer);
    CHECK_THAT(other.error->message,
               Catch::Contains("other:13b") && Catch::Contains("not the model asked"));
    CHECK(other.attempts == 1);
    CHECK(runAwait(io, client->chat(q)).ok()); // "M:latest"
    CHECK(runAwait(io, client->chat(q)).ok()); // "m"
}

TEST_CASE("the OpenAI body: content parts, data URLs, the schema, the options",
          "[client][openai]") {
    const std::vector<JpegImage> images = {
        JpegImage{std::make_shared<const std::vector<unsigned char>>(
                      std::vector<unsigned char>{0xFF, 0xD8, 0xFF, 0xD9}),
                  2, 2}};
    const json::value schema =
        json::parse(R"({"type":"object","properties":{"a":{"type":"integer"}}})");
    ModelOptions options;
    options.seed = 42;
    OpenAiBodyParts parts;
    parts.model = "llava:7b";
    parts.schemaName = "face state!";
    parts.systemPrompt = "system \"quoted\"";
    parts.userPrompt = "look";
    parts.images = &images;
    parts.format = &schema;
    parts.options = &options;
    const json::object body = json::parse(buildOpenAiChatBody(parts)).as_object();
    CHECK(body.at("model") == "llava:7b");
    CHECK(body.at("stream") == false);
    CHECK(body.at("max_tokens") == 256);
    CHECK(body.at("temperature").to_number<double>() == Approx(0.1));
    CHECK(body.at("top_p").to_number<double>() == Approx(0.5));
    CHECK(body.at("seed") == 42);
    CHECK_FALSE(body.contains("options")); // Ollama's, not OpenAI's
    const json::array& messages = body.at("messages").as_array();
    REQUIRE(messages.size() == 2);
    CHECK(messages[0].at("role") == "system");
    CHECK(messages[0].at("content") == "system \"quoted\"");
    const json::array& content = messages[1].at("content").as_array();
    REQUIRE(content.size() == 2);
    CHECK(content[0].at("type") == "text");
    CHECK(content[0].at("text") == "look");
    CHECK(content[1].at("type") == "image_url");
    CHECK(content[1].at("image_url").at("url") == "data:image/jpeg;base64,/9j/2Q==");
    const json::object& format = body.at("response_format").as_object();
    CHECK(format.at("type") == "json_schema");
    CHECK(format.at("json_schema").at("name") == "face_state_");
    CHECK(format.at("json_schema").at("strict") == true);
    CHECK(format.at("json_schema").at("schema") == schema);

    // The warm-up: one token, no schema, no images.
    OpenAiBodyParts warm;
    warm.model = "m";
    warm.userPrompt = "ok";
    warm.options = &options;
    warm.maxTokens = 1;
    const json::object w = json::parse(buildOpenAiChatBody(warm)).as_object();
    CHECK(w.at("max_tokens") == 1);
    CHECK_FALSE(w.contains("response_format"));
    CHECK(w.at("messages").as_array()[1].at("content").as_array().size() == 1);
}
