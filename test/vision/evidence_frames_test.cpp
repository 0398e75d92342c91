#include <catch2/catch.hpp>

#include "pipeline/frame.h"
#include "vision/evidence_frames.h"
#include "vision/signals.h"

using namespace dmsd;

namespace {

/// A face with both eyes open (EAR 0.3) or shut (0.05), 68 landmarks laid
/// out as vision/signals.h reads them.
FaceObservation eyes(double ear) {
    FaceObservation f;
    f.present = true;
    f.confidence = 1.0;
    f.detected = true;
    auto eye = [&](int first, double cx) {
        const double w = 30.0;
        const double h = ear * w;
        auto& l = f.landmarks;
        l[static_cast<std::size_t>(first)] = {cx - w / 2, 100};
        l[static_cast<std::size_t>(first + 1)] = {cx - w / 6, 100 - h / 2};
        l[static_cast<std::size_t>(first + 2)] = {cx + w / 6, 100 - h / 2};
        l[static_cast<std::size_t>(first + 3)] = {cx + w / 2, 100};
        l[static_cast<std::size_t>(first + 4)] = {cx + w / 6, 100 + h / 2};
        l[static_cast<std::size_t>(first + 5)] = {cx - w / 6, 100 + h / 2};
    };
    eye(36, 100);
    eye(42, 200);
    auto& l = f.landmarks;
    l[60] = {120, 200};
    l[64] = {180, 200};
    for (int i = 0; i < 3; ++i) {
        const double x = 120 + 60.0 * (i + 1) / 4.0;
        l[static_cast<std::size_t>(61 + i)] = {x, 199};
        l[static_cast<std::size_t>(67 - i)] = {x, 201};
    }
    return f;
}

FramePtr frameAt(std::uint64_t id, double ptsS) {
    FrameMeta meta;
    meta.id = id;
    meta.ptsS = ptsS;
    return Frame::solid(64, 48, 120, 128, 128, meta);
}

} // namespace

TEST_CASE("evidence frames: only the onset and the condition turning on are pictured", "[vision]") {
    const SignalThresholds thresholds; // blink_max 0.5 s, eyes_closed_after 2 s
    SignalTracker tracker(thresholds);
    std::optional<DriverSignals> previous;
    EvidenceFrames kept;
    std::vector<double> pictured;
    // 15 fps: 1 s open, 3 s shut.
    for (int i = 0; i < 60; ++i) {
        const double t = i / 15.0;
        const DriverSignals& now = tracker.update(eyes(t < 1.0 ? 0.3 : 0.05), t);
        if (auto evidence = notableFrame(*frameAt(static_cast<std::uint64_t>(i + 1), t), previous,
                                         now, thresholds)) {
            pictured.push_back(evidence->ptsS);
            CHECK(evidence->image.bytes->size() > 100);
            CHECK(evidence->image.width == 64);
            kept.add(std::move(*evidence));
        }
        previous = now;
    }
    // The eyes shut past a blink (1.5 s) and for eyes_closed_after (3.0 s).
    REQUIRE(pictured.size() == 2);
    CHECK(pictured[0] == Approx(1.0 + 0.5).margin(0.07));
    CHECK(pictured[1] == Approx(1.0 + 2.0).margin(0.07));
    const EncodedSequencePtr& sequence = kept.sequence();
    REQUIRE(sequence);
    CHECK(sequence->sequenceId == 0);
    CHECK(sequence->images.size() == 2);
    CHECK(sequence->tStartS == pictured[0]);
    CHECK(sequence->tEndS == pictured[1]);
}

TEST_CASE("evidence frames: the last two are kept, oldest first", "[vision]") {
    EvidenceFrames kept;
    CHECK_FALSE(kept.sequence());
    for (std::uint64_t id = 1; id <= 3; ++id) {
        EvidenceFrame frame;
        frame.frameId = id;
        frame.ptsS = static_cast<double>(id);
        kept.add(frame);
    }
    REQUIRE(kept.sequence());
    REQUIRE(kept.sequence()->frames.size() == 2);
    CHECK(kept.sequence()->frames[0].frameId == 2);
    CHECK(kept.sequence()->frames[1].frameId == 3);
    kept.clear();
    CHECK_FALSE(kept.sequence());
}
