#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "config/loader.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

ConfigLoad load(const std::string& text) {
    return loadConfigSources({{"main.yaml", text}});
}

ConfigLoad load(const std::vector<ConfigSource>& sources) {
    return loadConfigSources(sources);
}

std::vector<std::string> messages(const ConfigLoad& result) {
    std::vector<std::string> out;
    for (const ConfigError& error : result.errors) {
        out.push_back(error.format());
    }
    return out;
}

/// The single error of \a text, formatted.
std::string onlyError(const std::string& text) {
    const ConfigLoad result = load(text);
    INFO(text);
    CHECK_FALSE(result.config);
    REQUIRE(result.errors.size() == 1);
    return result.errors[0].format();
}

Config valid(const std::string& text) {
    const ConfigLoad result = load(text);
    INFO(text);
    INFO(formatErrors(result.errors));
    REQUIRE(result.config);
    return *result.config;
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

} // namespace

TEST_CASE("absent keys keep the contract's defaults", "[config]") {
    for (const char* text : {"", "# nothing\n", "capture:\n", "{}", "llm: {}\n"}) {
        const Config config = valid(text);
        CHECK(effectiveConfigJson(config, false) == effectiveConfigJson(Config{}, false));
        CHECK(config.version.starts_with("sha256:"));
        CHECK(config.version.size() == 7 + 12);
    }
    const Config config = valid("");
    CHECK(config.capture.source == "v4l2:/dev/video0");
    CHECK(config.sampling.interval == 2s);
    CHECK(config.llm.model.keepAlive == 5min);
    CHECK(config.alerts[AlertKind::ImpairedDriving].cooldown ==
          defaultAlertRule(AlertKind::ImpairedDriving).cooldown);
}

TEST_CASE("configs/dmsd.yaml states exactly the built-in defaults", "[config]") {
    const ConfigLoad result = loadConfigFiles({DMSD_SOURCE_DIR "/configs/dmsd.yaml"});
    INFO(formatErrors(result.errors));
    REQUIRE(result.config);
    CHECK(result.config->version == "factory-1");
    CHECK(effectiveConfigJson(*result.config, false) == effectiveConfigJson(Config{}, false));
}

TEST_CASE("every key of the contract and the extensions is read", "[config]") {
    const Config c = valid(R"(
version: "fleet 7"
capture: { source: "test:ball", width: 320, height: 240, fps: 30 }
sampling: { interval: 1500ms, frames_per_sequence: 3, motion_threshold: 0.05, max_static_skip: 1m }
encode: { jpeg_quality: 70, layout: mosaic }
llm:
  url: "http://gpu:8443"
  model: "llava:13b"
  mode: combined
  max_in_flight: 2
  timeout: 30
  keep_alive: 1h
  options: { temperature: 0.2, top_k: 20, top_p: 0.9, num_ctx: 4096, num_predict: 128, seed: 42 }
  cache: { entries: 0, ttl: 2m }
  connect_timeout: 500ms
  first_byte_timeout: 10s
  idle_timeout: 5s
  max_response_bytes: 65536
analyses:
  attention: { enabled: false }
  general_scene: { prompt: "Describe the cabin." }
alerts:
  phone_use: { raise_after: 1s, clear_after: 2s, critical_after: 4s, cooldown: 0 }
  analyzer_fault: { raise_after: 20s, critical_after: 20s }
notify:
  dbus: { enabled: false, bus: "unix:path=/tmp/bus" }
  can: { enabled: true, interface: vcan0, alert_id: 256, heartbeat_id: 0x7FF, heartbeat: 250ms }
  snapshots: { enabled: false, dir: snaps, max_files: 5 }
)");
    CHECK(c.version == "fleet 7");
    CHECK(c.capture.source == "test:ball");
    CHECK(c.capture.width == 320);
    CHECK(c.capture.height == 240);
    CHECK(c.capture.fps == 30);
    CHECK(c.sampling.interval == 1500ms);
    CHECK(c.sampling.framesPerSequence == 3);
    CHECK(c.sampling.motionThreshold == Approx(0.05));
    CHECK(c.sampling.maxStaticSkip == 1min);
    CHECK(c.encode.jpegQuality == 70);
    CHECK(c.encode.layout == ImageLayout::Mosaic);
    CHECK(c.llm.server.url == "http://gpu:8443");
    CHECK(c.llm.model.name == "llava:13b");
    CHECK(c.llm.scheduler.mode == LlmMode::Combined);
    CHECK(c.llm.server.maxInFlight == 2);
    CHECK(c.llm.server.timeout == 30s);
    CHECK(c.llm.model.keepAlive == 1h);
    CHECK(c.llm.model.options.temperature == Approx(0.2));
    CHECK(c.llm.model.options.topK == 20);
    CHECK(c.llm.model.options.topP == Approx(0.9));
    CHECK(c.llm.model.options.numCtx == 4096);
    CHECK(c.llm.model.options.numPredict == 128);
    CHECK(c.llm.model.options.seed == 42);
    CHECK(c.llm.scheduler.cache.entries == 0);
    CHECK(c.llm.scheduler.cache.ttl == 2min);
    CHECK(c.llm.server.connectTimeout == 500ms);
    CHECK(c.llm.server.firstByteTimeout == 10s);
    CHECK(c.llm.server.idleTimeout == 5s);
    CHECK(c.llm.server.maxResponseBytes == 65536);
    CHECK_FALSE(c.analyses[AnalysisKind::Attention].enabled);
    CHECK(c.analyses[AnalysisKind::FaceState].enabled);
    CHECK(c.analyses[AnalysisKind::GeneralScene].prompt == "Describe the cabin.");
    const AlertRule& phone = c.alerts[AlertKind::PhoneUse];
    CHECK(phone.raiseAfter == 1s);
    CHECK(phone.clearAfter == 2s);
    CHECK(phone.criticalAfter == 4s);
    CHECK(phone.cooldown == 0s);
    CHECK(c.alerts[AlertKind::AnalyzerFault].raiseAfter == 20s);
    CHECK(c.alerts[AlertKind::AnalyzerFault].clearAfter ==
          defaultAlertRule(AlertKind::AnalyzerFault).clearAfter);
    CHECK_FALSE(c.notify.dbus.enabled);
    CHECK(c.notify.dbus.bus == "unix:path=/tmp/bus");
    CHECK(dbusBusKind(c.notify.dbus) == DbusBusKind::Address);
    CHECK(c.notify.can.enabled);
    CHECK(c.notify.can.interface == "vcan0");
    CHECK(c.notify.can.alertId == 256);
    CHECK(c.notify.can.heartbeatId == 0x7FF);
    CHECK(c.notify.can.heartbeat == 250ms);
    CHECK_FALSE(c.notify.snapshots.enabled);
    CHECK(c.notify.snapshots.dir == "snaps");
    CHECK(c.notify.snapshots.maxFiles == 5);
}

