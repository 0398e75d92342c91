#include <atomic>
#include <filesystem>
#include <mutex>
#include <sys/stat.h>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "pipeline/capture.h"
#include "pipeline/frame_path.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

CaptureSettings smallCapture(std::string source, int fps = 10) {
    CaptureSettings settings;
    settings.source = std::move(source);
    settings.width = 160;
    settings.height = 120;
    settings.fps = fps;
    return settings;
}

/// Polls \a condition until true or \a deadline passes.
template <class Predicate>
bool eventually(Predicate condition, std::chrono::milliseconds deadline = 10s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    while (std::chrono::steady_clock::now() < end) {
        if (condition()) {
            return true;
        }
        std::this_thread::sleep_for(5ms);
    }
    return condition();
}

/// Events seen by a capture, thread-safe.
struct EventLog {
    std::mutex mutex;
    std::vector<CaptureEvent> events;
    std::function<void(const CaptureEvent&)> sink() {
        return [this](const CaptureEvent& event) {
            std::lock_guard lock(mutex);
            events.push_back(event);
        };
    }
    std::size_t count(CaptureEvent::Kind kind) {
        std::lock_guard lock(mutex);
        return static_cast<std::size_t>(std::count_if(
            events.begin(), events.end(), [kind](const auto& e) { return e.kind == kind; }));
    }
    std::string firstMessage(CaptureEvent::Kind kind) {
        std::lock_guard lock(mutex);
        for (const auto& e : events) {
            if (e.kind == kind) {
                return e.message;
            }
        }
        return {};
    }
};

/// Pulls every frame of an offline capture; checks order on the way.
struct Drained {
    std::size_t frames = 0;
    bool ordered = true;
    int width = 0;
    int height = 0;
};
Drained drain(Capture& capture, std::chrono::milliseconds perFrameDelay = 0ms) {
    Drained out;
    std::uint64_t lastId = 0;
    double lastPts = -1.0;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
        PullResult result = capture.nextFrame(1s);
        if (result.status == PullResult::Status::Ended) {
            break;
        }
        if (result.status != PullResult::Status::Frame) {
            continue;
        }
        ++out.frames;
        out.ordered = out.ordered && result.frame->id() > lastId && result.frame->ptsS() > lastPts;
        lastId = result.frame->id();
        lastPts = result.frame->ptsS();
        out.width = result.frame->width();
        out.height = result.frame->height();
        if (perFrameDelay > 0ms) {
            std::this_thread::sleep_for(perFrameDelay); // a slow consumer, not synchronisation
        }
    }
    return out;
}

test::VideoSpec shortVideo(test::VideoContainer container) {
    test::VideoSpec spec;
    spec.width = 160;
    spec.height = 120;
    spec.fps = 10;
    spec.container = container;
    spec.segments = {{1.0, {200, 40, 40}, false}, {1.0, {40, 40, 200}, true}};
    return spec;
}

} // namespace

TEST_CASE("capture source strings are parsed or rejected with the accepted forms", "[capture]") {
    SourceSpec spec;
    CHECK_FALSE(parseSource("v4l2:/dev/video0", spec));
    CHECK(spec.kind == SourceSpec::Kind::V4l2);
    CHECK(spec.value == "/dev/video0");
    CHECK_FALSE(parseSource("pipeline:videotestsrc ! videoconvert", spec));
    CHECK(spec.kind == SourceSpec::Kind::Pipeline);
    auto error = parseSource("camera0", spec);
    REQUIRE(error);
    CHECK_THAT(error->message, Catch::Contains("camera0") && Catch::Contains("v4l2:DEVICE"));
    CHECK(parseSource("file:", spec));
}

