#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <vector>

#include <catch2/catch.hpp>

#include "face_images.h"
#include "vision/vision_stage.h"

using namespace dmsd;
using namespace dmsd::test;
using namespace std::chrono_literals;

namespace {

/// What the stage reported, with waits on events (the timeouts only bound
/// a broken run; no result depends on them).
struct Recorder {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<VisionResult> results;
    std::vector<std::pair<VisionState, std::string>> states;
    bool holdResults = false; ///< the callback blocks while set
    bool inCallback = false;

    VisionStage::ResultCallback onResult() {
        return [this](const VisionResult& r) {
            std::unique_lock lock(mutex);
            results.push_back(r);
            inCallback = true;
            changed.notify_all();
            changed.wait(lock, [this] { return !holdResults; });
            inCallback = false;
        };
    }
    VisionStage::StateCallback onState() {
        return [this](VisionState s, const std::string& reason) {
            const std::lock_guard lock(mutex);
            states.emplace_back(s, reason);
            changed.notify_all();
        };
    }
    template <class Pred>
    bool waitFor(Pred pred) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, 120s, pred);
    }
    bool reached(VisionState s) {
        return waitFor([&] {
            for (const auto& [state, reason] : states) {
                if (state == s) {
                    return true;
                }
            }
            return false;
        });
    }
};

std::filesystem::path tempFile(const std::string& name) {
    return std::filesystem::temp_directory_path() /
           ("dmsd-vision-" + std::to_string(::getpid()) + "-" + name);
}

} // namespace

TEST_CASE("a missing landmark model is a failed state naming the path", "[vision][stage]") {
    VisionSettings settings;
    settings.model = tempFile("absent.dat").string();
    Recorder rec;
    VisionStage stage(settings, rec.onResult(), rec.onState());
    CHECK(stage.state() == VisionState::Stopped);
    stage.start();
    REQUIRE(rec.reached(VisionState::Failed));
    const VisionStats stats = stage.stats();
    CHECK(stats.state == VisionState::Failed);
    CHECK(stats.failure.find(settings.model) != std::string::npos);
    CHECK(stats.failure.find("does not exist") != std::string::npos);
    // Frames offered to a failed stage are not taken; nothing ends.
    stage.offer(Frame::solid(64, 48, 16, 128, 128, {}));
    CHECK(stage.stats().framesProcessed == 0);
    stage.stop();
    CHECK(rec.results.empty());
}

TEST_CASE("a file that is not a landmark model is a failed state", "[vision][stage]") {
    const auto path = tempFile("garbage.dat");
    std::ofstream(path) << "this is not a dlib shape predictor";
    VisionSettings settings;
    settings.model = path.string();
    Recorder rec;
    VisionStage stage(settings, rec.onResult(), rec.onState());
    stage.start();
    REQUIRE(rec.reached(VisionState::Failed));
    CHECK(stage.stats().failure.find("is not a dlib shape predictor") != std::string::npos);
    CHECK(stage.stats().failure.find(path.string()) != std::string::npos);
    std::filesystem::remove(path);
}

TEST_CASE("frames in, signals out, and a busy stage skips frames and counts them",
          "[vision][stage]") {
    if (!landmarkModelInstalled()) {
        WARN("skipped: dlib's landmark model is not installed (Debian package libdlib-data)");
        return;
    }
    auto portrait = loadGray(kWebcamFace);
    if (!portrait) {
        WARN("skipped: " << kWebcamFace << " is absent (test-only Debian package opencv-doc)");
        return;
    }
    const cv::Mat face = driverFrame(*portrait);
    Recorder rec;
    VisionStage stage(VisionSettings{}, rec.onResult(), rec.onState());
    stage.start();
    REQUIRE(rec.reached(VisionState::Running));

    // The first frame is analysed; its callback holds the vision thread.
    {
        const std::lock_guard lock(rec.mutex);
        rec.holdResults = true;
    }
    stage.offer(frameOf(face, 1, 0.0));
    REQUIRE(rec.waitFor([&] { return rec.inCallback; }));
    // Meanwhile three frames arrive: the second replaces the first in the
    // slot, the third the second. offer() returned each time at once.
    stage.offer(frameOf(face, 2, 1.0 / 15));
    stage.offer(frameOf(face, 3, 2.0 / 15));
    stage.offer(frameOf(face, 4, 3.0 / 15));
    CHECK(stage.stats().framesSkipped == 2);
    {
        const std::lock_guard lock(rec.mutex);
        rec.holdResults = false;
        rec.changed.notify_all();
    }
    REQUIRE(rec.waitFor([&] { return rec.results.size() == 2 && !rec.inCallback; }));
    stage.stop();
    CHECK(rec.states.back().first == VisionState::Stopped);

    REQUIRE(rec.results.size() == 2);
    CHECK(rec.results[0].frameId == 1);
    CHECK(rec.results[1].frameId == 4); // the latest won
    CHECK(rec.results[1].ptsS == Approx(3.0 / 15));
    for (const VisionResult& r : rec.results) {
        CHECK(r.signals.facePresent.value);
        CHECK(r.signals.earLeft.value > 0.18);
        CHECK(r.signals.pose.confidence > 0.0);
        CHECK(r.cost.totalUs() > 0);
    }
    CHECK(rec.results[0].face.detected);
    CHECK_FALSE(rec.results[1].face.detected); // tracked
    const VisionStats stats = stage.stats();
    CHECK(stats.framesOffered == 4);
    CHECK(stats.framesProcessed == 2);
    CHECK(stats.framesSkipped == 2);
    CHECK(stats.cpuPerFrameMs > 0.0);
    REQUIRE(stats.latest);
    CHECK(stats.latest->tS == Approx(3.0 / 15));
}

TEST_CASE("every_nth_frame passes over the others", "[vision][stage]") {
    if (!landmarkModelInstalled()) {
        WARN("skipped: dlib's landmark model is not installed (Debian package libdlib-data)");
        return;
    }
    VisionSettings settings;
    settings.everyNthFrame = 3;
    Recorder rec;
    VisionStage stage(settings, rec.onResult(), rec.onState());
    stage.start();
    REQUIRE(rec.reached(VisionState::Running));
    // One at a time: each offered frame is taken before the next.
    for (std::uint64_t id = 0; id < 7; ++id) {
        stage.offer(Frame::solid(320, 240, 60, 128, 128, {id, id / 15.0, 0.0, {}}));
        const std::size_t expected = id / 3 + 1;
        REQUIRE(rec.waitFor([&] { return rec.results.size() == expected; }));
    }
    stage.stop();
    const VisionStats stats = stage.stats();
    CHECK(stats.framesOffered == 7);
    CHECK(stats.framesNotSelected == 4);
    CHECK(stats.framesProcessed == 3);
    CHECK(stats.framesSkipped == 0);
    CHECK(rec.results[1].frameId == 3);
    CHECK_FALSE(rec.results[2].signals.facePresent.value);
}
