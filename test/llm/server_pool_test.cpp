// The server pool (llm.url a list) against real Ollama emulators over HTTP:
// requests follow the servers' capacity, a killed server's requests move to
// the other, a dead server is probed back in once it is up again.

#include <algorithm>
#include <chrono>
#include <csignal>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "llm/analysis.h"
#include "llm/model_backend.h"
#include "llm/server_pool.h"
#include "test/support/child_process.h"

using namespace dmsd;
namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

/// The emulator as a child process; `--port 0` picks a free port.
class Emulator {
public:
    explicit Emulator(std::vector<std::string> args)
        : process_(std::make_unique<test::ChildProcess>(argvFor(std::move(args)))) {
        auto line = process_->waitForLine(
            [](const std::string& l) { return l.starts_with("listening on "); }, 20s);
        REQUIRE(line);
        url_ = line->substr(std::string("listening on ").size());
        port_ = url_.substr(url_.rfind(':') + 1);
    }
    const std::string& url() const { return url_; }
    const std::string& port() const { return port_; }
    /// SIGKILL, and waits until it is gone (its port refuses from then on).
    void kill() {
        process_->signal(SIGKILL);
        REQUIRE(process_->wait(10s));
    }

private:
    static std::vector<std::string> argvFor(std::vector<std::string> args) {
        args.insert(args.begin(), DMSD_OLLAMA_EMULATOR);
        args.emplace_back("--preloaded");
        return args;
    }
    std::unique_ptr<test::ChildProcess> process_;
    std::string url_;
    std::string port_;
};

ChatRequest question() {
    ChatRequest q;
    q.label = "face_state";
    q.systemPrompt = "sys";
    q.userPrompt = "user";
    q.format = &analysis(AnalysisKind::FaceState).schema();
    return q;
}

struct Rig {
    asio::io_context io;
    std::shared_ptr<ServerPool> pool;

    /// A pool over \a urls, \a maxInFlight slots each, with \a options.
    Rig(const std::vector<std::string>& urls, int maxInFlight, PoolOptions options = {}) {
        ServerSettings server;
        server.url = urls.front();
        server.moreUrls.assign(urls.begin() + 1, urls.end());
        server.maxInFlight = maxInFlight;
        server.timeout = 20s;
        options.timeout = server.timeout;
        // Few attempts per server: the pool, not the transport, moves a
        // request off a dead server (keeps the test short).
        TransportOptions transport;
        transport.maxAttempts = 2;
        std::vector<ModelClientPtr> members;
        for (const HttpTransportPtr& t : createTransports(io.get_executor(), server, transport)) {
            members.push_back(createModelClient(t, ModelSettings{}));
        }
        pool = ServerPool::create(io.get_executor(), std::move(members), options);
    }

    void runUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 60s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!condition() && std::chrono::steady_clock::now() < deadline) {
            if (io.stopped()) {
                io.restart();
            }
            io.run_one_for(20ms);
        }
    }

    /// \a workers loops, each asking one question after the other, until
    /// \a total questions are answered or failed; \a onAnswer after each.
    std::vector<ChatOutcome> ask(
        int total, int workers, const std::function<void()>& onAnswer = [] {}) {
        std::vector<ChatOutcome> outcomes;
        int started = 0;
        std::function<void()> next = [&] {
            if (started >= total) {
                return;
            }
            ++started;
            asio::co_spawn(io, pool->chat(question()), [&](std::exception_ptr e, ChatOutcome out) {
                REQUIRE_FALSE(e);
                outcomes.push_back(std::move(out));
                onAnswer();
                next();
            });
        };
        for (int w = 0; w < workers; ++w) {
            next();
        }
        runUntil([&] { return static_cast<int>(outcomes.size()) == total; }, 120s);
        REQUIRE(static_cast<int>(outcomes.size()) == total);
        return outcomes;
    }

    ServerStatus server(std::size_t i) const { return pool->stats().servers.at(i); }
};

std::string describe(const std::vector<ChatOutcome>& outcomes) {
    std::string text;
    for (const ChatOutcome& out : outcomes) {
        if (!out.ok()) {
            text += out.error->message + "\n";
        }
    }
    return text;
}

bool allOk(const std::vector<ChatOutcome>& outcomes) {
    return std::all_of(outcomes.begin(), outcomes.end(), [](const auto& o) { return o.ok(); });
}

} // namespace

TEST_CASE("server faults set a server aside, request faults do not", "[pool]") {
    CHECK(isServerFault({AnalysisError::Kind::ConnectionFailed, 0, ""}));
    CHECK(isServerFault({AnalysisError::Kind::Timeout, 0, ""}));
    CHECK(isServerFault({AnalysisError::Kind::MalformedBody, 0, ""}));
    CHECK(isServerFault({AnalysisError::Kind::ServerError, 0, ""}));
    CHECK(isServerFault({AnalysisError::Kind::HttpStatus, 503, ""}));
    CHECK(isServerFault({AnalysisError::Kind::HttpStatus, 500, ""}));
    CHECK_FALSE(isServerFault({AnalysisError::Kind::HttpStatus, 400, ""}));
    CHECK_FALSE(isServerFault({AnalysisError::Kind::HttpStatus, 404, ""}));
    CHECK_FALSE(isServerFault({AnalysisError::Kind::InvalidAnswer, 0, ""}));
    CHECK_FALSE(isServerFault({AnalysisError::Kind::Cancelled, 0, ""}));
}