TEST_CASE("all eight alert kinds are configurable", "[config][alerts]") {
    std::string text = "alerts:\n";
    for (AlertKind kind : kAllAlertKinds) {
        text += fmt::format("  {}: {{ raise_after: 1s, clear_after: 2s, critical_after: 3s, "
                            "cooldown: 4s }}\n",
                            alertKindKey(kind));
    }
    const Config config = valid(text);
    for (AlertKind kind : kAllAlertKinds) {
        CHECK(config.alerts[kind].raiseAfter == 1s);
        CHECK(config.alerts[kind].cooldown == 4s);
    }
}

TEST_CASE("unknown keys name the file, position and path, with a near miss", "[config][errors]") {
    CHECK(onlyError("capture:\n  fsp: 10\n") ==
          "main.yaml:2:3: capture.fsp: unknown key; did you mean 'fps'? "
          "(accepted: source, width, height, fps)");
    CHECK(onlyError("capture:\n  colour: red\n") ==
          "main.yaml:2:3: capture.colour: unknown key (accepted: source, width, height, fps)");
    CHECK(onlyError("captur: {}\n") ==
          "main.yaml:1:1: captur: unknown key; did you mean 'capture'? (accepted: version, "
          "capture, sampling, encode, llm, analyses, alerts, notify, log, metrics, vision)");
    CHECK(onlyError("llm:\n  options:\n    num_ctxt: 1\n") ==
          "main.yaml:3:5: llm.options.num_ctxt: unknown key; did you mean 'num_ctx'? (accepted: "
          "temperature, top_k, top_p, num_ctx, num_predict, seed, num_gpu, num_thread)");
    CHECK(onlyError("alerts:\n  drowsyness: {}\n")
              .starts_with(
                  "main.yaml:2:3: alerts.drowsyness: unknown key; did you mean 'drowsiness'?"));
    CHECK(onlyError("analyses:\n  face: {}\n")
              .starts_with("main.yaml:2:3: analyses.face: unknown key"));
    CHECK(onlyError("notify:\n  can:\n    heartbeat_ms: 5\n")
              .starts_with("main.yaml:3:5: notify.can.heartbeat_ms: unknown key; did you mean "
                           "'heartbeat_id'?"));
}

TEST_CASE("wrong types are reported with the accepted values", "[config][errors]") {
    CHECK(onlyError("capture:\n  fps: fast\n") ==
          "main.yaml:2:8: capture.fps: expected a whole number, got \"fast\" (accepted: 1..120)");
    CHECK(onlyError("capture:\n  fps: 15.5\n") ==
          "main.yaml:2:8: capture.fps: expected a whole number, got \"15.5\" (accepted: 1..120)");
    CHECK(onlyError("capture:\n  fps: [15]\n") ==
          "main.yaml:2:8: capture.fps: expected a single value, got a list (accepted: 1..120)");
    CHECK(onlyError("capture:\n  fps:\n") ==
          "main.yaml:2:3: capture.fps: missing value (accepted: 1..120)");
    CHECK(onlyError("sampling:\n  motion_threshold: low\n") ==
          "main.yaml:2:21: sampling.motion_threshold: expected a number, got \"low\" (accepted: "
          "0..1)");
    CHECK(onlyError("analyses:\n  face_state: { enabled: maybe }\n") ==
          "main.yaml:2:26: analyses.face_state.enabled: expected true or false, got \"maybe\" "
          "(accepted: true, false)");
    CHECK(onlyError("capture: v4l2:/dev/video0\n") ==
          "main.yaml:1:10: capture: expected a map of settings, got \"v4l2:/dev/video0\" "
          "(accepted: source, width, height, fps)");
    CHECK(onlyError("llm:\n  model: { name: x }\n") ==
          "main.yaml:2:10: llm.model: expected a single value, got a map (accepted: a model name "
          "the server knows, e.g. llava:7b)");
    CHECK(onlyError("llm:\n  model: \"\"\n") ==
          "main.yaml:2:10: llm.model: empty value (accepted: a model name the server knows, e.g. "
          "llava:7b)");
    CHECK(onlyError("- capture\n") ==
          "main.yaml:1:1: the top level must be a map of sections (accepted: version, capture, "
          "sampling, encode, llm, analyses, alerts, notify, log, metrics, vision)");
    // Booleans take the YAML 1.1 spellings.
    CHECK_FALSE(valid("notify: { dbus: { enabled: off } }").notify.dbus.enabled);
    CHECK(valid("notify: { can: { enabled: Yes } }").notify.can.enabled);
}

TEST_CASE("out-of-range values list the range", "[config][errors]") {
    CHECK(onlyError("sampling:\n  frames_per_sequence: 1\n") ==
          "main.yaml:2:24: sampling.frames_per_sequence: 1 is out of range (accepted: 2..32)");
    CHECK(onlyError("encode:\n  jpeg_quality: 0\n") ==
          "main.yaml:2:17: encode.jpeg_quality: 0 is out of range (accepted: 1..100)");
    CHECK(onlyError("encode:\n  jpeg_quality: 101\n") ==
          "main.yaml:2:17: encode.jpeg_quality: 101 is out of range (accepted: 1..100)");
    CHECK(onlyError("capture:\n  fps: 0\n") ==
          "main.yaml:2:8: capture.fps: 0 is out of range (accepted: 1..120)");
    CHECK(onlyError("capture:\n  fps: 121\n") ==
          "main.yaml:2:8: capture.fps: 121 is out of range (accepted: 1..120)");
    CHECK(onlyError("capture:\n  fps: 99999999999999999999\n").find("is out of range") !=
          std::string::npos);
    CHECK(onlyError("capture:\n  width: 16\n") ==
          "main.yaml:2:10: capture.width: 16 is out of range (accepted: 32..7680)");
    CHECK(onlyError("capture:\n  height: 241\n") ==
          "main.yaml:2:11: capture.height: 241 is odd; the 4:2:0 frames need an even size "
          "(accepted: even numbers in 32..4320)");
    CHECK(onlyError("llm:\n  max_in_flight: 0\n") ==
          "main.yaml:2:18: llm.max_in_flight: 0 is out of range (accepted: 1..64)");
    CHECK(onlyError("sampling:\n  motion_threshold: 1.5\n") ==
          "main.yaml:2:21: sampling.motion_threshold: 1.5 is out of range (accepted: 0..1)");
    CHECK(onlyError("llm:\n  options: { temperature: -0.1 }\n") ==
          "main.yaml:2:27: llm.options.temperature: -0.1 is out of range (accepted: 0..2)");
    CHECK(onlyError("notify:\n  snapshots: { max_files: 0 }\n") ==
          "main.yaml:2:27: notify.snapshots.max_files: 0 is out of range (accepted: 1..1000000)");
}

