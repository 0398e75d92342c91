// The fault matrix for `dmsd analyze` (docs/reliability.md): the real binary,
// its model server the hostile proxy in front of the Ollama emulator, the
// first requests of the batch meeting the fault, the rest healed. For each
// fault, in llm.mode parallel and combined: every window has its line, the
// fault is reported as {"error"} objects (and counted in the summary), no
// alert but ANALYZER_FAULT, and the last windows are answered again.
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test/hostile/hostile_client.h"
#include "test/support/child_process.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

/// Generation requests that meet the fault: enough that some request fails
/// for good although retried (up to max_in_flight 4 at once, each retried once
/// where the error allows), few enough that the last windows are answered.
int faulted(const std::string& mode) {
    return mode == "combined" ? 3 : 12;
}

/// An awake driver, moving (never static): one window a second.
const std::filesystem::path& video() {
    static TempDir dir("dmsd-matrix-videos");
    static const std::filesystem::path path = [] {
        const auto p = dir / "awake.mp4";
        generateVideo(p, {160, 120, 10, VideoContainer::Mp4H264, {{8.0, {40, 180, 60}, true}}});
        return p;
    }();
    return path;
}

struct Run {
    int exitCode = -1;
    std::vector<json::object> sequences;
    json::object summary;
    std::string raw;
};

Run analyze(const TempDir& dir, const std::string& url, const std::string& mode) {
    const auto config = dir / fmt::format("dmsd-{}.yaml", mode);
    std::ofstream(config) << fmt::format(
        "version: \"matrix\"\n"
        "vision: {{ enabled: false }}\n" // test:ball has no face
        "capture: {{ source: \"test:ball\", width: 160, height: 120, fps: 10 }}\n"
        "sampling: {{ interval: 1s, frames_per_sequence: 2, max_static_skip: 3s }}\n"
        "llm: {{ url: \"{}\", mode: {}, max_in_flight: 4, timeout: 4s }}\n"
        "notify: {{ dbus: {{ enabled: false }}, can: {{ enabled: false }}, "
        "snapshots: {{ enabled: false }} }}\n",
        url, mode);
    ChildProcess child(ChildProcess::Options{
        {DMSD_BINARY, "analyze", "--config", config.string(), "--quiet", video().string()},
        {},
        false,
        false});
    Run run;
    run.raw = child.readAll(120s);
    const auto code = child.wait(10s);
    REQUIRE(code);
    run.exitCode = *code;
    std::istringstream in(run.raw);
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        REQUIRE_FALSE(ec);
        json::object o = v.as_object();
        if (o.at("type") == "sequence") {
            run.sequences.push_back(std::move(o));
        } else {
            run.summary = std::move(o);
        }
    }
    return run;
}

/// Windows of the video, from a run against the emulator itself (per mode).
std::size_t windows(const std::string& mode, int emulatorPort) {
    static std::map<std::string, std::size_t> known;
    if (!known.contains(mode)) {
        TempDir dir("dmsd-matrix-ref");
        const Run reference = analyze(dir, fmt::format("http://127.0.0.1:{}", emulatorPort), mode);
        REQUIRE(reference.exitCode == 0);
        known[mode] = reference.sequences.size();
    }
    return known[mode];
}

int errorsIn(const json::object& sequence) {
    int n = 0;
    for (const auto& [name, answer] : sequence.at("analyses").as_object()) {
        (void)name;
        n += answer.as_object().contains("error") ? 1 : 0;
    }
    return n;
}

class EmulatorProcess {
public:
    EmulatorProcess()
        : process_(std::vector<std::string>{DMSD_EMULATOR, "--port", "0", "--slots", "4",
                                            "--preloaded", "--seed", "7"}) {
        auto line = process_.readLine(20s);
        const std::string prefix = "listening on http://127.0.0.1:";
        REQUIRE(line);
        REQUIRE(line->rfind(prefix, 0) == 0);
        port_ = std::stoi(line->substr(prefix.size()));
    }
    int port() const { return port_; }

private:
    ChildProcess process_;
    int port_ = 0;
};

void analyzeMatrix(const std::string& mode, const std::string& fault) {
    TempDir dir("dmsd-matrix");
    EmulatorProcess emulator;
    const std::size_t expected = windows(mode, emulator.port());
    REQUIRE(expected >= 6);
    HostileProxyProcess proxy(emulator.port(), dir / "hostile.jsonl",
                              {"--fault", fault, "--count", std::to_string(faulted(mode))});
    const Run run = analyze(dir, proxy.url(), mode);
    INFO("fault " << fault << " in mode " << mode << "\n" << run.raw);

    // Nothing lost: every window has its line, the summary counts them.
    REQUIRE(run.summary.at("type") == "summary");
    CHECK(run.summary.at("status") == "ok");
    CHECK(run.sequences.size() == expected);
    CHECK(run.summary.at("sequences_analysed").to_number<std::size_t>() == run.sequences.size());

    // The fault met requests and is reported where their answers belong.
    CHECK(proxy.stats().at("by_fault").as_object().at(fault).to_number<int>() >= 1);
    int errors = 0;
    for (const auto& sequence : run.sequences) {
        errors += errorsIn(sequence);
    }
    // A reset is retried (with backoff, up to six attempts, when no byte of
    // the answer had been read): the first faults may all be absorbed, and
    // the answers that came are whole ones. Every other fault fails requests.
    if (fault != "reset") {
        CHECK(errors >= 1);
    }
    CHECK(run.summary.at("failures").to_number<int>() == errors);
    // Exit 1 exactly when some sequence had every analysis failing.
    CHECK(run.exitCode == (run.summary.at("sequences_failed").to_number<int>() > 0 ? 1 : 0));

    // No false alert: an awake driver, whatever the server sent.
    for (const auto& sequence : run.sequences) {
        for (const auto& alert : sequence.at("alerts").as_array()) {
            CHECK(alert.at("kind") == "ANALYZER_FAULT");
        }
    }
    for (const auto& [kind, n] : run.summary.at("alerts_raised").as_object()) {
        (void)n;
        CHECK(kind == "ANALYZER_FAULT");
    }
    CHECK(run.summary.at("alerts_active_at_end").as_array().empty());

    // Healed: the last windows are answered in full.
    REQUIRE(run.sequences.size() >= 2);
    CHECK(errorsIn(run.sequences.back()) == 0);
    CHECK(errorsIn(run.sequences[run.sequences.size() - 2]) == 0);
}

} // namespace

#define DMSD_MATRIX_ANALYZE(fault)                                                                 \
    TEST_CASE("analyze parallel: " fault, "[matrix]") {                                            \
        analyzeMatrix("parallel", fault);                                                          \
    }                                                                                              \
    TEST_CASE("analyze combined: " fault, "[matrix]") {                                            \
        analyzeMatrix("combined", fault);                                                          \
    }

DMSD_MATRIX_ANALYZE("smuggle")
DMSD_MATRIX_ANALYZE("short_body")
DMSD_MATRIX_ANALYZE("headers_silence")
DMSD_MATRIX_ANALYZE("drip")
DMSD_MATRIX_ANALYZE("bad_chunk")
DMSD_MATRIX_ANALYZE("bad_utf8")
DMSD_MATRIX_ANALYZE("control_chars")
DMSD_MATRIX_ANALYZE("huge_string")
DMSD_MATRIX_ANALYZE("redirect")
DMSD_MATRIX_ANALYZE("switching")
DMSD_MATRIX_ANALYZE("http10")
DMSD_MATRIX_ANALYZE("reset")
DMSD_MATRIX_ANALYZE("wrong_model")
