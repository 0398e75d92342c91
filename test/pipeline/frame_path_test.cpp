#include <deque>
#include <vector>

#include <catch2/catch.hpp>

#include "pipeline/frame_path.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// A FrameSource over synthetic frames: scripted, single-threaded.
class ScriptedSource : public FrameSource {
public:
    void add(std::uint8_t luma) {
        FrameMeta meta;
        meta.id = nextId_++;
        meta.ptsS = static_cast<double>(meta.id - 1) / 10.0;
        meta.durationS = 0.1;
        meta.capturedAt = std::chrono::steady_clock::now();
        frames_.push_back(Frame::solid(64, 48, luma, 128, 128, meta));
    }
    void idleOnce() { frames_.push_back(nullptr); }
    PullResult nextFrame(std::chrono::milliseconds) override {
        if (frames_.empty()) {
            return {PullResult::Status::Ended, nullptr};
        }
        FramePtr frame = frames_.front();
        frames_.pop_front();
        if (!frame) {
            return {PullResult::Status::Timeout, nullptr};
        }
        return {PullResult::Status::Frame, frame};
    }

private:
    std::deque<FramePtr> frames_;
    std::uint64_t nextId_ = 1;
};

} // namespace

TEST_CASE("frame path samples, encodes and reports skipped windows", "[framepath]") {
    ScriptedSource source;
    for (int i = 0; i < 30; ++i) {
        source.add(100); // 3 s still
    }
    source.idleOnce();
    for (int i = 0; i < 15; ++i) {
        source.add(static_cast<std::uint8_t>(i % 2 ? 30 : 220)); // 1.5 s of motion
    }
    SamplingSettings sampling;
    sampling.interval = 1000ms;
    sampling.framesPerSequence = 3;
    EncodeSettings encode;

    std::vector<EncodedSequencePtr> sequences;
    std::vector<SkippedWindow> skipped;
    FramePath path(source, sampling, encode,
                   {[&](EncodedSequencePtr s) { sequences.push_back(std::move(s)); },
                    [&](const SkippedWindow& w) { skipped.push_back(w); },
                    {}});
    std::vector<FramePath::Step> steps;
    FramePath::Step step;
    while ((step = path.pumpOnce(10ms)) != FramePath::Step::Ended) {
        steps.push_back(step);
    }
    CHECK(path.ended());
    CHECK(path.pumpOnce(10ms) == FramePath::Step::Ended);
    CHECK(std::count(steps.begin(), steps.end(), FramePath::Step::Idle) == 1);

    // Windows: [0,1) analysed, [1,2) and [2,3) skipped, [3,4) analysed, flush [4,4.5) analysed.
    REQUIRE(sequences.size() == 3);
    REQUIRE(skipped.size() == 2);
    CHECK(skipped[0].lastSequenceId == 1);
    for (const auto& sequence : sequences) {
        CHECK(sequence->images.size() == sequence->frames.size());
        CHECK(sequence->frames.size() >= 2);
        CHECK(sequence->lastFrameAt == sequence->frames.back().capturedAt);
    }
    CHECK(sequences[1]->tStartS == Approx(3.0));
    auto counters = path.counters();
    CHECK(counters.framesSampled == 45);
    CHECK(counters.sequencesEmitted == 3);
    CHECK(counters.windowsSkipped == 2);
    CHECK(counters.framesEncoded == 3 + 3 + 3);
    CHECK(counters.encodeErrors == 0);
}

TEST_CASE("frame path: every frame to onFrame before the sampler, a requested close at the "
          "next frame",
          "[framepath]") {
    ScriptedSource source;
    for (int i = 0; i < 25; ++i) {
        source.add(static_cast<std::uint8_t>(i % 2 ? 30 : 220));
    }
    SamplingSettings sampling;
    sampling.interval = 1000ms;
    sampling.framesPerSequence = 2;
    EncodeSettings encode;
    std::vector<double> ends;
    std::vector<std::uint64_t> seen;
    FramePathCallbacks callbacks;
    callbacks.onSequence = [&](EncodedSequencePtr s) {
        ends.push_back(s->tEndS);
    };
    callbacks.onFrame = [&](const FramePtr& frame) {
        seen.push_back(frame->id());
    };
    FramePath path(source, sampling, encode, callbacks);
    for (int i = 0; i < 14; ++i) { // frames 1..14: pts 0.0 .. 1.3
        REQUIRE(path.pumpOnce(10ms) == FramePath::Step::Frame);
    }
    REQUIRE(ends.size() == 1); // [0, 1)
    path.requestCloseWindow();
    path.requestCloseWindow(); // requests before the next frame count once
    REQUIRE(path.pumpOnce(10ms) == FramePath::Step::Frame); // pts 1.4: closes [1.0, 1.5)
    REQUIRE(ends.size() == 2);
    CHECK(ends[1] == Approx(1.5));
    CHECK(path.windowsClosedEarly() == 1);
    while (path.pumpOnce(10ms) != FramePath::Step::Ended) {
    }
    CHECK(seen.size() == 25);
    CHECK(seen.front() == 1);
    CHECK(seen.back() == 25);
    CHECK(path.windowsClosedEarly() == 1);
}