TEST_CASE("enumerations list their values and suggest near misses", "[config][errors]") {
    CHECK(onlyError("llm:\n  mode: paralel\n") ==
          "main.yaml:2:9: llm.mode: unknown value \"paralel\"; did you mean 'parallel'? "
          "(accepted: auto, parallel, combined, sequential)");
    CHECK(onlyError("llm:\n  mode: fastest\n") ==
          "main.yaml:2:9: llm.mode: unknown value \"fastest\" (accepted: auto, parallel, "
          "combined, sequential)");
    CHECK(onlyError("encode:\n  layout: grid\n") ==
          "main.yaml:2:11: encode.layout: unknown value \"grid\" (accepted: separate, mosaic)");
    CHECK(onlyError("notify:\n  dbus: { bus: sesion }\n") ==
          "main.yaml:2:16: notify.dbus.bus: \"sesion\" is neither system, session nor a D-Bus "
          "address; did you mean 'session'? (accepted: system, session, or a D-Bus address such "
          "as unix:path=/run/dbus/system_bus_socket)");
    for (const auto& [mode, expected] :
         std::vector<std::pair<std::string, LlmMode>>{{"auto", LlmMode::Auto},
                                                      {"parallel", LlmMode::Parallel},
                                                      {"combined", LlmMode::Combined},
                                                      {"sequential", LlmMode::Sequential}}) {
        CHECK(valid("llm: { mode: " + mode + " }").llm.scheduler.mode == expected);
    }
    CHECK(dbusBusKind(valid("notify: { dbus: { bus: session } }").notify.dbus) ==
          DbusBusKind::Session);
    CHECK(dbusBusKind(Config{}.notify.dbus) == DbusBusKind::System);
}

TEST_CASE("durations in the configuration", "[config][duration][errors]") {
    CHECK(valid("sampling: { interval: 500ms }").sampling.interval == 500ms);
    CHECK(valid("sampling: { interval: 3 }").sampling.interval == 3s);
    CHECK(valid("sampling: { interval: 0.5 }").sampling.interval == 500ms);
    CHECK(valid("llm: { keep_alive: 5m }").llm.model.keepAlive == 5min);
    CHECK(valid("llm: { keep_alive: 1h }").llm.model.keepAlive == 1h);
    CHECK(onlyError("sampling:\n  interval: 2 seconds\n") ==
          "main.yaml:2:13: sampling.interval: invalid duration \"2 seconds\" (accepted: seconds "
          "as a number, or a number with unit ms, s, m or h: 500ms, 2s, 1.5s, 5m)");
    CHECK(onlyError("sampling:\n  interval: -2s\n").find("invalid duration \"-2s\"") !=
          std::string::npos);
    CHECK(onlyError("sampling:\n  interval: 50ms\n") ==
          "main.yaml:2:13: sampling.interval: 50ms is out of range (accepted: 100ms..1h)");
    CHECK(onlyError("llm:\n  timeout: 2h\n") ==
          "main.yaml:2:12: llm.timeout: 2h is out of range (accepted: 100ms..1h)");
}

