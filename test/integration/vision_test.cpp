// dmsd run with the per-frame vision on a real face (test/vision/face_video.h):
// vision alerts through the same dispatcher (D-Bus) with snapshots of the
// frames vision decided on, the GetStatus vision block, a reload of vision:
// restarting only the vision stage, and a vision failure leaving the daemon
// running model-only.

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <catch2/catch.hpp>

#include "face_video.h"
#include "test/integration/harness.h"
#include "test/support/child_process.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

double seconds(std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count();
}

/// Waits until \a predicate holds on GetStatus; the last status either way.
template <class Predicate>
json::object waitStatus(Harness& h, Predicate predicate, std::chrono::seconds timeout) {
    json::object status;
    waitUntil(
        [&] {
            status = h.status();
            return predicate(status);
        },
        timeout);
    return status;
}

void dropIn(const Harness& h, const std::string& name, const std::string& text) {
    std::filesystem::create_directories(h.confDir());
    const auto staged = h.dir() / ("staged-" + name);
    std::ofstream(staged) << text;
    std::filesystem::rename(staged, h.confDir() / name);
}

/// The JSON block after `<!-- example: NAME -->` in \a doc (of the source tree).
json::object documented(const std::string& doc, const std::string& name) {
    std::ifstream in(std::string(DMSD_SOURCE_DIR) + "/" + doc);
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    const auto marker = all.find("<!-- example: " + name + " -->");
    REQUIRE(marker != std::string::npos);
    const auto start = all.find("```json\n", marker) + 8;
    const auto end = all.find("```", start);
    return json::parse(all.substr(start, end - start)).as_object();
}

/// "number" for any number, else the JSON kind's name.
std::string kindOf(const json::value& v) {
    if (v.is_number()) {
        return "number";
    }
    return v.is_string() ? "string" : v.is_bool() ? "bool" : v.is_null() ? "null" : "other";
}

std::string awakeScript(const Harness& h) {
    const auto path = h.dir() / "awake.json";
    std::ofstream(path) << R"({"rules":[],"defaults":{
      "face_state":{"state":"AWAKE","eyes_closed":false,"yawning":false,"confidence":0.9}}})";
    return path.string();
}

} // namespace

