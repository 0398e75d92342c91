// checkModel() and ModelHealthWatcher against a fake Ollama server in the same
// io_context: health (version, show), warm-up, and a server that comes up late.
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "llm/model_health.h"
#include "llm/ollama_client.h"

using namespace dmsd;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

/// Answers /api/version, /api/show and /api/chat (the warm-up) like Ollama,
/// as far as the health check and the warm-up look.
class FakeOllama {
public:
    bool vision = true;
    bool warmUpFails = false;
    int chats = 0;

    /// Listens on \a port (0: any free one).
    FakeOllama(asio::io_context& io, unsigned short port = 0)
        : io_(io), acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)) {
        asio::co_spawn(io_, accept(), asio::detached);
    }
    ~FakeOllama() {
        boost::system::error_code ec;
        acceptor_.close(ec);
        for (auto& s : sockets_) {
            if (auto p = s.lock()) {
                p->close(ec);
            }
        }
    }
    unsigned short port() const { return acceptor_.local_endpoint().port(); }

private:
    static std::string json(int status, const std::string& body) {
        return fmt::format("HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: "
                           "{}\r\n\r\n{}",
                           status, body.size(), body);
    }

    std::string reply(const std::string& head) {
        if (head.starts_with("GET /api/version")) {
            return json(200, R"({"version":"0.12.6"})");
        }
        if (head.starts_with("POST /api/show")) {
            return json(200, vision ? R"({"capabilities":["completion","vision"]})"
                                    : R"({"capabilities":["completion"]})");
        }
        if (head.starts_with("POST /api/chat")) {
            ++chats;
            if (warmUpFails) {
                return json(400, R"({"error":"model runner has unexpectedly stopped"})");
            }
            return json(200, R"({"model":"m","message":{"role":"assistant","content":""},)"
                             R"("done":true,"done_reason":"load"})");
        }
        return json(404, R"({"error":"not found"})");
    }

    asio::awaitable<void> accept() {
        for (;;) {
            auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
            if (ec) {
                co_return;
            }
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
            const std::string head = buffer.substr(0, n);
            buffer.erase(0, n);
            std::size_t length = 0;
            for (std::string_view key : {"Content-Length: ", "content-length: "}) {
                if (auto p = head.find(key); p != std::string::npos) {
                    length = std::stoul(head.substr(p + key.size()));
                }
            }
            while (buffer.size() < length) {
                std::array<char, 4096> chunk{};
                auto [rec, got] = co_await s->async_read_some(asio::buffer(chunk), kTuple);
                if (rec) {
                    co_return;
                }
                buffer.append(chunk.data(), got);
            }
            buffer.erase(0, length);
            const std::string out = reply(head);
            auto [wec, w] = co_await asio::async_write(*s, asio::buffer(out), kTuple);
            (void)w;
            if (wec) {
                co_return;
            }
        }
    }

    asio::io_context& io_;
    tcp::acceptor acceptor_;
    std::vector<std::weak_ptr<tcp::socket>> sockets_;
};

LlmSettings settingsFor(unsigned short port) {
    LlmSettings s;
    s.server.url = fmt::format("http://127.0.0.1:{}", port);
    s.model.name = "m:latest";
    s.server.timeout = 5000ms;
    return s;
}

/// Runs \a io until \a condition holds; false after 10 s.
bool runUntil(asio::io_context& io, const std::function<bool()>& condition) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!condition()) {
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        if (io.stopped()) {
            io.restart();
        }
        io.run_one_for(50ms);
    }
    return true;
}

ModelCheck check(asio::io_context& io, ModelClientPtr client) {
    std::optional<ModelCheck> result;
    asio::co_spawn(io, checkModel(std::move(client)), [&](std::exception_ptr e, ModelCheck c) {
        REQUIRE_FALSE(e);
        result = std::move(c);
    });
    REQUIRE(runUntil(io, [&] { return result.has_value(); }));
    return std::move(*result);
}

/// A loopback port with nobody listening (bound, then closed).
unsigned short freePort(asio::io_context& io) {
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    return probe.local_endpoint().port();
}

} // namespace

TEST_CASE("a healthy server is checked, then warmed up", "[model_health]") {
    asio::io_context io;
    FakeOllama server(io);
    const ModelCheck result =
        check(io, OllamaClient::create(io.get_executor(), settingsFor(server.port())));
    CHECK(result.usable());
    CHECK(result.problem.empty());
    CHECK(result.health.version == "0.12.6");
    CHECK(server.chats == 1);
}

TEST_CASE("a model that cannot see images fails at the health check, without a warm-up",
          "[model_health]") {
    asio::io_context io;
    FakeOllama server(io);
    server.vision = false;
    const ModelCheck result =
        check(io, OllamaClient::create(io.get_executor(), settingsFor(server.port())));
    CHECK(result.failed == ModelCheck::Step::Health);
    CHECK(result.problem == result.health.problem);
    CHECK_THAT(result.problem, Catch::Contains("cannot see images"));
    CHECK(server.chats == 0);
}

