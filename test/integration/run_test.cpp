// dmsd run end to end: real emulator, real bus, real daemon process.
#include <algorithm>
#include <fstream>
#include <signal.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "notify/can_frame.h"
#include "test/integration/harness.h"
#include "test/support/can_listener.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr Rgb kGreen{40, 180, 60};
constexpr Rgb kRed{220, 30, 30};

/// Red frames are a sleepy driver; everything else the emulator's awake default.
std::string writeSleepyScript(const Harness& h) {
    const auto path = h.dir() / "script.json";
    std::ofstream(path) << R"({"rules":[{"analysis":"face_state","color":[220,30,30],"tolerance":90,
      "answer":{"state":"SLEEPY","eyes_closed":true,"yawning":false,"confidence":0.9}}]})";
    return path.string();
}

/// Alert settings short enough for a test video of a few seconds.
const char* kFastAlerts = R"(sampling:
  interval: 1s
  frames_per_sequence: 2
  max_static_skip: 3s
alerts:
  drowsiness: { raise_after: 2s, clear_after: 2s, critical_after: 60s, cooldown: 5s }
  camera_fault: { raise_after: 1s, clear_after: 1s, critical_after: 60s, cooldown: 1s }
  analyzer_fault: { raise_after: 1s, clear_after: 1s, critical_after: 60s, cooldown: 1s }
)";

double seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

} // namespace

TEST_CASE("a sleepy segment raises DROWSINESS and clears it, over D-Bus, with systemd notify") {
    Harness h;
    // 4 s awake, 8 s sleepy, 8 s awake; played in real time like a camera.
    h.makeVideo({320,
                 240,
                 10,
                 VideoContainer::Mp4H264,
                 {{4.0, kGreen, false}, {8.0, kRed, false}, {8.0, kGreen, false}}});
    h.startBus();
    h.startEmulator({"--slots", "4", "--latency-ms", "50", "--script", writeSleepyScript(h)});
    h.writeConfig(h.baseConfig() + kFastAlerts);
    auto monitor = h.monitor();
    h.startDaemon({{"WATCHDOG_USEC", "1000000"}});

    const auto ready = h.waitReady(20s);
    REQUIRE(ready);
    auto raised = waitSignal(*monitor, "AlertRaised", "DROWSINESS", 25s);
    REQUIRE(raised);
    auto cleared = waitSignal(*monitor, "AlertCleared", "DROWSINESS", 25s);
    REQUIRE(cleared);

    // The sleepy segment starts 4 s into the video and lasts 8 s: the alert is
    // raised after raise_after (2 s), within one interval and the answer's
    // latency, and cleared clear_after (2 s) after the segment ends.
    const double raisedAt = seconds(raised->at - *ready);
    const double clearedAt = seconds(cleared->at - *ready);
    INFO("raised " << raisedAt << " s and cleared " << clearedAt << " s after READY=1");
    CHECK(raisedAt >= 4.0 + 2.0 - 1.0);
    CHECK(raisedAt <= 4.0 + 2.0 + 4.0);
    CHECK(clearedAt >= 12.0 + 2.0 - 1.0);
    CHECK(clearedAt <= 12.0 + 2.0 + 5.0);
    REQUIRE(raised->args.size() == 5);
    CHECK(raised->args[1].as_string() == "warning");
    CHECK(raised->args[2].as_double() > 0.5);
    CHECK(json::parse(raised->args[4].as_string()).is_object());

    // systemd saw readiness with a status line, and watchdog pings.
    CHECK(h.notify().waitFor([](const std::string& m) { return hasLine(m, "WATCHDOG=1"); }, 5s));

    const json::object status = h.status();
    CHECK(status.at("config_version").as_string() == "it-1");
    CHECK(status.at("counters").at("sequences_analysed").to_number<int>() > 3);
    CHECK(status.at("counters").at("frames_captured").to_number<int>() > 50);
    CHECK(h.property("ConfigVersion").as_string() == "it-1");

    // The raise kept a snapshot: the frames and a sidecar.
    bool snapshot = false;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(h.snapshotDir())) {
        snapshot = snapshot || entry.path().extension() == ".jpg";
    }
    CHECK(snapshot);

    // SIGTERM: STOPPING=1 and a clean, quick exit.
    const auto stopAt = std::chrono::steady_clock::now();
    h.daemon().signal(SIGTERM);
    CHECK(h.notify().waitFor([](const std::string& m) { return hasLine(m, "STOPPING=1"); }, 5s));
    auto code = h.daemon().wait(10s);
    REQUIRE(code);
    CHECK(*code == 0);
    INFO("stopped in " << seconds(std::chrono::steady_clock::now() - stopAt) << " s");
}

