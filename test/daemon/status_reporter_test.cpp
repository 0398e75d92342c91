// GetStatus JSON and the STATUS= line from a StatusSnapshot: the contract's
// keys, in their order, and the figures where they belong.
#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "daemon/status_reporter.h"

using namespace dmsd;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

std::vector<std::string> keys(const json::object& object) {
    std::vector<std::string> out;
    for (const auto& member : object) {
        out.emplace_back(member.key());
    }
    return out;
}

struct Fixture {
    Config config;
    StatusSnapshot s;
    Fixture() {
        config.version = "fleet-7";
        config.capture.source = "v4l2:/dev/video0";
        config.llm.server.url = "http://127.0.0.1:11434";
        config.llm.model.name = "llava";
        config.notify.snapshots.dir = "/var/lib/dmsd/snapshots";
        s.config = &config;
        s.health = HealthState{ServiceState::Running, CameraState::Streaming, "", true, ""};
    }
};

} // namespace

TEST_CASE("GetStatus has exactly the contract's keys, in order", "[status]") {
    Fixture f;
    const json::object all = json::parse(StatusReporter::json(f.s)).as_object();
    CHECK(keys(all) == std::vector<std::string>{"state", "config_version", "active_alerts",
                                                "driver_state", "mode", "configured_mode",
                                                "counters", "latency_ms", "alert_path_us", "camera",
                                                "model", "config_error", "vision"});
    CHECK(keys(all.at("counters").as_object()) ==
          std::vector<std::string>{
              "frames_captured", "frames_dropped", "sequences_analysed", "sequences_skipped_static",
              "sequences_superseded", "requests", "request_errors", "cache_hits", "cache_misses",
              "camera_restarts", "frames_encoded", "reloads_applied", "reloads_rejected",
              "rollbacks", "protocol_errors", "stalled_responses", "truncated_answers"});
    CHECK(keys(all.at("latency_ms").as_object()) ==
          std::vector<std::string>{"sequence_p50", "sequence_p95", "request_p50", "request_p95"});
    CHECK(keys(all.at("alert_path_us").as_object()) ==
          std::vector<std::string>{"events", "p50", "p99", "max"});
    CHECK(keys(all.at("camera").as_object()) ==
          std::vector<std::string>{"source", "state", "problem"});
    CHECK(keys(all.at("model").as_object()) ==
          std::vector<std::string>{"url", "model", "usable", "problem", "connections_opened", "gpu",
                                   "context"});
    CHECK(all.at("model").at("context").at("state") == "pending");
    CHECK(all.at("model").at("gpu").is_null()); // not said yet
    f.s.llm.client.placement = ModelPlacement{std::int64_t{4} << 30, std::int64_t{3} << 30};
    const json::object gpu =
        json::parse(StatusReporter::json(f.s)).at("model").at("gpu").as_object();
    CHECK(gpu.at("size_mb") == 4096);
    CHECK(gpu.at("vram_mb") == 3072);
    CHECK(gpu.at("whole_in_gpu") == false);
    f.s.llm.client.placement.reset();

    // The optional parts, when there is something to say.
    f.s.lastAnalysisUs = 1700000000000000;
    f.s.can = CanStatus{};
    f.s.snapshots = SnapshotStats{};
    const json::object more = json::parse(StatusReporter::json(f.s)).as_object();
    CHECK(keys(more) == std::vector<std::string>{"state", "config_version", "active_alerts",
                                                 "driver_state", "mode", "configured_mode",
                                                 "counters", "latency_ms", "alert_path_us",
                                                 "camera", "model", "last_analysis_us",
                                                 "config_error", "vision", "can", "snapshots"});
    CHECK(keys(more.at("can").as_object()) ==
          std::vector<std::string>{"state", "interface", "frames_sent", "last_error"});
    CHECK(keys(more.at("snapshots").as_object()) ==
          std::vector<std::string>{"dir", "written", "failed", "last"});
}

