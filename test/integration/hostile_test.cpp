// Hostile inputs against the real daemon: bytes that are not text, files that
// are not files, secrets, and SIGTERM in every state (docs/reliability.md).
#include <chrono>
#include <fstream>
#include <signal.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test/integration/harness.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr Rgb kGreen{40, 180, 60};

/// SIGTERM must end dmsd within 2 s in every state (the requirement);
/// the tests allow a margin for a loaded CI machine and print what they measured.
constexpr auto kStopRequired = 2s;
constexpr auto kStopMargin = 3s;

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream(path) << text;
}

struct Running {
    Harness h;
    explicit Running(const std::vector<std::string>& emulatorArgs = {"--slots", "4"},
                     const TestSeams& seams = {}, bool waitRunning = true) {
        h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{90.0, kGreen, true}}});
        h.startBus();
        h.startEmulator(emulatorArgs);
        std::filesystem::create_directories(h.confDir());
        h.writeConfig(h.baseConfig() + "sampling: { interval: 1s, frames_per_sequence: 2 }\n");
        h.startDaemon({}, seams);
        REQUIRE(h.waitReady(20s));
        if (waitRunning) {
            REQUIRE(waitUntil([&] { return h.property("State").as_string() == "running"; }, 20s));
        }
    }

    /// Sends SIGTERM and measures how long dmsd takes to exit (0 expected).
    void stopsInTime(const char* state) {
        const auto sent = std::chrono::steady_clock::now();
        h.daemon().signal(SIGTERM);
        const std::optional<int> code = h.daemon().wait(kStopRequired + kStopMargin + 10s);
        const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - sent);
        WARN(state << ": SIGTERM to exit " << took.count() << " ms");
        REQUIRE(code);
        CHECK(*code == 0);
        CHECK(took < kStopRequired + kStopMargin);
    }

    std::pair<int, std::string> reload() {
        return h.busctl({"--timeout=30", "call", "org.dmsd.DriverMonitor1",
                         "/org/dmsd/DriverMonitor1", "org.dmsd.DriverMonitor1", "Reload"});
    }
};

} // namespace

TEST_CASE("a drop-in that is not UTF-8 is rejected, D-Bus keeps answering") {
    Running r;
    // Before: the bytes reached ConfigError and the version; sd-bus refused them,
    // so properties and GetStatus failed and Reload never replied.
    writeFile(r.h.confDir() / "50-bytes.yaml",
              "version: \"it-\xff\xfe\"\nllm: { model: \"m\x1b[2J\" }\n");
    auto [code, out] = r.reload();
    INFO(out);
    CHECK(code != 0);
    CHECK(out.find("not valid UTF-8") != std::string::npos);
    const std::string error = r.h.property("ConfigError").as_string().c_str();
    CHECK(error.find("50-bytes.yaml:1:10: version: byte 0xFF is not valid UTF-8") !=
          std::string::npos);
    CHECK(error.find("llm.model: control character U+001B") != std::string::npos);
    CHECK(r.h.property("ConfigVersion").as_string() == "it-1");
    const json::object status = r.h.status();
    CHECK(status.at("config_version").as_string() == "it-1");
    CHECK(r.h.daemon().running());
    // The journal (its text form) carries no raw escape either.
    CHECK(r.h.daemonLog().find('\x1b') == std::string::npos);
}

TEST_CASE("a FIFO as the main configuration is refused at once") {
    Harness h;
    std::filesystem::create_directories(h.configPath().parent_path());
    REQUIRE(::mkfifo(h.configPath().c_str(), 0600) == 0);
    // Before: `dmsd run` blocked in open() for ever.
    ChildProcess run({{DMSD_BINARY, "run", "--config", h.configPath().string()}, {}, true, false});
    const std::optional<int> code = run.wait(10s);
    REQUIRE(code);
    CHECK(*code == 2);
    CHECK(run.readAll(1s).find("is a FIFO (named pipe), not a regular file") != std::string::npos);
}

