#include <cmath>
#include <vector>

#include <catch2/catch.hpp>

#include "vision/signals.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// A synthetic face: eyes of 30 px width whose height is set by the wanted
/// eye aspect ratio, a mouth whose opening is set by the wanted MAR.
FaceObservation face(double ear, double mar = 0.05, HeadPose pose = {}) {
    FaceObservation f;
    f.present = true;
    f.confidence = 1.0;
    f.detected = true;
    f.pose = pose;
    auto eye = [&](int first, double cx) {
        const double w = 30.0;
        const double h = ear * w; // EAR = 2h / (2w)
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
    const double w = 60.0;
    const double h = mar * w * 2.0 / 3.0; // MAR = 3h / (2w) = mar
    auto& l = f.landmarks;
    l[60] = {120, 200};
    l[64] = {120 + w, 200};
    for (int i = 0; i < 3; ++i) {
        const double x = 120 + w * (i + 1) / 4.0;
        l[static_cast<std::size_t>(61 + i)] = {x, 200 - h / 2};
        l[static_cast<std::size_t>(67 - i)] = {x, 200 + h / 2};
    }
    return f;
}

FaceObservation noFace() {
    FaceObservation f;
    f.detected = true;
    return f;
}

SignalThresholds defaults() {
    return SignalThresholds{};
}

/// A condition that holds from \a threshold seconds on, checked away from
/// the instant itself (where rounding of the summed frame times decides).
void checkFrom(bool actual, double elapsed, double threshold) {
    if (std::abs(elapsed - threshold) > 1e-6) {
        INFO("elapsed " << elapsed);
        CHECK(actual == (elapsed > threshold));
    }
}

} // namespace

TEST_CASE("eye and mouth aspect ratios of synthetic landmarks", "[vision][signals]") {
    const FaceObservation open = face(0.3, 0.05);
    CHECK(eyeAspectRatio(open.landmarks, 36) == Approx(0.3));
    CHECK(eyeAspectRatio(open.landmarks, 42) == Approx(0.3));
    CHECK(mouthAspectRatio(open.landmarks) == Approx(0.05));
    const FaceObservation yawn = face(0.3, 0.8);
    CHECK(mouthAspectRatio(yawn.landmarks) == Approx(0.8));
    FaceLandmarks degenerate{};
    CHECK(eyeAspectRatio(degenerate, 36) == 0.0);
    CHECK(mouthAspectRatio(degenerate) == 0.0);
}

TEST_CASE("a short closure is a blink, a long one an eye closure", "[vision][signals]") {
    SignalTracker tracker(defaults()); // blink_max 500ms, eyes_closed_after 2s
    const double dt = 1.0 / 15;
    double t = 0.0;
    for (int i = 0; i < 15; ++i, t += dt) {
        tracker.update(face(0.3), t);
    }
    // A 200 ms closure: a blink, never a long closure.
    for (int i = 0; i < 3; ++i, t += dt) {
        const DriverSignals& s = tracker.update(face(0.08), t);
        CHECK(s.eyesClosed.value);
        CHECK_FALSE(s.eyesClosedLong);
    }
    const DriverSignals& reopened = tracker.update(face(0.3), t);
    t += dt;
    CHECK(reopened.blinked);
    CHECK(reopened.blinks == 1);
    CHECK(reopened.eyesClosedS == 0.0);

    // A 3 s closure: not a blink; the condition holds from 2 s on.
    const double onset = t;
    bool longAt2 = false;
    for (int i = 0; i < 45; ++i, t += dt) {
        const DriverSignals& s = tracker.update(face(0.08), t);
        CHECK(s.eyesClosedS == Approx(t - onset));
        checkFrom(s.eyesClosedLong, t - onset, 2.0);
        longAt2 = longAt2 || s.eyesClosedLong;
    }
    CHECK(longAt2);
    const DriverSignals& after = tracker.update(face(0.3), t);
    CHECK_FALSE(after.blinked);
    CHECK(after.blinks == 1);
    CHECK_FALSE(after.eyesClosedLong);
}

TEST_CASE("a closure survives a short gap in the face, not a long one", "[vision][signals]") {
    SignalTracker tracker(defaults());
    tracker.update(face(0.08), 0.0);
    tracker.update(face(0.08), 1.0 / 15);
    // 0.4 s without a face (within the 0.5 s hold): the closure goes on.
    tracker.update(noFace(), 0.3);
    const DriverSignals& held = tracker.update(face(0.08), 0.4);
    CHECK(held.eyesClosedS == Approx(0.4));
    // 1 s without a face: the closure restarts at the next closed frame.
    tracker.update(noFace(), 0.9);
    const DriverSignals& restarted = tracker.update(face(0.08), 1.5);
    CHECK(restarted.eyesClosedS == 0.0);
    CHECK(restarted.faceAbsentS == 0.0);
}