TEST_CASE("a failed warm-up names the model, the URL and the server's error", "[model_health]") {
    asio::io_context io;
    FakeOllama server(io);
    server.warmUpFails = true;
    const LlmSettings settings = settingsFor(server.port());
    const ModelCheck result = check(io, OllamaClient::create(io.get_executor(), settings));
    CHECK(result.failed == ModelCheck::Step::WarmUp);
    REQUIRE(result.warmUpError);
    CHECK(result.problem == fmt::format("warming up m:latest on {} failed: {}", settings.server.url,
                                        result.warmUpError->message));
    CHECK_THAT(result.problem, Catch::Contains("unexpectedly stopped"));
}

TEST_CASE("an unreachable server names its URL", "[model_health]") {
    asio::io_context io;
    const LlmSettings settings = settingsFor(freePort(io));
    const ModelCheck result = check(io, OllamaClient::create(io.get_executor(), settings));
    CHECK(result.failed == ModelCheck::Step::Health);
    CHECK_THAT(result.problem,
               Catch::Contains("cannot reach the model server at " + settings.server.url));
}

TEST_CASE("the watcher re-checks while the server is down and reports its return",
          "[model_health]") {
    asio::io_context io;
    const unsigned short port = freePort(io);
    std::vector<ModelCheck> reports;
    ModelHealthWatcher watcher(io.get_executor(), 20ms,
                               [&](const ModelCheck& c) { reports.push_back(c); });
    watcher.watch(OllamaClient::create(io.get_executor(), settingsFor(port)));
    CHECK(watcher.active());
    // Down: failures keep coming, one per retry.
    REQUIRE(runUntil(io, [&] { return reports.size() >= 3; }));
    for (const ModelCheck& c : reports) {
        CHECK_FALSE(c.usable());
    }
    CHECK(watcher.active());

    // The server comes up on that port: the next check finds it, and checks stop.
    FakeOllama server(io, port);
    REQUIRE(runUntil(io, [&] { return reports.back().usable(); }));
    CHECK_FALSE(watcher.active());
    const std::size_t count = reports.size();
    CHECK(server.chats == 1);

    // recheck() while idle checks once more, and reports once more.
    watcher.recheck();
    CHECK(watcher.active());
    REQUIRE(runUntil(io, [&] { return reports.size() == count + 1; }));
    CHECK(reports.back().usable());
    CHECK_FALSE(watcher.active());
}

TEST_CASE("recheck() cuts the retry delay short", "[model_health]") {
    asio::io_context io;
    const unsigned short port = freePort(io);
    std::vector<ModelCheck> reports;
    // A retry far beyond the test's deadline: only recheck() can bring the next check.
    ModelHealthWatcher watcher(io.get_executor(), std::chrono::hours(1),
                               [&](const ModelCheck& c) { reports.push_back(c); });
    watcher.watch(OllamaClient::create(io.get_executor(), settingsFor(port)));
    REQUIRE(runUntil(io, [&] { return reports.size() == 1; }));
    FakeOllama server(io, port);
    watcher.recheck();
    REQUIRE(runUntil(io, [&] { return reports.size() == 2; }));
    CHECK(reports.back().usable());
}

TEST_CASE("after stop() or a new watch() the old client's check is not reported",
          "[model_health]") {
    asio::io_context io;
    FakeOllama healthy(io);
    FakeOllama blind(io);
    blind.vision = false;
    std::vector<ModelCheck> reports;
    ModelHealthWatcher watcher(io.get_executor(), 20ms,
                               [&](const ModelCheck& c) { reports.push_back(c); });
    // Re-targeted before the first check could answer: only the new client reports.
    watcher.watch(OllamaClient::create(io.get_executor(), settingsFor(blind.port())));
    watcher.watch(OllamaClient::create(io.get_executor(), settingsFor(healthy.port())));
    REQUIRE(runUntil(io, [&] { return !reports.empty(); }));
    REQUIRE(runUntil(io, [&] { return !watcher.active(); }));
    CHECK(reports.size() == 1);
    CHECK(reports.front().usable());

    // Stopped while the blind server's checks repeat: nothing more is reported.
    watcher.watch(OllamaClient::create(io.get_executor(), settingsFor(blind.port())));
    REQUIRE(runUntil(io, [&] { return reports.size() == 2; }));
    watcher.stop();
    CHECK_FALSE(watcher.active());
    // Long enough for several retries (20 ms) and checks to have happened.
    asio::steady_timer wait(io, 300ms);
    bool waited = false;
    wait.async_wait([&](boost::system::error_code) { waited = true; });
    REQUIRE(runUntil(io, [&] { return waited; }));
    CHECK(reports.size() == 2);
}