TEST_CASE("llm.api_key_file is read with the configuration and judged and never shown",
          "[config][llm]") {
    test::TempDir dir;
    const std::string path = (dir.path() / "model.key").string();
    std::ofstream(path) << "sk-live-abc123\n";
    ::chmod(path.c_str(), 0600);
    const std::string text = fmt::format("llm:\n  api: openai\n  api_key_file: {}\n", path);
    const Config config = valid(text);
    CHECK(config.llm.server.api == LlmApi::OpenAi);
    CHECK(config.llm.server.apiKey == "sk-live-abc123");
    CHECK(config.llm.server.apiKeyFile == path);
    CHECK(effectiveConfigJson(config).find("sk-live") == std::string::npos);
    CHECK(effectiveConfigJson(config).find(path) != std::string::npos);

    // A key others can read is refused where the key is set, naming key and path.
    ::chmod(path.c_str(), 0640);
    CHECK(onlyError(text) ==
          fmt::format("main.yaml:3:17: llm.api_key_file: llm.api_key_file \"{}\" is accessible "
                      "by group or others (mode 0640); the API key must be readable by its owner "
                      "only: chmod 600 (accepted: a file of one line (the key), owned by the "
                      "service and not readable by group or others (chmod 600))",
                      path));
    ::chmod(path.c_str(), 0600);
    std::ofstream(path) << std::string(5000, 'k');
    CHECK_THAT(onlyError(text), Catch::Contains("is larger than 4096 bytes"));
    std::ofstream(path) << "sk\x01key\n";
    CHECK_THAT(onlyError(text), Catch::Contains("is not printable ASCII (0x01)"));
    std::ofstream(path) << "\n";
    CHECK_THAT(onlyError(text), Catch::Contains("is empty"));
    const std::string fifo = (dir.path() / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THAT(onlyError(fmt::format("llm:\n  api_key_file: {}\n", fifo)), Catch::Contains("FIFO"));
    CHECK_THAT(onlyError("llm:\n  api_key_file: key.txt\n"),
               Catch::Contains("is not an absolute path"));
    CHECK_THAT(onlyError("llm:\n  api_key_file: /nonexistent/key\n"),
               Catch::Contains("llm.api_key_file \"/nonexistent/key\""));
    // A file that changed between two loads gives the new key: a reload reads it again.
    std::ofstream(path) << "sk-rotated\n";
    CHECK(valid(text).llm.server.apiKey == "sk-rotated");
}

TEST_CASE("llm.ca_file must hold PEM certificates OpenSSL can load", "[config][llm]") {
    test::TempDir dir;
    const std::string path = (dir.path() / "ca.pem").string();
    std::ofstream(path) << "not a certificate\n";
    CHECK_THAT(onlyError(fmt::format("llm:\n  ca_file: {}\n", path)),
               Catch::Contains("holds no PEM certificate OpenSSL can load"));
    CHECK_THAT(onlyError("llm:\n  ca_file: /nonexistent/ca.pem\n"),
               Catch::Contains("llm.ca_file: \"/nonexistent/ca.pem\""));
    CHECK(valid("llm:\n  ca_file: \"\"\n").llm.server.caFile.empty());
}

TEST_CASE("URLs, sources and CAN ids in the configuration", "[config][errors]") {
    // check-config runs the client's own URL parser: what it accepts, the client uses.
    CHECK(valid("llm:\n  url: \"https://127.0.0.1:11434/v1/proxy\"\n").llm.server.url ==
          "https://127.0.0.1:11434/v1/proxy");
    CHECK(onlyError("llm:\n  url: \"localhost:11434\"\n") ==
          "main.yaml:2:8: llm.url: \"localhost:11434\" has no scheme; write it as "
          "http://localhost:11434 (accepted: http[s]://HOST[:PORT][/PATH])");
    CHECK(onlyError("llm:\n  url: http://h/a/../v1\n") ==
          "main.yaml:2:8: llm.url: \"http://h/a/../v1\": the path prefix \"/a/../v1\" must be "
          "plain segments (/some/prefix), no empty, . or .. segment (accepted: "
          "http[s]://HOST[:PORT][/PATH])");
    CHECK(onlyError("capture:\n  source: rtsp://cam/1\n") ==
          "main.yaml:2:11: capture.source: unknown source scheme \"rtsp\" (accepted: "
          "v4l2:DEVICE, file:PATH, test:PATTERN, pipeline:GST-LAUNCH-DESCRIPTION)");
    CHECK(valid("notify: { can: { alert_id: 0x100 } }").notify.can.alertId == 0x100);
    CHECK(valid("notify: { can: { alert_id: 2047 } }").notify.can.alertId == 0x7FF);
    CHECK(valid("notify: { can: { alert_id: \"0x10\" } }").notify.can.alertId == 0x10);
    CHECK(onlyError("notify:\n  can: { alert_id: 0x800 }\n") ==
          "main.yaml:2:20: notify.can.alert_id: 0x800 does not fit in an 11-bit CAN id "
          "(accepted: 0..0x7FF, as hex like 0x6D0 or decimal)");
    CHECK(onlyError("notify:\n  can: { heartbeat_id: 2048 }\n").find("2048 does not fit") !=
          std::string::npos);
    CHECK(onlyError("notify:\n  can: { alert_id: six }\n") ==
          "main.yaml:2:20: notify.can.alert_id: expected a CAN id, got \"six\" (accepted: "
          "0..0x7FF, as hex like 0x6D0 or decimal)");
    CHECK(onlyError("notify:\n  can: { heartbeat_id: 0x6D0 }\n") ==
          "main.yaml:2:24: notify.can.heartbeat_id: alert_id and heartbeat_id are both 0x6D0; "
          "receivers tell the frames apart by id (accepted: two different ids)");
    CHECK(
        onlyError("notify:\n  can: { interface: \"can/0\" }\n")
            .starts_with(
                "main.yaml:2:21: notify.can.interface: \"can/0\" is not a network interface name"));
}

TEST_CASE("alert rules: critical_after not below raise_after", "[config][alerts][errors]") {
    CHECK(onlyError("alerts:\n  drowsiness: { critical_after: 2s }\n") ==
          "main.yaml:2:33: alerts.drowsiness.critical_after: critical_after 2s is shorter than "
          "raise_after 3s; an alert is raised before it can become critical (accepted: "
          "critical_after >= raise_after)");
    // The error points at the value that was set, here raise_after.
    const std::string raised = onlyError("alerts:\n  phone_use:\n    raise_after: 59m\n");
    CHECK(raised.starts_with("main.yaml:3:18: alerts.phone_use.raise_after: critical_after "));
    CHECK(raised.find("is shorter than raise_after 59m") != std::string::npos);
    CHECK(valid("alerts: { drowsiness: { raise_after: 0, critical_after: 0 } }")
              .alerts[AlertKind::Drowsiness]
              .criticalAfter == 0s);
    CHECK(onlyError("alerts:\n  camera_fault: { cooldown: 25h }\n") ==
          "main.yaml:2:29: alerts.camera_fault.cooldown: 25h is out of range (accepted: 0s..24h)");
}

TEST_CASE("frames per sequence must fit in one interval", "[config][errors]") {
    CHECK(onlyError("capture:\n  fps: 1\n") ==
          "main.yaml:2:8: capture.fps: 4 frames per sequence do not fit in one interval of 2s at "
          "1 fps (at most 2); lower sampling.frames_per_sequence or raise sampling.interval or "
          "capture.fps");
    CHECK(valid("capture: { fps: 2 }\nsampling: { frames_per_sequence: 4 }").capture.fps == 2);
}

TEST_CASE("vision.quiet_interval is off or at least sampling.interval", "[config][errors]") {
    CHECK(onlyError("vision:\n  quiet_interval: 1s\n") ==
          "main.yaml:2:19: vision.quiet_interval: vision.quiet_interval 1s is shorter than "
          "sampling.interval 2s; a quiet scene is asked less often, not more: use 0 (off) or at "
          "least sampling.interval");
    CHECK(valid("vision: { quiet_interval: 6s }").vision.quietInterval == 6s);
    CHECK(valid("vision: { quiet_interval: 2s }").vision.quietInterval == 2s);
    CHECK(valid("vision: { quiet_interval: 0 }").vision.quietInterval == 0s);
}

TEST_CASE("llm.options.seed may be unset by a later file", "[config]") {
    CHECK_FALSE(valid("").llm.model.options.seed);
    const ConfigLoad result = load({{"main.yaml", "llm: { options: { seed: 7 } }"},
                                    {"late.yaml", "llm:\n  options:\n    seed: ~\n"}});
    REQUIRE(result.config);
    CHECK_FALSE(result.config->llm.model.options.seed);
    CHECK(valid("llm: { options: { seed: -3 } }").llm.model.options.seed == -3);
}

TEST_CASE("every error of every file is reported at once, in file order", "[config][errors]") {
    const ConfigLoad result = load({
        {"main.yaml", "capture:\n  fps: 500\n  widht: 640\nllm:\n  mode: fast\n"},
        {"conf.d/10-a.yaml", "encode:\n  jpeg_quality: 0\n"},
        {"conf.d/20-b.yaml", "notify:\n  can: { alert_id: 0x900 }\nbogus: 1\n"},
    });
    CHECK_FALSE(result.config);
    const auto lines = messages(result);
    REQUIRE(lines.size() == 6);
    CHECK(lines[0].starts_with("main.yaml:2:8: capture.fps: 500 is out of range"));
    CHECK(lines[1].starts_with("main.yaml:3:3: capture.widht: unknown key; did you mean 'width'?"));
    CHECK(lines[2].starts_with("main.yaml:5:9: llm.mode: unknown value \"fast\""));
    CHECK(lines[3].starts_with("conf.d/10-a.yaml:2:17: encode.jpeg_quality: 0 is out of range"));
    CHECK(lines[4].starts_with("conf.d/20-b.yaml:2:20: notify.can.alert_id: 0x900 does not fit"));
    CHECK(lines[5].starts_with("conf.d/20-b.yaml:3:1: bogus: unknown key"));
}

TEST_CASE("a bad value overridden by a later file is still reported", "[config][errors]") {
    const ConfigLoad result =
        load({{"main.yaml", "capture:\n  fps: 500\n"}, {"late.yaml", "capture:\n  fps: 15\n"}});
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].format().starts_with("main.yaml:2:8: capture.fps: 500 is out of range"));
}