TEST_CASE("PERCLOS is the closed share of the measured time in the window", "[vision][signals]") {
    SignalThresholds th;
    th.perclosWindow = 10s;
    th.perclosThreshold = 0.15;
    SignalTracker tracker(th);
    // 10 frames per second; in every second the eyes are closed for 0.2 s.
    const double dt = 0.1;
    int i = 0;
    DriverSignals s;
    for (; i <= 100; ++i) {
        s = tracker.update(face(i % 10 < 2 ? 0.08 : 0.3), i * dt);
    }
    // At t = 10 s the window holds 100 spans of 0.1 s, 20 of them closed.
    CHECK(s.perclos.value == Approx(0.2).margin(1e-6));
    CHECK(s.perclos.confidence == Approx(1.0));
    CHECK(s.perclosHigh);

    // Then open eyes: the closed time leaves the window by time.
    for (int k = 0; k < 50; ++k, ++i) {
        s = tracker.update(face(0.3), i * dt);
    }
    // t = 15 s: the window [5, 15] holds the closed spans after the frames
    // of 5.0, 5.1, 6.0, 6.1, ..., 9.0, 9.1 and 10.0: 11 of 0.1 s.
    CHECK(s.perclos.value == Approx(0.11).margin(1e-6));
    CHECK_FALSE(s.perclosHigh);
    for (int k = 0; k < 60; ++k, ++i) {
        s = tracker.update(face(0.3), i * dt);
    }
    CHECK(s.perclos.value == Approx(0.0).margin(1e-6));
    CHECK(s.perclos.confidence == Approx(1.0));
}

TEST_CASE("PERCLOS counts time, not frames, and leaves out unmeasured time", "[vision][signals]") {
    SignalThresholds th;
    th.perclosWindow = 10s;
    SignalTracker tracker(th);
    // Open at 20 fps for 4 s, then closed at 5 fps for 1 s: equal frame
    // counts would say 20/100; the time says 1 s of 5 s.
    double t = 0.0;
    for (int i = 0; i < 80; ++i, t += 0.05) {
        tracker.update(face(0.3), t);
    }
    DriverSignals s;
    for (int i = 0; i < 6; ++i, t += 0.2) {
        s = tracker.update(face(0.08), t);
    }
    // Spans: 79 open x 0.05 + one 0.05 open (into the first closed frame)
    // + 5 closed x 0.2 = 4 s open, 1 s closed.
    CHECK(s.perclos.value == Approx(1.0 / 5.0).margin(1e-6));
    CHECK(s.perclos.confidence == Approx(0.5).margin(1e-6));
    // Time without a face is not measured: PERCLOS and its confidence stay.
    tracker.update(noFace(), t + 1.0);
    s = tracker.update(noFace(), t + 3.0);
    CHECK(s.perclos.value == Approx(0.2).margin(1e-6));
    CHECK(s.perclos.confidence == Approx(0.5).margin(1e-6));
    CHECK(s.faceAbsentS == Approx(2.0));
    CHECK_FALSE(s.facePresent.value);
    // Under half the window measured: no PERCLOS condition, however high.
    SignalThresholds shortWindow = th;
    shortWindow.perclosWindow = 20s;
    SignalTracker sparse(shortWindow);
    for (int i = 0; i <= 90; ++i) {
        s = sparse.update(face(0.08), i * 0.1);
    }
    CHECK(s.perclos.value == Approx(1.0));
    CHECK(s.perclos.confidence == Approx(0.45).margin(1e-6));
    CHECK_FALSE(s.perclosHigh);
    for (int i = 91; i <= 110; ++i) {
        s = sparse.update(face(0.08), i * 0.1);
    }
    CHECK(s.perclosHigh);
}

