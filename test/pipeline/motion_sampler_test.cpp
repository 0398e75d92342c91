#include <functional>
#include <vector>

#include <catch2/catch.hpp>

#include "pipeline/motion_sampler.h"

using namespace dmsd;

namespace {

constexpr int kFps = 10;

FramePtr lumaFrame(std::uint64_t id, std::uint8_t y) {
    FrameMeta meta;
    meta.id = id;
    meta.ptsS = static_cast<double>(id) / kFps;
    meta.durationS = 1.0 / kFps;
    return Frame::solid(64, 48, y, 128, 128, meta);
}

SamplingSettings settings(int intervalMs, int frames, double threshold, int maxStaticSkipMs) {
    SamplingSettings s;
    s.interval = Millis(intervalMs);
    s.framesPerSequence = frames;
    s.motionThreshold = threshold;
    s.maxStaticSkip = Millis(maxStaticSkipMs);
    return s;
}

struct WindowLog {
    std::vector<SampledSequence> sequences;
    std::vector<SkippedWindow> skipped;
    std::vector<char> order; ///< 'A' analysed, 'S' skipped, per window
};

/// Feeds frames 0..count-1 with luma lumaAt(id), then flushes.
WindowLog run(MotionSampler& sampler, std::uint64_t count,
              const std::function<std::uint8_t(std::uint64_t)>& lumaAt, bool flush = true) {
    WindowLog outcome;
    auto collect = [&outcome](std::vector<SamplerOutput>&& outputs) {
        for (auto& output : outputs) {
            if (auto* sequence = std::get_if<SampledSequence>(&output)) {
                outcome.sequences.push_back(std::move(*sequence));
                outcome.order.push_back('A');
            } else {
                outcome.skipped.push_back(std::get<SkippedWindow>(output));
                outcome.order.push_back('S');
            }
        }
    };
    for (std::uint64_t id = 0; id < count; ++id) {
        collect(sampler.push(lumaFrame(id, lumaAt(id))));
    }
    if (flush) {
        collect(sampler.flush());
    }
    return outcome;
}

std::vector<std::uint64_t> ids(const SampledSequence& sequence) {
    std::vector<std::uint64_t> out;
    for (const auto& frame : sequence.frames) {
        out.push_back(frame.info.frameId);
    }
    return out;
}

} // namespace

TEST_CASE("motion score is the subsampled mean absolute luma difference", "[sampler]") {
    LumaThumb a;
    LumaThumb b;
    subsampleLuma(lumaFrame(0, 100)->planes(), 4, a);
    subsampleLuma(lumaFrame(1, 110)->planes(), 4, b);
    CHECK(a.width == 16);
    CHECK(a.height == 12);
    CHECK(meanAbsDiff(a, a) == 0.0);
    CHECK(meanAbsDiff(a, b) == Approx(10.0 / 255.0));
    LumaThumb black;
    LumaThumb white;
    subsampleLuma(lumaFrame(0, 0)->planes(), 4, black);
    subsampleLuma(lumaFrame(0, 255)->planes(), 4, white);
    CHECK(meanAbsDiff(black, white) == Approx(1.0));
    CHECK(contentHash(a) == contentHash(a));
    CHECK(contentHash(a) != contentHash(b));
}

TEST_CASE("first and last frame of a window are always in its sequence", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    // Constant scene: the first window is analysed (nothing analysed before).
    WindowLog outcome = run(sampler, 10, [](auto) { return std::uint8_t{100}; });
    REQUIRE(outcome.sequences.size() == 1);
    const auto& sequence = outcome.sequences.front();
    CHECK(sequence.frames.size() == 4);
    CHECK(sequence.frames.front().info.frameId == 0);
    CHECK(sequence.frames.back().info.frameId == 9);
    CHECK(sequence.tStartS == Approx(0.0));
    CHECK(sequence.tEndS == Approx(1.0));
    CHECK(sequence.sequenceId == 1);
    CHECK(sequence.motion == Approx(1.0)); // nothing to compare with yet
}

TEST_CASE("frames_per_sequence 2 sends only first and last", "[sampler]") {
    MotionSampler sampler(settings(1000, 2, 0.02, 10000));
    WindowLog outcome = run(sampler, 10, [](auto id) { return std::uint8_t(id * 20); });
    REQUIRE(outcome.sequences.size() == 1);
    CHECK(ids(outcome.sequences.front()) == std::vector<std::uint64_t>{0, 9});
}