TEST_CASE("offline capture from videotestsrc delivers I420 frames at the requested size",
          "[capture]") {
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("test:smpte"), options);
    auto error = capture.start();
    REQUIRE_FALSE(error);
    std::uint64_t lastId = 0;
    for (int i = 0; i < 10; ++i) {
        PullResult result = capture.nextFrame(5s);
        REQUIRE(result.status == PullResult::Status::Frame);
        CHECK(result.frame->width() == 160);
        CHECK(result.frame->height() == 120);
        CHECK(result.frame->planes().stride[0] >= 160);
        CHECK(result.frame->id() > lastId);
        CHECK(result.frame->ptsS() == Approx((result.frame->id() - 1) / 10.0).margin(1e-6));
        lastId = result.frame->id();
    }
    CHECK(capture.counters().framesDropped == 0);
    capture.stop();
    CHECK(capture.state() == CameraState::Stopped);
}

TEST_CASE("live capture from videotestsrc streams and stamps the last frame", "[capture]") {
    EventLog log;
    CaptureOptions options;
    options.onEvent = log.sink();
    Capture capture(smallCapture("test:ball", 30), options);
    REQUIRE_FALSE(capture.start());
    PullResult result = capture.nextFrame(5s);
    REQUIRE(result.status == PullResult::Status::Frame);
    // The state turns Streaming just before the event is emitted: wait for both.
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::Streaming) == 1; }));
    CHECK(capture.state() == CameraState::Streaming);
    CHECK(capture.lastFrameAt() > SteadyTime{});
    capture.stop();
}

TEST_CASE("offline capture of generated videos loses no frame", "[capture]") {
    test::TempDir dir;
    auto container = GENERATE(test::VideoContainer::Mp4H264, test::VideoContainer::AviMjpeg);
    const auto spec = shortVideo(container);
    const auto path = dir / (container == test::VideoContainer::AviMjpeg ? "clip.avi" : "clip.mp4");
    test::generateVideo(path, spec);

    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    options.ringCapacity = 2;
    Capture capture(smallCapture("file:" + path.string()), options);
    REQUIRE_FALSE(capture.start());
    // A consumer slower than decoding: back-pressure, not drops.
    Drained drained = drain(capture, 2ms);
    CHECK(drained.frames == test::frameCount(spec));
    CHECK(drained.ordered);
    CHECK(drained.width == 160);
    CHECK(drained.height == 120);
    CHECK(capture.state() == CameraState::Ended);
    CHECK_FALSE(capture.finalError());
    const auto counters = capture.counters();
    CHECK(counters.framesDropped == 0);
    CHECK(counters.framesCaptured == test::frameCount(spec));
    CHECK(counters.framesDelivered == test::frameCount(spec));
}

TEST_CASE("offline capture rescales a file to the capture size", "[capture]") {
    test::TempDir dir;
    auto spec = shortVideo(test::VideoContainer::Mp4H264);
    spec.width = 320;
    spec.height = 240;
    test::generateVideo(dir / "big.mp4", spec);
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("file:" + (dir / "big.mp4").string()), options);
    REQUIRE_FALSE(capture.start());
    Drained drained = drain(capture);
    CHECK(drained.frames == test::frameCount(spec));
    CHECK(drained.width == 160);
}

TEST_CASE("live capture drops and counts frames while the consumer stalls", "[capture]") {
    CaptureOptions options;
    options.ringCapacity = 2;
    Capture capture(smallCapture("test:snow", 30), options);
    REQUIRE_FALSE(capture.start());
    // Take nothing: the ring fills and the streaming thread drops.
    CHECK(eventually([&] { return capture.counters().framesDropped >= 3; }));
    const auto counters = capture.counters();
    CHECK(counters.framesCaptured >= counters.framesDropped + 2);
    // The consumer resumes and gets frames again.
    PullResult result = capture.nextFrame(5s);
    CHECK(result.status == PullResult::Status::Frame);
    capture.stop();
}

TEST_CASE("a missing file is a clear error naming the source", "[capture]") {
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("file:/nonexistent/dmsd/trip.mp4"), options);
    auto error = capture.start();
    REQUIRE(error);
    CHECK_THAT(error->message, Catch::Contains("file:/nonexistent/dmsd/trip.mp4") &&
                                   Catch::Contains("no such file"));
    CHECK(Capture::validate(smallCapture("file:/nonexistent/x.mp4")));
}