TEST_CASE("GetStatus's vision block: disabled, running with a face, failed", "[status]") {
    Fixture f;
    const std::vector<std::string> fields{"state",          "failure",          "frames_processed",
                                          "frames_skipped", "cpu_per_frame_ms", "onsets",
                                          "quiet",          "face_present",     "ear",
                                          "perclos",        "yaw_deg",          "pitch_deg"};
    json::object vision =
        json::parse(StatusReporter::json(f.s)).as_object().at("vision").as_object();
    CHECK(keys(vision) == fields);
    CHECK(vision.at("state") == "disabled");
    CHECK(vision.at("quiet") == false);
    CHECK(vision.at("face_present").is_null());
    CHECK(vision.at("ear").is_null());

    VisionStats stats;
    stats.state = VisionState::Running;
    stats.framesProcessed = 120;
    stats.framesSkipped = 3;
    stats.cpuPerFrameMs = 4.237;
    DriverSignals signals;
    signals.facePresent = {true, 0.9};
    signals.earLeft = {0.30, 0.9};
    signals.earRight = {0.28, 0.9};
    signals.eyesClosed = {false, 0.9};
    signals.perclos = {0.05, 0.8};
    signals.pose = {{-12.34, 4.56, 0.0}, 0.9};
    stats.latest = signals;
    f.s.vision = stats;
    f.s.visionOnsets = 2;
    f.s.visionQuiet = true;
    vision = json::parse(StatusReporter::json(f.s)).as_object().at("vision").as_object();
    CHECK(keys(vision) == fields);
    CHECK(vision.at("state") == "running");
    CHECK(vision.at("frames_processed") == 120);
    CHECK(vision.at("frames_skipped") == 3);
    CHECK(vision.at("cpu_per_frame_ms").to_number<double>() == Approx(4.24));
    CHECK(vision.at("onsets") == 2);
    CHECK(vision.at("quiet") == true);
    CHECK(vision.at("face_present") == true);
    CHECK(vision.at("ear").to_number<double>() == Approx(0.29));
    CHECK(vision.at("perclos").to_number<double>() == Approx(0.05));
    CHECK(vision.at("yaw_deg").to_number<double>() == Approx(-12.3));
    CHECK(vision.at("pitch_deg").to_number<double>() == Approx(4.6));
    CHECK_THAT(StatusReporter::json(f.s), Catch::Contains("\"yaw_deg\":-12.3"));

    // No face: the eyes and the head are not measured.
    signals.facePresent = {false, 1.0};
    stats.latest = signals;
    stats.state = VisionState::Failed;
    stats.failure = "analysis failed: boom";
    f.s.vision = stats;
    vision = json::parse(StatusReporter::json(f.s)).as_object().at("vision").as_object();
    CHECK(vision.at("state") == "failed");
    CHECK(vision.at("failure") == "analysis failed: boom");
    CHECK(vision.at("face_present") == false);
    CHECK(vision.at("ear").is_null());
    CHECK(vision.at("yaw_deg").is_null());
}

TEST_CASE("GetStatus carries each part's figures", "[status]") {
    Fixture f;
    f.s.health = HealthState{ServiceState::Degraded, CameraState::Lost, "device gone", false,
                             "cannot reach the model server"};
    f.s.active = {ActiveAlert{AlertKind::Drowsiness, AlertLevel::Critical, 0.9, 10000ms}};
    f.s.engineNow = 12000ms;
    f.s.realtimeUs = 5000000;
    f.s.driverState = FaceState::Sleepy;
    f.s.activeMode = LlmMode::Combined;
    f.s.capture.framesCaptured = 100;
    f.s.capture.restarts = 2;
    f.s.frames.framesEncoded = 40;
    f.s.sequences = SequenceCounters{9, 3, 1};
    f.s.ota = OtaCounters{4, 5, 6};
    f.s.alertPath = AlertPathFigures{7, 120.5, 300.0, 450.0};
    f.s.configError = "configuration x rolled back";
    f.s.llm.requests = 36;

    const json::object status = json::parse(StatusReporter::json(f.s)).as_object();
    CHECK(status.at("state") == "degraded");
    CHECK(status.at("config_version") == "fleet-7");
    const json::object& alert = status.at("active_alerts").as_array().at(0).as_object();
    CHECK(alert.at("kind") == "DROWSINESS");
    CHECK(alert.at("level") == "critical");
    // Raised 2 s of engine time ago, on the wall clock.
    CHECK(alert.at("since_us").to_number<std::uint64_t>() == 3000000);
    CHECK(status.at("driver_state") == "SLEEPY");
    CHECK(status.at("mode") == "combined");
    CHECK(status.at("configured_mode") == "auto");
    const json::object& counters = status.at("counters").as_object();
    CHECK(counters.at("frames_captured").to_number<int>() == 100);
    CHECK(counters.at("camera_restarts").to_number<int>() == 2);
    CHECK(counters.at("frames_encoded").to_number<int>() == 40);
    CHECK(counters.at("sequences_analysed").to_number<int>() == 9);
    CHECK(counters.at("sequences_skipped_static").to_number<int>() == 3);
    CHECK(counters.at("sequences_superseded").to_number<int>() == 1);
    CHECK(counters.at("requests").to_number<int>() == 36);
    CHECK(counters.at("reloads_applied").to_number<int>() == 4);
    CHECK(counters.at("reloads_rejected").to_number<int>() == 5);
    CHECK(counters.at("rollbacks").to_number<int>() == 6);
    CHECK(status.at("alert_path_us").at("events").to_number<int>() == 7);
    CHECK(status.at("alert_path_us").at("p50").to_number<double>() == 120.5);
    CHECK(status.at("camera").at("state") == "lost");
    CHECK(status.at("camera").at("problem") == "device gone");
    CHECK(status.at("model").at("usable") == false);
    CHECK(status.at("model").at("problem") == "cannot reach the model server");
    CHECK(status.at("config_error") == "configuration x rolled back");
    // Plain decimals (base/json.h), never 1.205E2.
    CHECK_THAT(StatusReporter::json(f.s), Catch::Contains("\"p50\":120.5"));
}