TEST_CASE("with llm.api openai and an API key the daemon asks /v1/chat/completions and never "
          "shows the key") {
    Harness h;
    h.makeVideo({320,
                 240,
                 10,
                 VideoContainer::Mp4H264,
                 {{3.0, kGreen, false}, {8.0, kRed, false}, {4.0, kGreen, false}}});
    h.startBus();
    const std::string secret = "sk-integration-0123456789";
    h.startEmulator({"--slots", "4", "--latency-ms", "50", "--script", writeSleepyScript(h),
                     "--api-key", secret});
    const auto key = h.dir() / "model.key";
    std::ofstream(key) << secret << '\n';
    std::filesystem::permissions(key, std::filesystem::perms(0600));
    std::filesystem::create_directories(h.confDir());
    // A drop-in, as an installation would add it to the shipped file.
    std::ofstream(h.confDir() / "50-openai.yaml")
        << "llm: { api: openai, api_key_file: \"" << key.string() << "\" }\n";
    h.writeConfig(h.baseConfig() + kFastAlerts);
    auto monitor = h.monitor();
    h.startDaemon();
    REQUIRE(h.waitReady(20s));
    REQUIRE(waitSignal(*monitor, "AlertRaised", "DROWSINESS", 25s));

    const json::object status = h.status();
    CHECK(status.at("counters").at("request_errors").to_number<int>() == 0);
    CHECK(status.at("counters").at("truncated_answers").to_number<int>() == 0);
    CHECK(json::serialize(status).find(secret) == std::string::npos);
    CHECK(h.emulatorStats().at("unauthorized").to_number<int>() == 0);
    int completions = 0;
    std::ifstream log(h.emulatorLog());
    for (std::string line; std::getline(log, line);) {
        const json::object entry = json::parse(line).as_object();
        CHECK(entry.at("path").as_string().starts_with("/v1/"));
        completions += entry.at("path") == "/v1/chat/completions" ? 1 : 0;
    }
    CHECK(completions > 3);
    h.daemon().signal(SIGTERM);
    REQUIRE(h.daemon().wait(10s));
    CHECK(h.daemonLog().find(secret) == std::string::npos);
}