TEST_CASE("maps merge key by key, scalars and lists replace", "[config][merge]") {
    const ConfigLoad result = load({
        {"main.yaml", "capture:\n  source: test:ball\n  fps: 10\nllm:\n  options: { top_k: 5, "
                      "num_ctx: 1024 }\n"},
        {"a.yaml", "capture:\n  fps: 20\nllm:\n  options: { num_ctx: 4096 }\n"},
        {"b.yaml", "capture:\n"}, // an empty section changes nothing
    });
    INFO(formatErrors(result.errors));
    REQUIRE(result.config);
    CHECK(result.config->capture.source == "test:ball");
    CHECK(result.config->capture.fps == 20);
    CHECK(result.config->llm.model.options.topK == 5);
    CHECK(result.config->llm.model.options.numCtx == 4096);

    // A list replaces whatever was there: the error names the later file.
    const ConfigLoad lists =
        load({{"main.yaml", "llm:\n  model: x\n"}, {"late.yaml", "llm:\n  model: [a, b]\n"}});
    REQUIRE(lists.errors.size() == 1);
    CHECK(lists.errors[0].format().starts_with(
        "late.yaml:2:10: llm.model: expected a single value, got a list"));
    // And a scalar replaces a list.
    const ConfigLoad back =
        load({{"main.yaml", "llm:\n  model: [a]\n"}, {"late.yaml", "llm:\n  model: y\n"}});
    REQUIRE(back.errors.size() == 1); // main.yaml's own list is still wrong
    CHECK(back.errors[0].file == "main.yaml");
}

TEST_CASE("YAML syntax errors name the file and line", "[config][errors]") {
    const ConfigLoad result = load(
        {{"main.yaml", "capture:\n  fps: [15\nllm: {}\n"}, {"b.yaml", "capture: { fps: 0 }\n"}});
    CHECK_FALSE(result.config);
    const auto lines = messages(result);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].starts_with("main.yaml:"));
    CHECK(lines[0].find(": YAML syntax error: ") != std::string::npos);
    CHECK(result.errors[0].line >= 2);
    CHECK(lines[1].starts_with("b.yaml:1:17: capture.fps: 0 is out of range"));

    CHECK(onlyError("a: b: c\n") == "main.yaml:1:5: YAML syntax error: illegal map value");
}

TEST_CASE("a token the YAML parser cannot consume is a syntax error, not a hang",
          "[config][errors]") {
    // yaml-cpp 0.7 reports endless empty documents for these (upstream #1319);
    // the loader must answer at once, naming the place.
    CHECK(onlyError(",\n") == "main.yaml:1:1: YAML syntax error: unexpected ','");
    CHECK(onlyError("capture: {}\n---\n,\n") == "main.yaml:3:1: YAML syntax error: unexpected ','");
    // Real second documents are still told apart from a stuck parser.
    CHECK(onlyError("capture: {}\n---\nllm: {}\n---\nalerts: {}\n")
              .starts_with("main.yaml:3:1: more than one YAML document"));
    // A file of comments or a lone document marker changes nothing.
    CHECK(load("# only a comment\n").errors.empty());
    CHECK(load("---\n").errors.empty());
}

TEST_CASE("duplicate keys, multiple documents and aliases", "[config][errors]") {
    CHECK(onlyError("capture:\n  fps: 10\n  fps: 12\n") ==
          "main.yaml:3:3: fps: duplicate key; it is already set at line 2, column 3 of this file");
    CHECK(onlyError("capture: {}\n---\nllm: {}\n")
              .starts_with("main.yaml:3:1: more than one YAML document"));
    // Aliases are fine within reason; an exponential expansion is refused, not followed.
    const Config shared =
        valid("alerts:\n  drowsiness: &rule { raise_after: 1s }\n  phone_use: *rule\n");
    CHECK(shared.alerts[AlertKind::PhoneUse].raiseAfter == 1s);
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x]\n";
    for (char name = 'b'; name <= 'k'; ++name) {
        bomb += fmt::format("{}: &{} [", name, name);
        for (int i = 0; i < 8; ++i) {
            bomb += fmt::format("{}*{}", i ? ", " : "", static_cast<char>(name - 1));
        }
        bomb += "]\n";
    }
    const ConfigLoad result = load(bomb);
    CHECK_FALSE(result.config);
    CHECK(formatErrors(result.errors).find("more than 20000 values") != std::string::npos);
}

TEST_CASE("version: given, or a content hash of the effective settings", "[config][version]") {
    CHECK(valid("version: fleet-3").version == "fleet-3");
    CHECK(valid("version: 12").version == "12");
    CHECK(onlyError("version: \"\"\n") ==
          "main.yaml:1:10: version: must be one line of 1..200 characters without tabs; remove "
          "the key to use a content hash");
    const Config a = valid("capture: { fps: 10 }");
    const Config b = valid("# same settings, other text\ncapture:\n  fps: 10\n  width: 640\n");
    const Config c = valid("capture: { fps: 11 }");
    CHECK(a.version == b.version);
    CHECK(a.version != c.version);
    CHECK(a.version == contentVersion(a));
}

TEST_CASE("changedParts names what differs, ignoring the version", "[config][reload]") {
    const Config base = valid("version: a");
    CHECK(changedParts(base, valid("version: b")).empty());
    CHECK(changedParts(base, base).empty());
    using P = std::vector<ConfigPart>;
    CHECK(changedParts(base, valid("capture: { fps: 10 }")) == P{ConfigPart::Capture});
    CHECK(changedParts(base, valid("sampling: { interval: 3s }")) == P{ConfigPart::Sampling});
    CHECK(changedParts(base, valid("encode: { layout: mosaic }")) == P{ConfigPart::Encode});
    CHECK(changedParts(base, valid("llm: { options: { seed: 1 } }")) == P{ConfigPart::Llm});
    CHECK(changedParts(base, valid("analyses: { attention: { prompt: x } }")) ==
          P{ConfigPart::Analyses});
    CHECK(changedParts(base, valid("alerts: { camera_fault: { cooldown: 1s } }")) ==
          P{ConfigPart::Alerts});
    CHECK(changedParts(base, valid("notify: { dbus: { bus: session } }")) == P{ConfigPart::Dbus});
    CHECK(changedParts(base, valid("notify: { can: { heartbeat: 2s } }")) == P{ConfigPart::Can});
    CHECK(changedParts(base, valid("notify: { snapshots: { max_files: 3 } }")) ==
          P{ConfigPart::Snapshots});
    CHECK(changedParts(base, valid("capture: { fps: 10 }\nnotify: { can: { enabled: true } }")) ==
          P{ConfigPart::Capture, ConfigPart::Can});
    CHECK(configPartName(ConfigPart::Snapshots) == "notify.snapshots");
    CHECK(changedParts(base, valid("log: { level: debug }")) == P{ConfigPart::Log});
    CHECK(changedParts(base, valid("metrics: { textfile: /run/x.prom }")) ==
          P{ConfigPart::Metrics});
    CHECK(configPartName(ConfigPart::Log) == "log");
    CHECK(configPartName(ConfigPart::Metrics) == "metrics");
}