TEST_CASE("a yawn is a mouth held wide open, talking is not", "[vision][signals]") {
    SignalTracker tracker(defaults()); // mar_yawn 0.6, yawn_min 1s
    double t = 0.0;
    const double dt = 0.1;
    DriverSignals s;
    // Talking: the mouth opens wide for 0.3 s at a time.
    for (int i = 0; i < 40; ++i, t += dt) {
        s = tracker.update(face(0.3, i % 6 < 3 ? 0.9 : 0.02), t);
        CHECK_FALSE(s.yawning);
    }
    CHECK(s.yawns == 0);
    // A yawn: 3 s wide open.
    const double start = t;
    for (int i = 0; i < 30; ++i, t += dt) {
        s = tracker.update(face(0.3, 0.9), t);
        checkFrom(s.yawning, t - start, 1.0);
    }
    CHECK(s.yawns == 1);
    CHECK(s.yawnsInWindow == 1);
    s = tracker.update(face(0.3, 0.02), t);
    CHECK_FALSE(s.yawning);
    CHECK(s.yawns == 1);
    // The yawn leaves the 60 s window by time.
    s = tracker.update(face(0.3, 0.02), start + 60.5);
    CHECK(s.yawnsInWindow == 0);
    CHECK(s.yawns == 1);
}

TEST_CASE("the head leaving the on-road cone, and for how long", "[vision][signals]") {
    SignalThresholds th; // cone 30 deg yaw, 20 deg pitch, off_road_after 2s
    th.coneCenterPitchDeg = -10.0;
    SignalTracker tracker(th);
    double t = 0.0;
    const double dt = 0.1;
    DriverSignals s;
    for (int i = 0; i < 10; ++i, t += dt) {
        s = tracker.update(face(0.3, 0.05, {10.0, -25.0, 0.0}), t); // inside (pitch -10 +- 20)
        CHECK_FALSE(s.outsideCone);
    }
    // Yaw 40: outside. After 2 s, the off-road condition.
    const double exit = t;
    for (int i = 0; i < 25; ++i, t += dt) {
        s = tracker.update(face(0.3, 0.05, {40.0, -10.0, 0.0}), t);
        CHECK(s.outsideCone);
        CHECK(s.outsideConeS == Approx(t - exit));
        checkFrom(s.offRoadLong, t - exit, 2.0);
    }
    // Turned further, beyond the detector: still away, the time goes on.
    s = tracker.update(noFace(), t);
    CHECK(s.outsideCone);
    CHECK(s.outsideConeS == Approx(t - exit));
    CHECK(s.offRoadLong);
    t += dt;
    // Back: inside at once.
    s = tracker.update(face(0.3, 0.05, {-5.0, -12.0, 0.0}), t);
    CHECK_FALSE(s.outsideCone);
    CHECK(s.outsideConeS == 0.0);
    CHECK_FALSE(s.offRoadLong);
    // A face lost from inside the cone is an absence, not a glance away.
    s = tracker.update(noFace(), t + 1.0);
    CHECK_FALSE(s.outsideCone);
    // Pitch alone: looking down at the lap.
    s = tracker.update(face(0.3, 0.05, {0.0, -35.0, 0.0}), t + 2.0);
    CHECK(s.outsideCone);
}

TEST_CASE("confidences follow the face and the head turn", "[vision][signals]") {
    SignalTracker tracker(defaults());
    FaceObservation f = face(0.3, 0.05, {0.0, 0.0, 0.0});
    f.confidence = 0.8;
    DriverSignals s = tracker.update(f, 0.0);
    CHECK(s.facePresent.confidence == Approx(0.8));
    CHECK(s.earLeft.confidence == Approx(0.8));
    f.pose = HeadPose{30.0, 0.0, 0.0};
    s = tracker.update(f, 0.1);
    CHECK(s.earLeft.confidence == Approx(0.4));
    CHECK(s.pose.confidence == Approx(0.8));
    s = tracker.update(noFace(), 0.2);
    CHECK(s.facePresent.confidence == Approx(1.0));
    CHECK(s.earLeft.confidence == 0.0);
    CHECK(s.pose.confidence == 0.0);
}

TEST_CASE("video time that goes backwards does not undo durations", "[vision][signals]") {
    SignalTracker tracker(defaults());
    tracker.update(face(0.08), 1.0);
    const DriverSignals& s = tracker.update(face(0.08), 0.5);
    CHECK(s.tS == 1.0);
    CHECK(s.eyesClosedS == 0.0);
}