TEST_CASE("live: a file missing at start is retried with the camera back-off until it appears",
          "[capture]") {
    dmsd::test::TempDir dir("dmsd-capture-late");
    const auto path = dir / "late.avi";
    EventLog log;
    CaptureOptions options;
    options.mode = CaptureMode::Live;
    options.backoffInitial = 50ms;
    options.backoffMax = 200ms;
    options.onEvent = log.sink();
    Capture capture(smallCapture("file:" + path.string()), options);
    // Before: start() failed for good, and `run` never looked at the file again.
    REQUIRE_FALSE(capture.start());
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::Error) >= 1; }));
    CHECK_THAT(log.firstMessage(CaptureEvent::Kind::Error), Catch::Contains("no such file"));
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::Restarting) >= 1; }));
    dmsd::test::VideoSpec spec;
    spec.width = 160;
    spec.height = 120;
    spec.container = dmsd::test::VideoContainer::AviMjpeg;
    spec.segments = {dmsd::test::VideoSegment{4.0, {}, true}};
    dmsd::test::generateVideo(dir / "writing.avi", spec);
    std::filesystem::rename(dir / "writing.avi", path);
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::Streaming) >= 1; }, 20s));
    capture.stop();
}

TEST_CASE("a FIFO as a file source is refused at once, never read", "[capture]") {
    dmsd::test::TempDir dir("dmsd-capture-fifo");
    const auto path = dir / "trip.mp4";
    REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("file:" + path.string()), options);
    // Before: filesrc blocked in open() of the FIFO, and so did start().
    auto error = capture.start();
    REQUIRE(error);
    CHECK_THAT(error->message, Catch::Contains("is a FIFO (named pipe), not a regular file"));
}

TEST_CASE("a bad pipeline description is a clear error with GStreamer's message", "[capture]") {
    Capture capture(smallCapture("pipeline:videotestsrc ! dmsdnosuchelement"), {});
    auto error = capture.start();
    REQUIRE(error);
    CHECK_THAT(error->message, Catch::Contains("pipeline:videotestsrc ! dmsdnosuchelement") &&
                                   Catch::Contains("dmsdnosuchelement"));

    auto syntax = Capture::validate(smallCapture("pipeline:videotestsrc ! ! !"));
    REQUIRE(syntax);
    CHECK_THAT(syntax->message, Catch::Contains("cannot be built"));

    auto noPad = Capture::validate(smallCapture("pipeline:videotestsrc ! fakesink"));
    REQUIRE(noPad);
    CHECK_THAT(noPad->message, Catch::Contains("unlinked source pad"));

    auto pattern = Capture::validate(smallCapture("test:dmsd-no-pattern"));
    REQUIRE(pattern);
    CHECK_THAT(pattern->message, Catch::Contains("dmsd-no-pattern") && Catch::Contains("smpte"));

    CHECK_FALSE(Capture::validate(smallCapture("pipeline:videotestsrc ! videoconvert")));
}

TEST_CASE("a corrupt file is an error, not a hang", "[capture]") {
    test::TempDir dir;
    test::writeCorruptVideo(dir / "bad.mp4", test::Corruption::Garbage);
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("file:" + (dir / "bad.mp4").string()), options);
    auto error = capture.start();
    if (!error) {
        // Some demuxers only fail once streaming: then it ends with finalError.
        Drained drained = drain(capture);
        CHECK(drained.frames == 0);
        error = capture.finalError();
    }
    REQUIRE(error);
    CHECK_THAT(error->message, Catch::Contains("bad.mp4"));
    CHECK(capture.state() == CameraState::Failed);
}