TEST_CASE("requests follow the servers' capacity", "[pool][e2e]") {
    // Same time per request; one slot against three. Eight questions are
    // always open: round robin would give each server half, whatever their
    // capacity. A one-slot server answers one request per 150 ms at most,
    // so its estimate (latency × outstanding) grows with every request
    // queued on it, and the pool sends it fewer than the three-slot one
    // (about a quarter of them at steady state; asserted: fewer than half,
    // which round robin would give it).
    Emulator one({"--slots", "1", "--latency-ms", "150"});
    Emulator three({"--slots", "3", "--latency-ms", "150"});
    Rig rig({one.url(), three.url()}, 4);
    const std::vector<ChatOutcome> outcomes = rig.ask(64, 8);
    INFO(describe(outcomes));
    CHECK(allOk(outcomes));
    const ServerStatus a = rig.server(0);
    const ServerStatus b = rig.server(1);
    INFO(fmt::format("1 slot: {} requests (estimate {:.0f} ms); 3 slots: {} ({:.0f} ms)",
                     a.requests, a.latencyEwmaMs, b.requests, b.latencyEwmaMs));
    CHECK(a.requests + b.requests == 64);
    CHECK(b.requests > a.requests);
    CHECK(a.requests > 0);
    CHECK(a.inService);
    CHECK(b.inService);
    CHECK(rig.pool->maxInFlight() == 8);
    CHECK(rig.pool->url() == one.url() + ", " + three.url());
}

TEST_CASE("a killed server's requests move to the other", "[pool][e2e]") {
    Emulator doomed({"--slots", "2", "--latency-ms", "100"});
    Emulator survivor({"--slots", "2", "--latency-ms", "100"});
    Rig rig({doomed.url(), survivor.url()}, 2);
    bool killed = false;
    // Killed once it has answered a few, with requests open on it.
    const std::vector<ChatOutcome> outcomes = rig.ask(40, 4, [&] {
        if (!killed && rig.server(0).requests >= 4 && rig.server(0).outstanding > 0) {
            killed = true;
            doomed.kill();
        }
    });
    REQUIRE(killed);
    INFO(describe(outcomes));
    CHECK(allOk(outcomes)); // nothing lost while one server remains
    const ServerStatus gone = rig.server(0);
    CHECK_FALSE(gone.inService);
    CHECK(gone.setAsides == 1);
    CHECK_THAT(gone.reason, Catch::Contains(doomed.url()));
    CHECK(gone.failures >= 1);
    CHECK(rig.server(1).inService);
    CHECK(rig.pool->maxInFlight() == 2); // the survivor's slots only
    // Health: usable while one server is.
    std::optional<HealthReport> health;
    asio::co_spawn(rig.io, rig.pool->checkHealth(),
                   [&](std::exception_ptr, HealthReport r) { health = std::move(r); });
    rig.runUntil([&] { return health.has_value(); });
    REQUIRE(health);
    CHECK(health->usable());
}

TEST_CASE("every server out: requests fail as with one server", "[pool][e2e]") {
    Emulator a({});
    Emulator b({});
    const std::string urlA = a.url();
    const std::string urlB = b.url();
    a.kill();
    b.kill();
    Rig rig({urlA, urlB}, 1);
    const std::vector<ChatOutcome> outcomes = rig.ask(1, 1);
    REQUIRE_FALSE(outcomes[0].ok());
    CHECK(outcomes[0].error->kind == AnalysisError::Kind::ConnectionFailed);
    CHECK_FALSE(rig.server(0).inService);
    CHECK_FALSE(rig.server(1).inService);
    std::optional<HealthReport> health;
    asio::co_spawn(rig.io, rig.pool->checkHealth(),
                   [&](std::exception_ptr, HealthReport r) { health = std::move(r); });
    rig.runUntil([&] { return health.has_value(); });
    REQUIRE(health);
    CHECK_FALSE(health->usable());
    CHECK_THAT(health->problem, Catch::Contains(urlA) && Catch::Contains(urlB));
    rig.pool->cancelAll();
}

TEST_CASE("a dead server is probed back in once it is up again", "[pool][e2e]") {
    std::optional<Emulator> dead(Emulator({}));
    const std::string port = dead->port();
    const std::string deadUrl = dead->url();
    dead->kill();
    Emulator alive({"--slots", "2"});
    PoolOptions options;
    options.probeInitial = 50ms;
    options.probeMax = 200ms;
    Rig rig({deadUrl, alive.url()}, 2, options);

    // The first request tries the dead server (first in the list), sets it
    // aside and is answered by the other.
    std::vector<ChatOutcome> outcomes = rig.ask(4, 2);
    INFO(describe(outcomes));
    CHECK(allOk(outcomes));
    ServerStatus first = rig.server(0);
    CHECK_FALSE(first.inService);
    CHECK_THAT(first.reason, Catch::Contains(deadUrl));
    CHECK(first.requests == 1);

    // Up again on the same port: the probe brings it back, and it gets requests.
    Emulator back({"--port", port});
    rig.runUntil([&] { return rig.server(0).inService; }, 30s);
    REQUIRE(rig.server(0).inService);
    CHECK(rig.server(0).reason.empty());
    outcomes = rig.ask(16, 4);
    CHECK(allOk(outcomes));
    CHECK(rig.server(0).requests > 1);
}