TEST_CASE("the STATUS= line sums up camera, model, alerts and version", "[status]") {
    Fixture f;
    CHECK(StatusReporter::line(f.s.health, {}, "llava", "fleet-7") ==
          "running: camera ok; model llava ok; alerts: none; config fleet-7");
    const HealthState down{ServiceState::Degraded, CameraState::Retrying, "", false,
                           "cannot reach http://127.0.0.1:9"};
    const std::vector<ActiveAlert> active{
        ActiveAlert{AlertKind::CameraFault, AlertLevel::Warning, 1.0, 0ms},
        ActiveAlert{AlertKind::AnalyzerFault, AlertLevel::Critical, 1.0, 0ms}};
    CHECK(StatusReporter::line(down, active, "llava", "fleet-8") ==
          "degraded: camera retrying (no frames); model not usable (cannot reach "
          "http://127.0.0.1:9); alerts: CAMERA_FAULT warning, ANALYZER_FAULT critical; config "
          "fleet-8");
}

TEST_CASE("GetStatus model.context: what an image costs and what the fit chose", "[status]") {
    Fixture f;
    f.s.context.state = ContextReport::State::Measured;
    f.s.context.tokensPerImage = 1728;
    f.s.context.promptTokens = 610;
    f.s.context.imageWidth = 336;
    f.s.context.imageHeight = 252;
    f.s.context.numPredict = 256;
    BudgetNeed need;
    need.context = 2048;
    need.frames = 4;
    need.tokensPerImage = 1728;
    need.promptTokens = 610;
    need.numPredict = 256;
    f.s.context.plan = planContextBudget(need, ContextSettings{});
    const json::object context =
        json::parse(StatusReporter::json(f.s)).at("model").at("context").as_object();
    CHECK(keys(context) == std::vector<std::string>{"state", "per_image", "image", "prompt",
                                                    "num_predict", "needed", "context", "fits",
                                                    "change", "num_ctx", "frames_per_sequence",
                                                    "layout", "needed_after", "context_after"});
    CHECK(context.at("state") == "measured");
    CHECK(context.at("per_image") == 1728);
    CHECK(context.at("image") == "336x252");
    CHECK(context.at("needed") == 4 * 1728 + 610 + 256);
    CHECK(context.at("context") == 2048);
    CHECK(context.at("fits") == true);
    CHECK(context.at("change") == "llm.options.num_ctx 2048 -> 7936");
    CHECK(context.at("num_ctx") == 7936);
    CHECK(context.at("frames_per_sequence").is_null());
    CHECK(context.at("layout").is_null());

    f.s.context = ContextReport{};
    f.s.context.state = ContextReport::State::Failed;
    f.s.context.problem = "context budget (one image): HTTP 500";
    const json::object failed =
        json::parse(StatusReporter::json(f.s)).at("model").at("context").as_object();
    CHECK(keys(failed) == std::vector<std::string>{"state", "problem"});
}

TEST_CASE("GetStatus's model block lists each server of a pool, URLs redacted", "[status]") {
    Fixture f;
    f.config.llm.server.url = "http://user:secret@gpu1:11434";
    f.config.llm.server.moreUrls = {"http://gpu2:11434"};
    ServerStatus out;
    out.url = "http://user:secret@gpu1:11434";
    out.inService = false;
    out.reason = "cannot reach the model server at http://gpu1:11434";
    out.requests = 3;
    out.failures = 1;
    out.setAsides = 1;
    ServerStatus in;
    in.url = "http://gpu2:11434";
    in.outstanding = 2;
    in.latencyEwmaMs = 412.46;
    in.requests = 40;
    f.s.llm.client.servers = {out, in};
    const json::object model =
        json::parse(StatusReporter::json(f.s)).as_object().at("model").as_object();
    CHECK(keys(model) == std::vector<std::string>{"url", "model", "usable", "problem",
                                                  "connections_opened", "gpu", "context",
                                                  "servers"});
    // As with one URL, the list is redacted where the JSON leaves (D-Bus, stdout).
    CHECK(model.at("url").as_string() == "http://user:secret@gpu1:11434, http://gpu2:11434");
    const json::array& servers = model.at("servers").as_array();
    REQUIRE(servers.size() == 2);
    CHECK(keys(servers[0].as_object()) ==
          std::vector<std::string>{"url", "in_service", "reason", "outstanding", "latency_ewma_ms",
                                   "requests", "failures", "set_asides"});
    const std::string shown(servers[0].at("url").as_string());
    CHECK(shown.find("secret") == std::string::npos);
    CHECK(shown.find("@gpu1:11434") != std::string::npos);
    CHECK(servers[0].at("in_service") == false);
    CHECK(servers[0].at("reason").as_string() == out.reason);
    CHECK(servers[0].at("set_asides").to_number<int>() == 1);
    CHECK(servers[1].at("in_service") == true);
    CHECK(servers[1].at("outstanding").to_number<int>() == 2);
    CHECK(servers[1].at("latency_ewma_ms").to_number<double>() == 412.5);
    CHECK(servers[1].at("requests").to_number<int>() == 40);
}