TEST_CASE("a live source that ends is restarted with backoff, video time keeps increasing",
          "[capture][restart]") {
    EventLog log;
    CaptureOptions options;
    options.backoffInitial = 20ms;
    options.backoffMax = 80ms;
    options.onEvent = log.sink();
    Capture capture(
        smallCapture("pipeline:videotestsrc num-buffers=3 ! video/x-raw,width=160,height=120"),
        options);
    auto error = capture.start();
    INFO((error ? error->message : std::string()));
    REQUIRE_FALSE(error);
    double lastPts = -1.0;
    bool increasing = true;
    std::size_t frames = 0;
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (capture.counters().restarts < 3 && std::chrono::steady_clock::now() < deadline) {
        PullResult result = capture.nextFrame(100ms);
        if (result.status == PullResult::Status::Frame) {
            increasing = increasing && result.frame->ptsS() > lastPts;
            lastPts = result.frame->ptsS();
            ++frames;
        }
    }
    CHECK(capture.counters().restarts >= 3);
    CHECK(log.count(CaptureEvent::Kind::EndOfStream) >= 3);
    // The counter rises just before its Restarting event is emitted.
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::Restarting) >= 3; }));
    CHECK(frames >= 6);
    CHECK(increasing);
    capture.stop();
}

TEST_CASE("a live source that fails to start is Lost, retried and counted", "[capture][restart]") {
    EventLog log;
    CaptureOptions options;
    options.backoffInitial = 20ms;
    options.backoffMax = 40ms;
    options.onEvent = log.sink();
    Capture capture(smallCapture("v4l2:/dev/dmsd-no-such-camera"), options);
    REQUIRE_FALSE(capture.start()); // live: a missing camera is a state
    CHECK(eventually([&] { return capture.counters().restarts >= 2; }));
    CHECK(log.count(CaptureEvent::Kind::Error) >= 2);
    CHECK_THAT(log.firstMessage(CaptureEvent::Kind::Error),
               Catch::Contains("v4l2:/dev/dmsd-no-such-camera"));
    const CameraState state = capture.state();
    CHECK((state == CameraState::Lost || state == CameraState::Retrying ||
           state == CameraState::Starting));
    capture.stop();
    CHECK(capture.state() == CameraState::Stopped);
}

TEST_CASE("the frame watchdog catches a source that stops silently", "[capture][restart]") {
    EventLog log;
    CaptureOptions options;
    options.firstFrameTimeout = 200ms;
    options.frameTimeout = 200ms;
    options.backoffInitial = 20ms;
    options.onEvent = log.sink();
    // valve drop=true swallows every buffer and posts nothing: a silent camera.
    Capture capture(smallCapture("pipeline:videotestsrc is-live=true ! valve drop=true"), options);
    REQUIRE_FALSE(capture.start());
    CHECK(eventually([&] { return log.count(CaptureEvent::Kind::FrameTimeout) >= 1; }));
    CHECK(eventually([&] { return capture.counters().restarts >= 1; }));
    capture.stop();
}

TEST_CASE("frame path over an offline file: sequences cover the video", "[capture][framepath]") {
    test::TempDir dir;
    test::VideoSpec spec = shortVideo(test::VideoContainer::Mp4H264);
    spec.segments = {{2.0, {128, 128, 128}, false}, {2.0, {200, 40, 40}, true}};
    test::generateVideo(dir / "trip.mp4", spec);
    CaptureOptions options;
    options.mode = CaptureMode::Offline;
    Capture capture(smallCapture("file:" + (dir / "trip.mp4").string()), options);
    REQUIRE_FALSE(capture.start());
    SamplingSettings sampling;
    sampling.interval = 1000ms;
    std::vector<EncodedSequencePtr> sequences;
    std::size_t skipped = 0;
    FramePath path(capture, sampling, EncodeSettings{},
                   {[&](EncodedSequencePtr s) { sequences.push_back(std::move(s)); },
                    [&](const SkippedWindow&) { ++skipped; },
                    {}});
    std::atomic<bool> stop{false};
    path.run(stop, 1s);
    CHECK(path.ended());
    // [0,1) analysed, [1,2) still: skipped, [2,3) and [3,4) moving: analysed.
    CHECK(sequences.size() == 3);
    CHECK(skipped == 1);
    for (const auto& sequence : sequences) {
        CHECK(sequence->frames.size() == 4);
        CHECK(sequence->images.size() == 4);
        CHECK(sequence->images[0].width == 160);
    }
    CHECK(path.counters().framesSampled == test::frameCount(spec));
}