TEST_CASE("log.level and metrics: values, defaults and errors", "[config]") {
    const Config defaults = valid("");
    CHECK(defaults.logging.level == log::Priority::Info);
    CHECK(defaults.metrics.textfile.empty());
    CHECK(defaults.metrics.interval == 10s);
    CHECK(valid("log: { level: debug }").logging.level == log::Priority::Debug);
    CHECK(valid("log: { level: err }").logging.level == log::Priority::Err);
    const Config metrics = valid("metrics:\n  textfile: /var/lib/node/dmsd.prom\n  interval: 5s\n");
    CHECK(metrics.metrics.textfile == "/var/lib/node/dmsd.prom");
    CHECK(metrics.metrics.interval == 5s);
    CHECK(onlyError("log:\n  level: verbose\n") ==
          "main.yaml:2:10: log.level: unknown value \"verbose\" (accepted: debug, info, notice, "
          "warning, err)");
    CHECK(onlyError("metrics:\n  textfile: dmsd.prom\n")
              .starts_with(
                  "main.yaml:2:13: metrics.textfile: \"dmsd.prom\" is not an absolute path"));
    CHECK(onlyError("metrics:\n  textfile: /tmp/dmsd.txt\n").find("does not end in .prom") !=
          std::string::npos);
    CHECK(onlyError("metrics:\n  interval: 0s\n").starts_with("main.yaml:2:13: metrics.interval:"));
}

TEST_CASE("summary and the effective configuration", "[config]") {
    const Config config =
        valid("version: v1\ncapture: { source: \"test:ball\" }\nllm: { mode: parallel }");
    CHECK(summary(config) ==
          "version \"v1\", source \"test:ball\", model "
          "\"llava:7b-v1.6-mistral-q2_K\" at http://127.0.0.1:11434, mode parallel");
    // The printed effective configuration is itself a valid configuration.
    const Config again = valid(effectiveConfigJson(config));
    CHECK(effectiveConfigJson(again) == effectiveConfigJson(config));
    CHECK(effectiveConfigJson(config).find("\"motion_threshold\": 0.02") != std::string::npos);
}

TEST_CASE("drop-ins of conf.d merge in lexical order", "[config][files]") {
    test::TempDir dir("dmsd-config");
    const auto main = dir / "dmsd.yaml";
    writeFile(main, "capture:\n  fps: 10\n  source: test:ball\n");
    writeFile(dir / "conf.d/20-b.yaml", "capture:\n  fps: 20\n");
    writeFile(dir / "conf.d/10-a.yaml", "capture:\n  fps: 30\n  width: 320\n");
    writeFile(dir / "conf.d/.30-hidden.yaml", "capture:\n  fps: 99\n");
    writeFile(dir / "conf.d/40-other.yml", "capture:\n  fps: 98\n");
    writeFile(dir / "conf.d/50-editing.yaml.tmp", "capture:\n  fps: 97\n");
    std::filesystem::create_directories(dir / "conf.d/60-dir.yaml");

    ConfigLoad result = loadConfig(main);
    INFO(formatErrors(result.errors));
    REQUIRE(result.config);
    CHECK(result.config->capture.fps == 20);
    CHECK(result.config->capture.width == 320);
    CHECK(result.config->capture.source == "test:ball");
    REQUIRE(result.files.size() == 3);
    CHECK(result.files[1].filename() == "10-a.yaml");
    CHECK(result.files[2].filename() == "20-b.yaml");

    // An extra file goes on top, as for an OTA pre-check.
    writeFile(dir / "new.yaml", "capture:\n  fps: 0\n");
    result = loadConfig(main, {dir / "new.yaml"});
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].format() ==
          (dir / "new.yaml").string() + ":2:8: capture.fps: 0 is out of range (accepted: 1..120)");

    // Errors point at the drop-in that set the value.
    writeFile(dir / "conf.d/30-bad.yaml", "llm:\n  mode: turbo\n");
    result = loadConfig(main);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].file == (dir / "conf.d/30-bad.yaml").string());
    CHECK(result.errors[0].line == 2);
    CHECK(result.errors[0].column == 9);
}

TEST_CASE("missing and unreadable files are errors naming the file", "[config][files]") {
    test::TempDir dir("dmsd-config");
    ConfigLoad result = loadConfig(dir / "absent.yaml");
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].format() ==
          (dir / "absent.yaml").string() + ": cannot open: No such file or directory");
    result = loadConfigFiles({dir.path()});
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].message == "is a directory, not a configuration file");

    writeFile(dir / "dmsd.yaml", "");
    writeFile(dir / "conf.d", "not a directory");
    result = loadConfig(dir / "dmsd.yaml");
    REQUIRE(result.errors.size() == 1);
    CHECK(
        result.errors[0].format().starts_with((dir / "conf.d").string() + ": is not a directory"));
}

TEST_CASE("loadConfigOrReport prints every error for run and analyze", "[config][files]") {
    test::TempDir dir("dmsd-config");
    writeFile(dir / "dmsd.yaml", "capture:\n  fps: 0\nllm:\n  mode: x\n");
    std::FILE* out = std::tmpfile();
    REQUIRE(out != nullptr);
    CHECK_FALSE(loadConfigOrReport(dir / "dmsd.yaml", "run", out));
    std::rewind(out);
    std::string text(4096, '\0');
    text.resize(std::fread(text.data(), 1, text.size(), out));
    std::fclose(out);
    CHECK(text.find((dir / "dmsd.yaml").string() + ":2:8: capture.fps: 0 is out of range") !=
          std::string::npos);
    CHECK(text.find(":4:9: llm.mode: unknown value \"x\"") != std::string::npos);
    CHECK(text.find("dmsd run: configuration " + (dir / "dmsd.yaml").string() +
                    " rejected (2 errors)") != std::string::npos);

    writeFile(dir / "dmsd.yaml", "capture:\n  fps: 10\n");
    const auto config = loadConfigOrReport(dir / "dmsd.yaml", "run", stderr);
    REQUIRE(config);
    CHECK(config->capture.fps == 10);
}