TEST_CASE("alerts and heartbeats leave the real daemon as CAN frames") {
    Harness h;
    h.makeVideo({320,
                 240,
                 10,
                 VideoContainer::Mp4H264,
                 {{3.0, kGreen, false}, {7.0, kRed, false}, {20.0, kGreen, false}}});
    h.startBus();
    h.startEmulator({"--slots", "4", "--latency-ms", "50", "--script", writeSleepyScript(h)});
    h.writeConfig(h.baseConfig() + kFastAlerts);
    std::filesystem::create_directories(h.confDir());
    std::ofstream(h.confDir() / "50-can.yaml")
        << "notify:\n  can: { enabled: true, interface: vcan0, heartbeat: 500ms }\n";
    // The frames the notifier would write to CAN_RAW arrive here instead.
    CanListener bus(h.dir() / "can.sock");
    TestSeams seams;
    seams.canSocket = bus.path();
    h.startDaemon({}, seams);
    REQUIRE(h.waitReady(20s));

    const auto alert = [](const ReceivedCanFrame& f, dmsd::AlertLevel level) {
        const auto fields = dmsd::decodeAlertFrame(f.data);
        return f.id == 0x6D0 && fields && fields->kind == dmsd::AlertKind::Drowsiness &&
               fields->level == level;
    };
    const auto heartbeat = bus.waitFor(
        [](const ReceivedCanFrame& f) {
            const auto fields = dmsd::decodeHeartbeatFrame(f.data);
            return f.id == 0x6D1 && fields && fields->cameraOk && fields->modelServerOk;
        },
        20s);
    CHECK(heartbeat);
    const auto raised = bus.waitFor(
        [&](const ReceivedCanFrame& f) { return alert(f, dmsd::AlertLevel::Warning); }, 25s);
    REQUIRE(raised);
    const auto fields = dmsd::decodeAlertFrame(raised->data);
    REQUIRE(fields);
    CHECK(fields->face == dmsd::FaceState::Sleepy);
    CHECK(fields->confidence >= 50);
    CHECK(fields->activeMask == 1); // bit (code 1 - 1): DROWSINESS only
    CHECK(dmsd::canCrcValid(raised->data));
    const auto cleared = bus.waitFor(
        [&](const ReceivedCanFrame& f) { return alert(f, dmsd::AlertLevel::Cleared); }, 25s);
    REQUIRE(cleared);
    CHECK(cleared->at > raised->at);

    // GetStatus counts the frames and times the alert path of the raise (the
    // clear comes from the engine's tick, not from an answer's arrival).
    const json::object status = h.status();
    CHECK(status.at("can").at("state").as_string() == "up");
    CHECK(status.at("can").at("frames_sent").to_number<int>() >= 3);
    const json::object& path = status.at("alert_path_us").as_object();
    CHECK(path.at("events").to_number<int>() >= 1);
    CHECK(path.at("p50").to_number<double>() > 0.0);
    CHECK(path.at("max").to_number<double>() >= path.at("p99").to_number<double>());
}

TEST_CASE("a stalled worker makes the watchdog ask systemd for a restart") {
    Harness h;
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{30.0, kGreen, true}}});
    h.startBus();
    h.startEmulator({"--slots", "4"});
    h.writeConfig(h.baseConfig() + kFastAlerts);
    // The sampler thread stops after its first few frames (dmsd-testbed).
    TestSeams seams;
    seams.stallSamplerAfter = 15;
    h.startDaemon({{"WATCHDOG_USEC", "1000000"}}, seams);
    REQUIRE(h.waitReady(20s));
    CHECK(h.notify().waitFor([](const std::string& m) { return hasLine(m, "WATCHDOG=trigger"); },
                             20s));
}

TEST_CASE("the model server going away raises ANALYZER_FAULT, its return clears it") {
    Harness h;
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{60.0, kGreen, true}}});
    h.startBus();
    h.startEmulator({"--slots", "4"});
    const int port = h.emulatorPort();
    h.writeConfig(h.baseConfig() + kFastAlerts);
    auto monitor = h.monitor();
    h.startDaemon();
    REQUIRE(h.waitReady(20s));
    REQUIRE(waitUntil([&] { return h.property("State").as_string() == "running"; }, 20s));

    h.stopEmulator();
    REQUIRE(waitSignal(*monitor, "AlertRaised", "ANALYZER_FAULT", 30s));
    CHECK(h.property("State").as_string() == "degraded");

    h.startEmulator({"--slots", "4"}, port);
    REQUIRE(waitSignal(*monitor, "AlertCleared", "ANALYZER_FAULT", 30s));
    CHECK(waitUntil([&] { return h.property("State").as_string() == "running"; }, 20s));
    CHECK(h.daemon().running());
}