TEST_CASE("the middle frames are those of most change", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    // Frame 3 jumps by 50, frame 4 back; frame 7 jumps by 80, frame 8 back.
    WindowLog outcome = run(sampler, 10, [](auto id) {
        return id == 3 ? std::uint8_t{150} : id == 7 ? std::uint8_t{180} : std::uint8_t{100};
    });
    REQUIRE(outcome.sequences.size() == 1);
    CHECK(ids(outcome.sequences.front()) == std::vector<std::uint64_t>{0, 7, 8, 9});
    CHECK(outcome.sequences.front().frames[1].info.motion == Approx(80.0 / 255.0));
}

TEST_CASE("a static scene is skipped after its first analysis", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    WindowLog outcome = run(sampler, 50, [](auto) { return std::uint8_t{100}; });
    CHECK(outcome.order == std::vector<char>{'A', 'S', 'S', 'S', 'S'});
    REQUIRE(outcome.skipped.size() == 4);
    CHECK(outcome.skipped[0].tStartS == Approx(1.0));
    CHECK(outcome.skipped[0].tEndS == Approx(2.0));
    CHECK(outcome.skipped[0].frameCount == 10);
    CHECK(outcome.skipped[0].lastSequenceId == 1);
    CHECK(outcome.skipped[3].sinceAnalysedS == Approx(4.0));
    CHECK(sampler.windowsSkipped() == 4);
    CHECK(sampler.sequencesEmitted() == 1);
}

TEST_CASE("a moving scene is analysed every window", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    WindowLog outcome = run(sampler, 50, [](auto id) { return std::uint8_t((id % 2) ? 60 : 200); });
    CHECK(outcome.order == std::vector<char>(5, 'A'));
    for (const auto& sequence : outcome.sequences) {
        CHECK(sequence.frames.size() == 4);
        CHECK(sequence.motion > 0.02);
    }
}

TEST_CASE("threshold edge: a difference equal to the threshold is static, above is not",
          "[sampler]") {
    const double threshold = 5.0 / 255.0;
    SECTION("equal") {
        MotionSampler sampler(settings(1000, 4, threshold, 10000));
        WindowLog outcome =
            run(sampler, 20, [](auto id) { return std::uint8_t(id < 10 ? 100 : 105); });
        CHECK(outcome.order == std::vector<char>{'A', 'S'});
    }
    SECTION("one level above") {
        MotionSampler sampler(settings(1000, 4, threshold, 10000));
        WindowLog outcome =
            run(sampler, 20, [](auto id) { return std::uint8_t(id < 10 ? 100 : 106); });
        CHECK(outcome.order == std::vector<char>{'A', 'A'});
        CHECK(outcome.sequences[1].motion == Approx(6.0 / 255.0));
    }
}

TEST_CASE("max_static_skip forces a re-analysis of a static scene", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 3000));
    WindowLog outcome = run(sampler, 100, [](auto) { return std::uint8_t{100}; });
    // Analysed windows end at 1, 4, 7 and 10 s (age 3 s is not younger than 3 s).
    CHECK(outcome.order == std::vector<char>{'A', 'S', 'S', 'A', 'S', 'S', 'A', 'S', 'S', 'A'});
    REQUIRE(outcome.sequences.size() == 4);
    CHECK_FALSE(outcome.sequences[0].forcedByMaxStaticSkip);
    CHECK(outcome.sequences[1].forcedByMaxStaticSkip);
    CHECK(outcome.sequences[1].tEndS == Approx(4.0));
}

TEST_CASE("a change into a still scene is analysed, then the still scene is skipped", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 100000));
    // Still at 100 for 3 s, a cut to 200, still for 3 s.
    WindowLog outcome = run(sampler, 60, [](auto id) { return std::uint8_t(id < 30 ? 100 : 200); });
    CHECK(outcome.order == std::vector<char>{'A', 'S', 'S', 'A', 'S', 'S'});
    // A slow drift that never exceeds the threshold between neighbours still
    // triggers once it departs from the last analysed frame.
    MotionSampler drift(settings(1000, 4, 0.02, 100000));
    WindowLog drifting = run(drift, 60, [](auto id) { return std::uint8_t(100 + id / 3); });
    CHECK(drifting.order == std::vector<char>{'A', 'S', 'A', 'S', 'A', 'S'});
}