TEST_CASE("ConfigError formats only the parts it has", "[config][errors]") {
    CHECK(ConfigError{"f.yaml", 3, 5, "a.b", "bad"}.format() == "f.yaml:3:5: a.b: bad");
    CHECK(ConfigError{"f.yaml", 3, 0, "", "bad"}.format() == "f.yaml:3: bad");
    CHECK(ConfigError{"f.yaml", 0, 0, "", "bad"}.format() == "f.yaml: bad");
    CHECK(ConfigError{"", 0, 0, "", "bad"}.format() == "bad");
}

TEST_CASE("docs/configuration.md describes every key the program reads", "[config][docs]") {
    std::ifstream in(std::string(DMSD_SOURCE_DIR) + "/docs/configuration.md");
    REQUIRE(in);
    std::stringstream text;
    text << in.rdbuf();
    const std::string doc = text.str();
    // The section of a key ("### `llm`") and, after it, its table row, named
    // relative to the section (`options.num_ctx`); per-analysis and per-kind
    // keys are documented once, as analyses.NAME.KEY and as the alerts table.
    auto documented = [&](const std::string& path) {
        const std::string top = path.substr(0, path.find('.'));
        const std::size_t section = doc.find("### `" + top + "`");
        if (section == std::string::npos) {
            return false;
        }
        if (top == "version") {
            return doc.find("| `version` |", section) != std::string::npos;
        }
        std::string rest = path.substr(top.size() + 1);
        if (top == "analyses") {
            rest = "analyses.NAME." + rest.substr(rest.find('.') + 1);
        } else if (top == "alerts") {
            const std::string kind = rest.substr(0, rest.find('.'));
            if (doc.find("| `" + kind + "` |", section) == std::string::npos) {
                return false;
            }
            rest = rest.substr(kind.size() + 1);
        }
        return doc.find("| `" + rest + "` |", section) != std::string::npos;
    };
    const std::vector<std::string> keys = configKeyPaths();
    CHECK(keys.size() > 60);
    for (const std::string& key : keys) {
        INFO(key);
        CHECK(documented(key));
    }
}

TEST_CASE("vision: a missing or unreadable landmark model is an error naming key and path",
          "[config][errors][vision]") {
    CHECK(onlyError("vision:\n  model: /nonexistent/landmarks.dat\n") ==
          "main.yaml:2:10: vision.model: landmark model \"/nonexistent/landmarks.dat\" does not "
          "exist (Debian package libdlib-data installs "
          "/usr/share/dlib/shape_predictor_68_face_landmarks.dat) (accepted: a readable dlib "
          "68-point shape predictor file, or enabled: false)");
    // The message points at the file that set the path, not at a later
    // drop-in that only switched vision on.
    const ConfigLoad split = load(
        std::vector<ConfigSource>{{"main.yaml", "vision:\n  model: /nonexistent/landmarks.dat\n"},
                                  {"conf.d/50-fleet.yaml", "vision:\n  enabled: true\n"}});
    REQUIRE(split.errors.size() == 1);
    CHECK(split.errors[0].format().starts_with(
        "main.yaml:2:10: vision.model: landmark model \"/nonexistent/landmarks.dat\""));
    // A directory is not a model.
    CHECK(onlyError("vision:\n  model: /tmp\n")
              .starts_with("main.yaml:2:10: vision.model: landmark model \"/tmp\" is not a "
                           "regular file"));
    // Vision off: the model is not needed.
    const Config off = valid("vision:\n  enabled: false\n  model: /nonexistent/landmarks.dat\n");
    CHECK_FALSE(off.vision.enabled);
    // The thresholds are read into the vision settings.
    const Config tuned = valid("vision:\n  detect_interval: 3\n  eyes_closed_after: 1500ms\n"
                               "  cone_center_pitch: -12\n");
    CHECK(tuned.vision.detectInterval == 3);
    CHECK(tuned.vision.signals.eyesClosedAfter == 1500ms);
    CHECK(tuned.vision.signals.coneCenterPitchDeg == -12.0);
    CHECK(onlyError("vision:\n  downscale_width: 40\n") ==
          "main.yaml:2:20: vision.downscale_width: 40 is out of range (accepted: 80..7680)");
    CHECK(changedParts(Config{}, tuned) == std::vector<ConfigPart>{ConfigPart::Vision});
}

TEST_CASE("every value is UTF-8 text without control characters", "[config][text]") {
    // Before: these loaded, and the bytes broke D-Bus (and became last-known-good).
    CHECK(onlyError("version: \"v\xff\"\n") ==
          "main.yaml:1:10: version: byte 0xFF is not valid UTF-8 (byte 2 of the value) "
          "(accepted: any text, e.g. \"fleet-2026-11\")");
    CHECK_THAT(onlyError("version: \"v\\e[2J\"\n"),
               Catch::StartsWith("main.yaml:1:10: version: control character U+001B"));
    CHECK_THAT(onlyError("version: \"a\\tb\"\n"),
               Catch::StartsWith("main.yaml:1:10: version: must be one line"));
    CHECK_THAT(onlyError("llm:\n  model: \"llava\\x07\"\n"),
               Catch::StartsWith("main.yaml:2:10: llm.model: control character U+0007"));
    CHECK_THAT(onlyError("llm:\n  model: \"llava\\nrogue\"\n"),
               Catch::StartsWith("main.yaml:2:10: llm.model: must be one line without tabs"));
    CHECK_THAT(onlyError("capture:\n  source: \"file:/x\xc3(.mp4\"\n"),
               Catch::StartsWith("main.yaml:2:11: capture.source: byte 0xC3 is not valid UTF-8"));
    CHECK_THAT(onlyError("capture:\n  fps: \"1\xff\"\n"),
               Catch::Contains("capture.fps: byte 0xFF is not valid UTF-8"));
    // A key that is not text is reported as such, and the report is text.
    const std::string key = onlyError("capture:\n  f\xffps: 10\n");
    CHECK_THAT(key, Catch::Contains("unknown key: byte 0xFF is not valid UTF-8"));
    CHECK(key.find('\xff') == std::string::npos);
    // Free text (prompts) may span lines and hold tabs and any UTF-8.
    const ConfigLoad prompt = load("analyses:\n  general_scene:\n    prompt: |\n      D\xc3\xa9"
                                   "cris "
                                   "la sc\xc3\xa8ne.\n      \tEn JSON.\n");
    INFO(formatErrors(prompt.errors));
    REQUIRE(prompt.ok());
    CHECK(prompt.config->analyses[AnalysisKind::GeneralScene].prompt ==
          "D\xc3\xa9"
          "cris la sc\xc3\xa8ne.\n\tEn JSON.\n");
}