TEST_CASE("the video source failing raises CAMERA_FAULT, its return clears it") {
    Harness h;
    // A short clip: in `run`, a file plays like a camera and is reopened at its end.
    const VideoSpec spec{320, 240, 10, VideoContainer::Mp4H264, {{2.0, kGreen, true}}};
    h.makeVideo(spec);
    h.startBus();
    h.startEmulator({"--slots", "4"});
    h.writeConfig(h.baseConfig() + kFastAlerts);
    auto monitor = h.monitor();
    h.startDaemon();
    REQUIRE(h.waitReady(20s));

    const auto saved = h.dir() / "saved.mp4";
    std::filesystem::rename(h.videoPath(), saved);
    REQUIRE(waitSignal(*monitor, "AlertRaised", "CAMERA_FAULT", 30s));
    std::filesystem::rename(saved, h.videoPath());
    REQUIRE(waitSignal(*monitor, "AlertCleared", "CAMERA_FAULT", 40s));
    CHECK(h.daemon().running());
}

namespace {

/// The daemon's GetStatus `model.context` once the budget was measured and fitted.
json::object waitBudget(const Harness& h) {
    json::object context;
    std::string last;
    const bool measured = waitUntil(
        [&] {
            try {
                context = h.status().at("model").at("context").as_object();
            } catch (const std::exception& e) {
                last = e.what(); // not on the bus yet
                return false;
            }
            return context.at("state") != "pending";
        },
        30s);
    INFO(last);
    INFO(json::serialize(context));
    REQUIRE(measured);
    REQUIRE(context.at("state") == "measured");
    return context;
}

std::vector<json::object> chatLines(const Harness& h) {
    std::vector<json::object> lines;
    std::ifstream log(h.emulatorLog());
    for (std::string line; std::getline(log, line);) {
        json::object entry = json::parse(line).as_object();
        if (entry.at("path") == "/api/chat" || entry.at("path") == "/v1/chat/completions") {
            lines.push_back(std::move(entry));
        }
    }
    return lines;
}

/// Chat requests asking an analysis (not the warm-up, not the budget's
/// measurement, which asks for one token).
bool asksAnalysis(const json::object& line) {
    const json::value* analysis = line.if_contains("analysis");
    const json::value* done = line.if_contains("done_reason");
    return analysis != nullptr && analysis->is_string() && analysis->as_string() != "unknown" &&
           (done == nullptr || *done != "length");
}

const char* kBudgetSampling = R"(sampling:
  interval: 1s
  frames_per_sequence: 4
  max_static_skip: 1s
)";

} // namespace