TEST_CASE("an absence lost from inside the cone becomes the absence condition",
          "[vision][signals]") {
    SignalTracker tracker(defaults()); // face_absent_after 2s
    double t = 0.0;
    const double dt = 0.1;
    DriverSignals s;
    for (int i = 0; i < 10; ++i, t += dt) {
        s = tracker.update(face(0.3), t);
        CHECK_FALSE(s.faceAbsentLong);
    }
    const double lost = t;
    for (int i = 0; i < 30; ++i, t += dt) {
        s = tracker.update(noFace(), t);
        checkFrom(s.faceAbsentLong, t - lost, 2.0);
    }
    s = tracker.update(face(0.3), t);
    CHECK_FALSE(s.faceAbsentLong);

    // Lost from outside the cone: looking away, not absent.
    SignalTracker away(defaults());
    t = 0.0;
    for (int i = 0; i < 5; ++i, t += dt) {
        s = away.update(face(0.3, 0.05, {50.0, 0.0, 0.0}), t);
    }
    for (int i = 0; i < 40; ++i, t += dt) {
        s = away.update(noFace(), t);
        CHECK_FALSE(s.faceAbsentLong);
    }
    CHECK(s.offRoadLong);
}

TEST_CASE("yawning often: yawns_drowsy yawns in the window", "[vision][signals]") {
    SignalThresholds th;
    th.yawnsDrowsy = 2;
    SignalTracker tracker(th);
    double t = 0.0;
    const double dt = 0.1;
    DriverSignals s;
    for (int yawn = 0; yawn < 2; ++yawn) {
        CHECK_FALSE(s.yawningOften);
        for (int i = 0; i < 20; ++i, t += dt) {
            s = tracker.update(face(0.3, 0.9), t);
        }
        for (int i = 0; i < 10; ++i, t += dt) {
            s = tracker.update(face(0.3, 0.02), t);
        }
    }
    CHECK(s.yawnsInWindow == 2);
    CHECK(s.yawningOften);
    s = tracker.update(face(0.3, 0.02), t + 61.0);
    CHECK_FALSE(s.yawningOften);
}

TEST_CASE("vision onsets: eyes closed past a blink, the head leaving the cone, the face lost",
          "[vision][signals]") {
    const SignalThresholds th = defaults(); // blink_max 500ms
    SignalTracker tracker(th);
    double t = 0.0;
    const double dt = 0.1;
    std::vector<double> onsets;
    DriverSignals before = tracker.current();
    const auto step = [&](const FaceObservation& f) {
        const DriverSignals now = tracker.update(f, t);
        if (visionOnset(before, now, th)) {
            onsets.push_back(t);
        }
        before = now;
        t += dt;
    };
    for (int i = 0; i < 10; ++i) {
        step(face(0.3)); // attentive: 0.0 .. 0.9
    }
    for (int i = 0; i < 3; ++i) {
        step(face(0.05)); // a blink: 1.0 .. 1.2
    }
    for (int i = 0; i < 10; ++i) {
        step(face(0.3)); // 1.3 .. 2.2
    }
    for (int i = 0; i < 10; ++i) {
        step(face(0.05)); // closed from 2.3: an onset at 2.8
    }
    for (int i = 0; i < 10; ++i) {
        step(face(0.3, 0.05, {45.0, 0.0, 0.0})); // turned away from 3.3: an onset at once
    }
    for (int i = 0; i < 10; ++i) {
        step(face(0.3)); // 4.3 .. 5.2
    }
    for (int i = 0; i < 10; ++i) {
        step(noFace()); // lost from 5.3: an onset at 5.8 (0.5 s)
    }
    REQUIRE(onsets.size() == 3);
    CHECK(onsets[0] == Approx(2.8));
    CHECK(onsets[1] == Approx(3.3));
    CHECK(onsets[2] == Approx(5.8));
}

TEST_CASE("visionQuiet: an attentive face only, never a closure, turn, absence or condition",
          "[vision]") {
    SignalTracker tracker(defaults());
    CHECK_FALSE(visionQuiet(tracker.current())); // nothing seen yet
    double t = 0.0;
    for (; t < 1.0; t += 1.0 / 15) {
        tracker.update(face(0.3), t);
    }
    CHECK(visionQuiet(tracker.current()));
    CHECK_FALSE(visionQuiet(tracker.update(face(0.05), t))); // eyes closed
    t += 1.0 / 15;
    tracker.update(face(0.3), t);
    t += 1.0 / 15;
    CHECK(visionQuiet(tracker.update(face(0.3), t)));
    HeadPose away;
    away.yawDeg = 60.0;
    t += 1.0 / 15;
    CHECK_FALSE(visionQuiet(tracker.update(face(0.3, 0.05, away), t))); // outside the cone
    t += 1.0 / 15;
    CHECK_FALSE(visionQuiet(tracker.update(noFace(), t))); // no face
}