TEST_CASE("a configuration file or drop-in that is not a regular file is refused at once",
          "[config][files]") {
    test::TempDir dir("dmsd-config-fifo");
    const auto main = dir / "dmsd.yaml";
    REQUIRE(::mkfifo(main.c_str(), 0600) == 0);
    // Before: the open blocked for ever (a FIFO without a writer).
    ConfigLoad result = loadConfig(main);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].format() ==
          main.string() + ": is a FIFO (named pipe), not a regular file; a configuration file "
                          "must be a regular file");

    std::filesystem::remove(main);
    writeFile(main, "version: v1\n");
    std::filesystem::create_directories(dir / "conf.d");
    REQUIRE(::mkfifo((dir / "conf.d/50-pipe.yaml").c_str(), 0600) == 0);
    result = loadConfig(main);
    REQUIRE(result.errors.size() == 1);
    CHECK(result.errors[0].format() == (dir / "conf.d/50-pipe.yaml").string() +
                                           ": is a FIFO (named pipe), not a regular file; a "
                                           "drop-in must be a regular file");
    CHECK_FALSE(result.ok());

    // A link to /dev/null still disables a drop-in, as in systemd.
    std::filesystem::remove(dir / "conf.d/50-pipe.yaml");
    std::filesystem::create_symlink("/dev/null", dir / "conf.d/50-pipe.yaml");
    result = loadConfig(main);
    INFO(formatErrors(result.errors));
    CHECK(result.ok());
}

#ifdef DMSD_MAN_DIR
namespace {

/// Removes roff font changes and escapes: "\f[V]num_ctx\f[R]" -> "num_ctx".
std::string roffPlain(std::string line) {
    std::string out;
    for (std::size_t i = 0; i < line.size(); ++i) {
        if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == 'f') {
            i += (i + 2 < line.size() && line[i + 2] == '[') ? line.find(']', i) - i : 2;
        } else if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '-') {
            out += '-';
            ++i;
        } else {
            out += line[i];
        }
    }
    return out;
}

} // namespace

TEST_CASE("the man page dmsd.yaml(5) describes every key the program reads", "[config][docs]") {
    std::ifstream in(std::string(DMSD_MAN_DIR) + "/dmsd.yaml.5");
    REQUIRE(in);
    // Each subsection (".SS llm") and the terms of its definition list (".TP"
    // then the term), which docs/man/man.lua makes of the tables of
    // docs/configuration.md.
    std::map<std::string, std::set<std::string>> terms;
    std::string section;
    std::string line;
    bool termNext = false;
    while (std::getline(in, line)) {
        if (line.starts_with(".SS ") || line.starts_with(".SH ")) {
            section = roffPlain(line.substr(4));
        } else if (line == ".TP") {
            termNext = true;
            continue;
        } else if (termNext) {
            terms[section].insert(roffPlain(line));
        }
        termNext = false;
    }
    auto documented = [&](const std::string& path) {
        const std::string top = path.substr(0, path.find('.'));
        const std::set<std::string>& keys = terms[top];
        if (top == "version") {
            return keys.contains("version");
        }
        std::string rest = path.substr(top.size() + 1);
        if (top == "analyses") {
            rest = "analyses.NAME." + rest.substr(rest.find('.') + 1);
        } else if (top == "alerts") {
            const std::string kind = rest.substr(0, rest.find('.'));
            if (!keys.contains(kind)) { // the table of defaults per kind
                return false;
            }
            rest = rest.substr(kind.size() + 1);
        }
        return keys.contains(rest);
    };
    const std::vector<std::string> keys = configKeyPaths();
    CHECK(keys.size() > 60);
    for (const std::string& key : keys) {
        INFO(key);
        CHECK(documented(key));
    }
}
#endif

TEST_CASE("llm.url takes one URL or a list of distinct ones", "[config][errors]") {
    const Config one = valid("llm:\n  url: http://10.0.0.2:11434\n");
    CHECK(one.llm.server.url == "http://10.0.0.2:11434");
    CHECK(one.llm.server.moreUrls.empty());
    CHECK(serverUrls(one.llm.server) == std::vector<std::string>{"http://10.0.0.2:11434"});

    const Config two =
        valid("llm:\n  url:\n    - http://10.0.0.2:11434\n    - http://10.0.0.3:11434\n");
    CHECK(two.llm.server.url == "http://10.0.0.2:11434");
    CHECK(two.llm.server.moreUrls == std::vector<std::string>{"http://10.0.0.3:11434"});
    CHECK(serverSettingsAt(two.llm.server, 1).url == "http://10.0.0.3:11434");
    CHECK(serverSettingsAt(two.llm.server, 1).moreUrls.empty());
    CHECK(serverUrlsText(two.llm.server) == "http://10.0.0.2:11434, http://10.0.0.3:11434");
    // The effective configuration: one URL stays a string, several are a list.
    CHECK_THAT(effectiveConfigJson(one, false),
               Catch::Contains("\"url\": \"http://10.0.0.2:11434\""));
    CHECK_THAT(effectiveConfigJson(two, false),
               Catch::Contains("\"url\": [") && Catch::Contains("\"http://10.0.0.3:11434\""));
    // A list of one is the one URL: same configuration, same content version.
    CHECK(contentVersion(valid("llm:\n  url: [http://10.0.0.2:11434]\n")) == contentVersion(one));

    // Each item is checked by the client's own parser; the message names its index.
    CHECK(onlyError("llm:\n  url:\n    - http://a:1\n    - \"localhost:11434\"\n") ==
          "main.yaml:4:7: llm.url[1]: \"localhost:11434\" has no scheme; write it as "
          "http://localhost:11434 (accepted: http[s]://HOST[:PORT][/PATH])");
    CHECK(onlyError("llm:\n  url: [http://a:1, http://b:2, http://a:1]\n") ==
          "main.yaml:2:33: llm.url[2]: \"http://a:1\" is listed twice (accepted: "
          "http[s]://HOST[:PORT][/PATH])");
    CHECK_THAT(onlyError("llm:\n  url: []\n"),
               Catch::Contains("llm.url: empty list (accepted: http[s]://HOST[:PORT][/PATH], or "
                               "a list of distinct ones)"));
    CHECK_THAT(onlyError("llm:\n  url: [{a: 1}]\n"),
               Catch::Contains("llm.url[0]: expected a single value, got a map"));
    // A later file's list replaces the earlier one, and a later single URL the list.
    const ConfigLoad merged =
        load(std::vector<ConfigSource>{{"main.yaml", "llm:\n  url: [http://a:1, http://b:2]\n"},
                                       {"drop-in.yaml", "llm:\n  url: http://c:3\n"}});
    REQUIRE(merged.config);
    CHECK(serverUrls(merged.config->llm.server) == std::vector<std::string>{"http://c:3"});
}
