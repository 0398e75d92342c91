// The fault matrix for `dmsd run` (docs/reliability.md): the real daemon on a
// private bus, its model server the hostile proxy in front of the Ollama
// emulator. For each fault, in llm.mode parallel and combined: an awake
// driver stays alert-free but for ANALYZER_FAULT while the fault persists,
// the model is not usable (State degraded), the fault is counted in GetStatus, ANALYZER_FAULT
// clears and answers flow again once the server is healed, and every sampled window is accounted
// for.
#include <set>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test/hostile/hostile_client.h"
#include "test/integration/harness.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr Rgb kGreen{40, 180, 60};

std::uint64_t counter(const json::object& status, const std::string& name) {
    return status.at("counters").at(name).to_number<std::uint64_t>();
}

void runMatrix(const std::string& mode, const std::string& fault, const std::string& counterName) {
    Harness h;
    // A moving (never static) awake driver; in `run` the file plays like a
    // camera and starts again at its end.
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{20.0, kGreen, true}}});
    h.startBus();
    h.startEmulator({"--slots", "4", "--preloaded"});
    HostileProxyProcess proxy(h.emulatorPort(), h.dir() / "hostile.jsonl");
    std::string yaml = h.baseConfig();
    const std::string url = h.emulatorUrl();
    yaml.replace(yaml.find(url), url.size(), proxy.url());
    const std::string timeout = "  timeout: 5s\n";
    yaml.replace(yaml.find(timeout), timeout.size(),
                 fmt::format("  timeout: 10s\n  mode: {}\n", mode));
    yaml += R"(sampling:
  interval: 1s
  frames_per_sequence: 2
  max_static_skip: 3s
alerts:
  analyzer_fault: { raise_after: 1s, clear_after: 1s, critical_after: 60s, cooldown: 1s }
)";
    h.writeConfig(yaml);
    auto monitor = h.monitor();
    BusSignals signals(*monitor);
    h.startDaemon();
    REQUIRE(h.waitReady(30s));
    // Answers flow before the fault.
    REQUIRE(waitUntil([&] { return counter(h.status(), "sequences_analysed") >= 2; }, 30s));
    const json::object before = h.status();
    CHECK(counter(before, "request_errors") == 0);

    // The fault persists until the daemon says the analyzer is failing.
    proxy.configure({{"fault", fault}, {"count", 100000}});
    INFO("fault " << fault << " in mode " << mode);
    REQUIRE(signals.waitFor("AlertRaised", "ANALYZER_FAULT", 60s));
    const json::object during = h.status();
    CHECK(counter(during, "request_errors") > counter(before, "request_errors"));
    if (!counterName.empty()) {
        CHECK(counter(during, counterName) > counter(before, counterName));
    }
    const json::object injected = proxy.stats();
    CHECK(injected.at("by_fault").as_object().at(fault).to_number<int>() >= 1);
    // A server that answers only with what cannot be used is a failing server
    // as much as a silent one: the model is not usable (State degraded), and
    // the health check, which such a server passes, does not hide it.
    CHECK(waitUntil([&] { return !h.status().at("model").at("usable").as_bool(); }, 30s));

    // Healed: ANALYZER_FAULT clears and answers flow again.
    proxy.configure({{"heal", true}});
    REQUIRE(signals.waitFor("AlertCleared", "ANALYZER_FAULT", 60s));
    const std::uint64_t errorsHealed = counter(h.status(), "request_errors");
    const std::uint64_t analysedHealed = counter(h.status(), "sequences_analysed");
    REQUIRE(waitUntil(
        [&] { return counter(h.status(), "sequences_analysed") >= analysedHealed + 2; }, 30s));
    const json::object after = h.status();
    // At most the requests in flight when it healed still met the fault.
    CHECK(counter(after, "request_errors") <= errorsHealed + 5);
    CHECK(waitUntil([&] { return h.property("State").as_string() == "running"; }, 20s));

    // No false alert: the awake driver raised nothing but ANALYZER_FAULT.
    signals.drain(500ms);
    const std::set<std::string> raised = signals.raised();
    CHECK(raised == std::set<std::string>{"ANALYZER_FAULT"});

    // Nothing lost: every sampled window (one a second of video) was analysed
    // (answered or failed), superseded by a newer one, or skipped as static;
    // at most two are in the pump (one asked, one waiting), one in the making,
    // and one may be dropped each time the file starts again (a camera restart).
    const std::uint64_t windows = counter(after, "frames_captured") / 10;
    const std::uint64_t accounted = counter(after, "sequences_analysed") +
                                    counter(after, "sequences_superseded") +
                                    counter(after, "sequences_skipped_static");
    INFO("windows " << windows << ", accounted " << accounted);
    CHECK(accounted + 3 + counter(after, "camera_restarts") >= windows);
    CHECK(h.daemon().running());
}

} // namespace

#define DMSD_MATRIX_RUN(fault, counterName)                                                        \
    TEST_CASE("run parallel: " fault, "[matrix]") {                                                \
        runMatrix("parallel", fault, counterName);                                                 \
    }                                                                                              \
    TEST_CASE("run combined: " fault, "[matrix]") {                                                \
        runMatrix("combined", fault, counterName);                                                 \
    }

DMSD_MATRIX_RUN("smuggle", "protocol_errors")
DMSD_MATRIX_RUN("short_body", "stalled_responses")
DMSD_MATRIX_RUN("headers_silence", "stalled_responses")
DMSD_MATRIX_RUN("drip", "stalled_responses")
DMSD_MATRIX_RUN("bad_chunk", "protocol_errors")
DMSD_MATRIX_RUN("bad_utf8", "")
DMSD_MATRIX_RUN("control_chars", "")
DMSD_MATRIX_RUN("huge_string", "")
DMSD_MATRIX_RUN("redirect", "")
DMSD_MATRIX_RUN("switching", "protocol_errors")
DMSD_MATRIX_RUN("http10", "protocol_errors")
DMSD_MATRIX_RUN("reset", "")
DMSD_MATRIX_RUN("wrong_model", "")