TEST_CASE("flush closes a partial window of at least two frames", "[sampler]") {
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    WindowLog outcome = run(sampler, 15, [](auto id) { return std::uint8_t(id * 10); });
    REQUIRE(outcome.sequences.size() == 2);
    CHECK(ids(outcome.sequences[1]) == std::vector<std::uint64_t>{10, 11, 12, 14});

    MotionSampler single(settings(1000, 4, 0.02, 10000));
    WindowLog one = run(single, 11, [](auto id) { return std::uint8_t(id * 10); });
    CHECK(one.sequences.size() == 1); // a one-frame tail is not a sequence
}

TEST_CASE("frame infos carry pts, content hash and capture time", "[sampler]") {
    MotionSampler sampler(settings(1000, 3, 0.02, 10000));
    WindowLog outcome = run(sampler, 10, [](auto id) { return std::uint8_t(id < 5 ? 100 : 140); });
    REQUIRE(outcome.sequences.size() == 1);
    const auto& frames = outcome.sequences.front().frames;
    REQUIRE(frames.size() == 3);
    CHECK(frames[1].info.frameId == 5);
    CHECK(frames[1].info.ptsSeconds == Approx(0.5));
    CHECK(frames[0].info.contentHash != frames[1].info.contentHash);
    CHECK(frames[1].info.contentHash == frames[2].info.contentHash);
    CHECK(frames[1].frame->id() == 5);
}

TEST_CASE("closeNow closes the window in progress as an analysed sequence", "[sampler]") {
    // A static scene: its windows would be skipped after the first.
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    WindowLog first = run(
        sampler, 10, [](auto) { return std::uint8_t{100}; }, false);
    REQUIRE(first.order == std::vector<char>{'A'});
    // Frames 10..14 of the next window, then an event: closed now, and analysed
    // although nothing moved.
    for (std::uint64_t id = 10; id < 15; ++id) {
        CHECK(sampler.push(lumaFrame(id, 100)).empty());
    }
    std::vector<SamplerOutput> early = sampler.closeNow();
    REQUIRE(early.size() == 1);
    const auto* sequence = std::get_if<SampledSequence>(&early[0]);
    REQUIRE(sequence != nullptr);
    CHECK(sequence->tStartS == Approx(1.0));
    CHECK(sequence->tEndS == Approx(1.5));
    CHECK(ids(*sequence).front() == 10);
    CHECK(ids(*sequence).back() == 14);
    // Nothing open: nothing to close. One frame is not a window.
    CHECK(sampler.closeNow().empty());
    CHECK(sampler.push(lumaFrame(15, 100)).empty());
    CHECK(sampler.closeNow().empty());
    // The next window starts with the next frame and keeps the interval from there.
    WindowLog rest;
    for (std::uint64_t id = 16; id < 26; ++id) {
        for (auto& output : sampler.push(lumaFrame(id, 100))) {
            rest.order.push_back(std::holds_alternative<SampledSequence>(output) ? 'A' : 'S');
        }
    }
    CHECK(rest.order == std::vector<char>{'S'});
}

TEST_CASE("setInterval stretches the window in progress and the next, then back at once",
          "[sampler]") {
    // A moving scene at 10 fps: every window is analysed, so its ends show the interval.
    MotionSampler sampler(settings(1000, 4, 0.02, 10000));
    std::vector<double> ends;
    auto feed = [&](std::uint64_t from, std::uint64_t to) {
        for (std::uint64_t id = from; id < to; ++id) {
            for (auto& output : sampler.push(lumaFrame(id, id % 2 ? 40 : 200))) {
                ends.push_back(std::get<SampledSequence>(output).tEndS);
            }
        }
    };
    feed(0, 15); // one window of 1 s closed ([0, 1)), the next open since 1.0
    REQUIRE(ends.size() == 1);
    sampler.setInterval(Millis(3000));
    feed(15, 70); // the open window lasts 3 s ([1, 4)), then [4, 7)
    sampler.setInterval(Millis(1000));
    feed(70, 95); // [7, 8), [8, 9): 1 s again from the window in progress
    REQUIRE(ends.size() == 5);
    CHECK(ends[0] == Approx(1.0));
    CHECK(ends[1] == Approx(4.0));
    CHECK(ends[2] == Approx(7.0));
    CHECK(ends[3] == Approx(8.0));
    CHECK(ends[4] == Approx(9.0));
}