TEST_CASE("dmsd run: vision raises DROWSINESS over D-Bus, reports itself, reloads and fails alone",
          "[vision]") {
    Harness h;
    std::string problem;
    if (!driverStills(640, 480, &problem)) {
        WARN("skipped: " << problem);
        return;
    }
    // 4 s attentive, 5 s eyes closed, 11 s attentive; the file replays as a camera.
    FaceVideoSpec spec;
    spec.segments = {{4.0, DriverScene::Attentive},
                     {5.0, DriverScene::EyesClosed},
                     {11.0, DriverScene::Attentive}};
    generateFaceVideo(h.videoPath(), spec);
    h.startBus();
    h.startEmulator({"--slots", "2", "--latency-ms", "50", "--script", awakeScript(h)});
    std::string config = h.baseConfig();
    // The harness's base is for colour patterns (vision off); this video has a face.
    config.replace(config.find("vision: { enabled: false }"), 26, "vision: { enabled: true }");
    config.replace(config.find("width: 320"), 10, "width: 640");
    config.replace(config.find("height: 240"), 11, "height: 480");
    config.replace(config.find("fps: 10"), 7, "fps: 15");
    h.writeConfig(config);
    auto monitor = h.monitor();
    h.startDaemon();
    const auto ready = h.waitReady(30s);
    REQUIRE(ready);

    // The model says AWAKE throughout: the alert is the vision's. The eyes
    // close 4 s into the video; eyes_closed_after is 2 s.
    auto raised = waitSignal(*monitor, "AlertRaised", "DROWSINESS", 30s);
    REQUIRE(raised);
    const double raisedAt = seconds(raised->at - *ready);
    INFO("DROWSINESS raised " << raisedAt << " s after READY=1: " << h.daemonLog());
    CHECK(raisedAt >= 4.0 + 2.0 - 1.0);
    CHECK(raisedAt <= 4.0 + 3.5 + 1.0);
    // The details (docs/dbus.md) carry the evidence, which names the source.
    CHECK_THAT(raised->args[4].as_string().c_str(), Catch::Contains(R"(\"source\":\"vision\")") ||
                                                        Catch::Contains(R"("source":"vision")"));
    {
        // Its snapshot shows what vision decided on: the frames of the closed
        // eyes (the onset and the deciding frame), not a model sequence.
        std::optional<std::filesystem::path> snapshot;
        waitUntil(
            [&] {
                std::error_code error; // the writer makes the directory
                for (const auto& entry :
                     std::filesystem::directory_iterator(h.snapshotDir(), error)) {
                    const std::string name = entry.path().filename().string();
                    if (name.ends_with("-DROWSINESS") && name[0] != '.') {
                        snapshot = entry.path();
                        return true;
                    }
                }
                return false;
            },
            10s);
        REQUIRE(snapshot);
        std::ifstream in(*snapshot / "alert.json");
        std::stringstream text;
        text << in.rdbuf();
        INFO(text.str());
        const json::object sidecar = json::parse(text.str()).as_object();
        CHECK(sidecar.at("alert").at("source") == "vision");
        const json::array& images = sidecar.at("sequence").at("images").as_array();
        REQUIRE(!images.empty());
        for (const json::value& image : images) {
            CHECK(std::filesystem::file_size(*snapshot / image.at("file").as_string().c_str()) >
                  1000);
        }
        for (const json::value& frame : sidecar.at("sequence").at("frames").as_array()) {
            const double pts = frame.at("pts_s").to_number<double>();
            CHECK(pts >= 4.0);       // the eyes closed at 4 s
            CHECK(pts <= 4.0 + 3.5); // decided within 3.5 s
        }
    }

    json::object status = waitStatus(
        h,
        [](const json::object& s) {
            const json::value& ear = s.at("vision").at("ear");
            return ear.is_number() && ear.to_number<double>() > 0.2; // the eyes open again
        },
        20s);
    const json::object& vision = status.at("vision").as_object();
    INFO(json::serialize(vision));
    CHECK(vision.at("state").as_string() == "running");
    CHECK(vision.at("frames_processed").to_number<int>() > 30);
    CHECK(vision.at("cpu_per_frame_ms").to_number<double>() > 0.0);
    CHECK(vision.at("face_present") == true);
    CHECK(vision.at("ear").to_number<double>() > 0.2);
    CHECK(vision.at("yaw_deg").is_number());
    CHECK(vision.at("pitch_deg").is_number());
    CHECK(vision.at("perclos").is_number());
    CHECK(vision.at("onsets").to_number<int>() >= 1); // the eyes closing asked the model early
    // docs/dbus.md's example has exactly these keys, of these kinds.
    const json::object example = documented("docs/dbus.md", "getstatus-vision");
    CHECK(example.size() == vision.size());
    for (const auto& member : vision) {
        INFO(member.key());
        REQUIRE(example.contains(member.key()));
        CHECK(kindOf(example.at(member.key())) == kindOf(member.value()));
    }
    const auto cameraRestarts = status.at("counters").at("camera_restarts").to_number<int>();
    const auto processed = vision.at("frames_processed").to_number<int>();

    // A reload that changes vision: restarts the vision stage only.
    dropIn(h, "50-vision.yaml", "version: it-vision-2\nvision: { detect_interval: 3 }\n");
    status = waitStatus(
        h,
        [](const json::object& s) {
            return s.at("config_version") == "it-vision-2" &&
                   s.at("vision").at("state") == "running" &&
                   s.at("vision").at("frames_processed").to_number<int>() > 5;
        },
        30s);
    CHECK(status.at("config_version").as_string() == "it-vision-2");
    CHECK(status.at("vision").at("state").as_string() == "running");
    // A new stage counts from zero; the camera was not restarted.
    CHECK(status.at("vision").at("frames_processed").to_number<int>() < processed + 30 * 15);
    CHECK(status.at("counters").at("camera_restarts").to_number<int>() == cameraRestarts);

    // A file that is readable but no model: check-config accepts it (readable),
    // the stage fails at load, one journal entry, the daemon goes on model-only.
    const auto notModel = h.dir() / "not-a-model.dat";
    std::ofstream(notModel) << "this is not a dlib shape predictor\n";
    dropIn(h, "60-vision.yaml",
           "version: it-vision-3\nvision: { model: \"" + notModel.string() + "\" }\n");
    status = waitStatus(
        h, [](const json::object& s) { return s.at("vision").at("state") == "failed"; }, 30s);
    REQUIRE(status.at("vision").at("state").as_string() == "failed");
    CHECK_THAT(status.at("vision").at("failure").as_string().c_str(),
               Catch::Contains(notModel.string()));
    CHECK(status.at("state").as_string() == "running");
    const auto analysed = status.at("counters").at("sequences_analysed").to_number<int>();
    status = waitStatus(
        h,
        [analysed](const json::object& s) {
            return s.at("counters").at("sequences_analysed").to_number<int>() > analysed + 1;
        },
        20s);
    CHECK(status.at("counters").at("sequences_analysed").to_number<int>() > analysed + 1);
    const std::string log = h.daemonLog();
    CHECK(log.find("vision: ") != std::string::npos);
    CHECK(log.find(notModel.string()) != std::string::npos);
}