TEST_CASE("SIGTERM ends dmsd in time after a FIFO drop-in, its reload rejected") {
    Running r;
    REQUIRE(::mkfifo((r.h.confDir() / "50-pipe.yaml").c_str(), 0600) == 0);
    auto [code, out] = r.reload();
    INFO(out);
    CHECK(code != 0);
    CHECK(out.find("a drop-in must be a regular file") != std::string::npos);
    CHECK(r.h.property("ConfigVersion").as_string() == "it-1");
    r.stopsInTime("FIFO drop-in");
}

TEST_CASE("SIGTERM ends dmsd in time while the model server hangs") {
    Running r({"--slots", "4", "--fault", "stall=1"}, {}, false);
    // Requests are in flight and never answered.
    REQUIRE(waitUntil(
        [&] {
            const json::object stats = r.h.emulatorStats();
            const json::object& faults = stats.at("faults").as_object();
            return faults.contains("stall") && faults.at("stall").to_number<int>() > 0;
        },
        20s));
    r.stopsInTime("hung model server");
}

TEST_CASE("SIGTERM ends dmsd in time with a stalled camera") {
    TestSeams seams;
    seams.stallSamplerAfter = 15;
    Running r({"--slots", "4"}, seams, false);
    // Let the sampler reach its stall.
    REQUIRE(waitUntil(
        [&] { return r.h.status().at("counters").at("frames_captured").to_number<int>() > 30; },
        20s));
    r.stopsInTime("stalled camera");
}

TEST_CASE("SIGTERM ends dmsd in time in the middle of a reload") {
    Running r;
    writeFile(r.h.confDir() / "50-next.yaml",
              "version: it-2\ncapture: { width: 160, height: 120 }\nllm: { timeout: 6s }\n");
    r.h.daemon().signal(SIGHUP);
    r.stopsInTime("mid-reload");
}

TEST_CASE("secrets given in the configuration never come out") {
    const std::string secret = "Pa55word-f1eet";
    Running r;
    writeFile(r.h.confDir() / "60-secret.yaml",
              "version: it-secret\nllm:\n  url: \"http://fleet:" + secret + "@127.0.0.1:11434\"\n");
    auto [code, out] = r.reload();
    INFO(out);
    CHECK(code != 0);
    CHECK(out.find(secret) == std::string::npos);
    CHECK(out.find("***@127.0.0.1:11434") != std::string::npos);
    const std::string error = r.h.property("ConfigError").as_string().c_str();
    CHECK(error.find("***") != std::string::npos);
    CHECK(error.find(secret) == std::string::npos);
    CHECK(json::serialize(r.h.status()).find(secret) == std::string::npos);
    auto [allCode, all] = r.h.busctl({"--json=short", "get-property", "org.dmsd.DriverMonitor1",
                                      "/org/dmsd/DriverMonitor1", "org.dmsd.DriverMonitor1",
                                      "ConfigError", "ConfigVersion", "State"});
    CHECK(all.find(secret) == std::string::npos);
    // check-config over the same files.
    auto [checkCode, check] =
        runCommand({DMSD_BINARY, "check-config", r.h.configPath().string()}, 30s);
    CHECK(checkCode == 1);
    CHECK(check.find(secret) == std::string::npos);
    // analyze configured with it (refused: nothing analysed, nothing leaked).
    auto [analyzeCode, analyze] = runCommand(
        {DMSD_BINARY, "analyze", "--config", r.h.configPath().string(), r.h.videoPath().string()},
        60s);
    CHECK(analyzeCode == 2);
    CHECK(analyze.find(secret) == std::string::npos);
    r.stopsInTime("after a rejected secret");
    // Everything the daemon wrote (the journal's text form) and its snapshot sidecars.
    CHECK(r.h.daemonLog().find(secret) == std::string::npos);
    if (std::filesystem::exists(r.h.snapshotDir())) {
        for (const auto& entry : std::filesystem::recursive_directory_iterator(r.h.snapshotDir())) {
            if (entry.path().extension() == ".json") {
                std::ifstream in(entry.path());
                const std::string text((std::istreambuf_iterator<char>(in)), {});
                CHECK(text.find(secret) == std::string::npos);
            }
        }
    }
}