TEST_CASE("a context the frames overflow is fitted at start: Ollama's num_ctx is raised") {
    Harness h;
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{20.0, kGreen, false}}});
    h.startBus();
    // 1500 tokens per image: four images are beyond num_ctx 2048, which Ollama
    // (and the emulator) truncates, keeping the prompt's tail.
    h.startEmulator({"--slots", "4", "--tokens-per-image", "1500", "--overflow", "truncate"});
    std::filesystem::create_directories(h.confDir());
    std::ofstream(h.confDir() / "50-budget.yaml")
        << "llm: { options: { num_ctx: 2048 }, context: { fit: true, max_num_ctx: 16384 } }\n";
    h.writeConfig(h.baseConfig() + kBudgetSampling);
    h.startDaemon();
    REQUIRE(h.waitReady(20s));
    const json::object context = waitBudget(h);
    INFO(json::serialize(context));
    CHECK(context.at("per_image") == 1500);
    CHECK(context.at("context") == 2048);
    CHECK(context.at("fits") == true);
    const std::int64_t needed = context.at("needed").to_number<std::int64_t>();
    CHECK(needed == 4 * 1500 + context.at("prompt").to_number<std::int64_t>() + 256);
    const std::int64_t numCtx = context.at("num_ctx").to_number<std::int64_t>();
    CHECK(numCtx >= needed);
    CHECK(numCtx < needed + 256);
    CHECK(context.at("frames_per_sequence").is_null());
    CHECK(context.at("layout").is_null());
    CHECK_THAT(std::string(context.at("change").as_string()),
               Catch::StartsWith("llm.options.num_ctx 2048 -> "));

    // After the fitted client's warm-up (the model loaded again with the new
    // num_ctx), four-image requests are answered whole.
    REQUIRE(waitUntil(
        [&] {
            const auto lines = chatLines(h);
            return std::count_if(lines.begin(), lines.end(), [](const json::object& l) {
                       return asksAnalysis(l) && l.at("images") == 4 && l.at("truncated") == false;
                   }) >= 5;
        },
        30s));
    double fittedLoad = -1;
    int loads = 0;
    for (const json::object& line : chatLines(h)) {
        if (line.at("load_only") == true && ++loads == 2) {
            fittedLoad = line.at("t_arrival_ms").to_number<double>();
        }
    }
    REQUIRE(fittedLoad >= 0);
    for (const json::object& line : chatLines(h)) {
        if (line.at("t_arrival_ms").to_number<double>() > fittedLoad) {
            INFO(json::serialize(line));
            CHECK(line.at("truncated") == false);
        }
    }
    const std::string log = h.daemonLog();
    CHECK(log.find("Context budget of model llava:7b-v1.6-mistral-q2_K: 1500 tokens per image") !=
          std::string::npos);
    CHECK(log.find("fitted: llm.options.num_ctx 2048 -> ") != std::string::npos);
    h.daemon().signal(SIGTERM);
    REQUIRE(h.daemon().wait(10s));
}

TEST_CASE("a context the frames overflow is fitted at start: OpenAI gets fewer frames") {
    Harness h;
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{20.0, kGreen, false}}});
    h.startBus();
    // The server's context is fixed (llama.cpp's --ctx-size): 4096 tokens, and
    // a prompt beyond it is cut (--overflow truncate), as Ollama's /v1 does.
    h.startEmulator({"--slots", "4", "--tokens-per-image", "1000", "--context", "4096",
                     "--overflow", "truncate"});
    std::filesystem::create_directories(h.confDir());
    std::ofstream(h.confDir() / "50-budget.yaml")
        << "llm: { api: openai, context: { size: 4096 } }\n";
    h.writeConfig(h.baseConfig() + kBudgetSampling);
    h.startDaemon();
    REQUIRE(h.waitReady(20s));
    const json::object context = waitBudget(h);
    INFO(json::serialize(context));
    CHECK(context.at("per_image") == 1000);
    CHECK(context.at("context") == 4096);
    CHECK(context.at("fits") == true);
    CHECK(context.at("num_ctx").is_null()); // not the server's to change
    const bool fewerFrames = !context.at("frames_per_sequence").is_null();
    const bool mosaic = context.at("layout") == "mosaic";
    CHECK((fewerFrames || mosaic));
    const std::int64_t images =
        mosaic ? 1 : context.at("frames_per_sequence").to_number<std::int64_t>();
    CHECK(images < 4);

    // The frame path was rebuilt: requests carry the fitted images, whole.
    REQUIRE(waitUntil(
        [&] {
            const auto lines = chatLines(h);
            return std::count_if(lines.begin(), lines.end(), [&](const json::object& l) {
                       return asksAnalysis(l) && l.at("images") == images;
                   }) >= 5;
        },
        30s));
    for (const json::object& line : chatLines(h)) {
        INFO(json::serialize(line));
        if (asksAnalysis(line) && line.at("images") == images) {
            CHECK(line.at("truncated") == false);
        }
        if (line.at("truncated") == true) {
            CHECK(line.at("images") == 4); // only before the fit
        }
    }
    h.daemon().signal(SIGTERM);
    REQUIRE(h.daemon().wait(10s));
}
