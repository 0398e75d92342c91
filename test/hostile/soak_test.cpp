// The soak (docs/reliability.md): two minutes of random faults from the
// hostile proxy against `dmsd run` on a private bus. No crash; file
// descriptors and RSS bounded; GetStatus answering throughout; every alert
// raised explained by what the emulator answered (the proxy's log).
#include <algorithm>
#include <fstream>
#include <signal.h>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test/hostile/hostile_client.h"
#include "test/integration/harness.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

TEST_CASE("soak: two minutes of random faults from the model server", "[soak]") {
    Harness h;
    // A loop of 10 s awake, 6 s sleepy (red), 8 s awake: DROWSINESS has
    // answers to be explained by, every loop.
    h.makeVideo(
        {320,
         240,
         10,
         VideoContainer::Mp4H264,
         {{10.0, {40, 180, 60}, true}, {6.0, {220, 30, 30}, true}, {8.0, {40, 180, 60}, true}}});
    const auto script = h.dir() / "script.json";
    std::ofstream(script)
        << R"({"rules":[{"analysis":"face_state","color":[220,30,30],"tolerance":90,
      "answer":{"state":"SLEEPY","eyes_closed":true,"yawning":false,"confidence":0.9}}]})";
    h.startBus();
    h.startEmulator({"--slots", "4", "--preloaded", "--script", script.string()});
    const Clock::time_point proxyStart = Clock::now();
    HostileProxyProcess proxy(h.emulatorPort(), h.dir() / "hostile.jsonl",
                              {"--random-rate", "0.3"});
    std::string yaml = h.baseConfig();
    const std::string url = h.emulatorUrl();
    yaml.replace(yaml.find(url), url.size(), proxy.url());
    const std::string timeout = "  timeout: 5s\n";
    yaml.replace(yaml.find(timeout), timeout.size(), "  timeout: 4s\n  mode: parallel\n");
    yaml += R"(sampling:
  interval: 1s
  frames_per_sequence: 2
  max_static_skip: 3s
alerts:
  drowsiness: { raise_after: 2s, clear_after: 2s, critical_after: 60s, cooldown: 5s }
  analyzer_fault: { raise_after: 1s, clear_after: 1s, critical_after: 60s, cooldown: 1s }
)";
    h.writeConfig(yaml);
    auto monitor = h.monitor();
    BusSignals signals(*monitor);
    h.startDaemon();
    REQUIRE(h.waitReady(30s));
    REQUIRE(waitUntil(
        [&] { return h.status().at("counters").at("sequences_analysed").to_number<int>() >= 2; },
        30s));

    // Sampled while the faults run (a measurement, not a synchronisation).
    const std::size_t fdStart = h.daemonFdCount();
    std::size_t fdMax = fdStart;
    std::size_t rssEarly = 0; // the largest RSS in the first 30 s
    std::size_t rssLate = 0;  // ... in the last 30 s
    int statusCalls = 0;
    const Clock::time_point start = Clock::now();
    const auto soak = 120s;
    while (Clock::now() - start < soak) {
        signals.readFor(2s); // the bus's signals meanwhile
        REQUIRE(h.daemon().running());
        const json::object status = h.status(); // throws when GetStatus does not answer
        ++statusCalls;
        CHECK(status.contains("counters"));
        fdMax = std::max(fdMax, h.daemonFdCount());
        const std::size_t rss = h.daemonRssKb();
        const auto elapsed = Clock::now() - start;
        if (elapsed < 30s) {
            rssEarly = std::max(rssEarly, rss);
        } else if (elapsed > soak - 30s) {
            rssLate = std::max(rssLate, rss);
        }
    }
    proxy.configure({{"heal", true}});
    const json::object end = h.status();
    INFO(json::serialize(end));
    INFO("fd " << fdStart << " -> max " << fdMax << "; RSS early " << rssEarly << " kB, late "
               << rssLate << " kB; " << statusCalls << " GetStatus calls");

    // The faults happened and were counted.
    const json::object injected = proxy.stats();
    INFO(json::serialize(injected));
    CHECK(injected.at("faulted").to_number<int>() >= 20);
    CHECK(end.at("counters").at("request_errors").to_number<int>() >= 10);
    CHECK(end.at("counters").at("protocol_errors").to_number<int>() >= 1);
    CHECK(end.at("counters").at("stalled_responses").to_number<int>() >= 1);
    CHECK(end.at("counters").at("sequences_analysed").to_number<int>() >= 40);

    // Bounded: connections are closed (each fault's at once), memory does not grow.
    CHECK(fdMax <= fdStart + 16);
    CHECK(rssLate <= rssEarly + 32 * 1024);
    CHECK(statusCalls >= 30);

    // Every alert raised is explained: DROWSINESS by SLEEPY answers the daemon
    // was given untouched (fault "none") in the few seconds before it;
    // ANALYZER_FAULT by faults. Nothing else may be raised.
    const std::vector<json::object> answered = proxy.log();
    for (const BusSignals::Seen& s : signals.seen()) {
        if (s.member != "AlertRaised") {
            continue;
        }
        INFO("raised " << s.kind << " at "
                       << std::chrono::duration<double>(s.at - proxyStart).count() << " s");
        if (s.kind == "DROWSINESS") {
            const auto explained =
                std::any_of(answered.begin(), answered.end(), [&](const auto& l) {
                    const auto at =
                        proxyStart + std::chrono::duration_cast<Clock::duration>(
                                         std::chrono::duration<double, std::milli>(
                                             l.at("t_ms").template to_number<double>()));
                    return l.at("fault") == "none" &&
                           std::string_view(l.at("content").as_string()).find("SLEEPY") !=
                               std::string_view::npos &&
                           at <= s.at + 1s && at >= s.at - 8s;
                });
            CHECK(explained);
        } else {
            CHECK(s.kind == "ANALYZER_FAULT");
            CHECK(injected.at("faulted").to_number<int>() > 0);
        }
    }

    // Still a clean stop.
    h.daemon().signal(SIGTERM);
    const auto code = h.daemon().wait(15s);
    REQUIRE(code);
    CHECK(*code == 0);
}
