// Fusion of the per-frame vision with the model's answers in the decision engine
// (docs/alerts.md, Fusion): which source raises, holds and clears each kind.

#include <string>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "alerts/alert_engine.h"
#include "test/alerts/answers_fixtures.h"

using namespace dmsd;
using namespace dmsd::test;
namespace json = boost::json;

namespace {

using Type = AlertEvent::Type;

/// A face looking at the road, eyes open, all measured with confidence.
VisionEvidence attentive() {
    VisionEvidence v;
    v.facePresent = true;
    v.faceConfidence = 0.9;
    v.eyesMeasured = true;
    v.eyesConfidence = 0.9;
    v.poseMeasured = true;
    v.poseConfidence = 0.9;
    return v;
}

/// Eyes closed for \a closedS (the eye-closure condition from 2 s on).
VisionEvidence eyesClosed(double closedS) {
    VisionEvidence v = attentive();
    v.eyesClosed = true;
    v.eyesClosedS = closedS;
    v.eyesClosedLong = closedS >= 2.0;
    return v;
}

/// No face for \a absentS (the absence condition from 2 s on).
VisionEvidence noFace(double absentS) {
    VisionEvidence v;
    v.faceConfidence = 1.0;
    v.faceAbsentS = absentS;
    v.faceAbsentLong = absentS >= 2.0;
    return v;
}

/// The head outside the on-road cone for \a outsideS.
VisionEvidence lookingAway(double outsideS) {
    VisionEvidence v = attentive();
    v.yawDeg = 55.0;
    v.outsideCone = true;
    v.outsideConeS = outsideS;
    v.offRoadLong = outsideS >= 2.0;
    return v;
}

/// Feeds \a make(t - from) every \a step ms over [from, to]; collects the events.
template <class Make>
std::vector<AlertEvent> frames(AlertEngine& engine, long long from, long long to, Make make,
                               long long step = 100) {
    std::vector<AlertEvent> events;
    for (long long t = from; t <= to; t += step) {
        append(events, engine.observeVision(ms(t), make(static_cast<double>(t - from) / 1000.0)));
    }
    return events;
}

std::vector<AlertEvent> models(AlertEngine& engine, long long from, long long to,
                               const SequenceAnswers& answers, std::uint64_t& sequence,
                               long long step = 2000) {
    std::vector<AlertEvent> events;
    for (long long t = from; t <= to; t += step) {
        append(events, engine.observe(ms(t), sequence++, answers));
    }
    return events;
}

bool isActive(const AlertEngine& engine, AlertKind kind) {
    return (engine.activeMask() & alertBit(kind)) != 0;
}

/// No clear (escalations are allowed) among \a events.
bool noClear(const std::vector<AlertEvent>& events) {
    for (const AlertEvent& e : events) {
        if (e.type == AlertEvent::Type::Cleared) {
            return false;
        }
    }
    return true;
}

AlertSource activeSource(const AlertEngine& engine, AlertKind kind) {
    for (const ActiveAlert& alert : engine.activeAlerts()) {
        if (alert.kind == kind) {
            return alert.source;
        }
    }
    FAIL("not active");
    return AlertSource::Model;
}

} // namespace

TEST_CASE("vision: eyes closed long raises DROWSINESS at once, without raise_after") {
    AlertEngine engine(AlertsSettings{});
    // Eyes close at 1000; the condition holds from 3000 (2 s closed).
    CHECK(frames(engine, 0, 900, [](double) { return attentive(); }).empty());
    std::vector<AlertEvent> events =
        frames(engine, 1000, 3000, [](double s) { return eyesClosed(s); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS raised warning @3000");
    CHECK(events[0].source == AlertSource::Vision);
    CHECK(events[0].sequenceId == 0);
    CHECK(events[0].confidence == Approx(0.9));
    CHECK(events[0].evidence.at("source") == "vision");
    CHECK(events[0].evidence.at("onset_ms") == 1000); // the closure's start, measured by vision
    CHECK(events[0].evidence.at("vision").at("conditions").as_array().at(0) == "eyes_closed_long");
    CHECK(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Vision);
    // A closure shorter than the condition raises nothing.
    AlertEngine other(AlertsSettings{});
    CHECK(frames(other, 0, 1900, [](double s) { return eyesClosed(s); }).empty());
}

TEST_CASE("vision: escalation at critical_after from the condition's onset") {
    AlertEngine engine(AlertsSettings{}); // drowsiness critical_after 10 s
    frames(engine, 0, 9900, [](double s) { return eyesClosed(s); });
    CHECK(engine.activeAlerts().at(0).level == AlertLevel::Warning);
    REQUIRE(engine.nextDeadline() == ms(10000));
    const std::vector<AlertEvent> events = engine.tick(ms(10000));
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS level critical @10000");
    CHECK(events[0].source == AlertSource::Vision);
}

TEST_CASE("vision: its alert clears after clear_after of measured open eyes, a blink does "
          "not restart the proof, a lost face does") {
    AlertEngine engine(AlertsSettings{}); // drowsiness clear_after 6 s
    frames(engine, 0, 3000, [](double s) { return eyesClosed(s); });
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    // Open from 3100; a blink (0.2 s closure) at 5000.
    CHECK(frames(engine, 3100, 4900, [](double) { return attentive(); }).empty());
    CHECK(frames(engine, 5000, 5200, [](double s) { return eyesClosed(s); }).empty());
    std::vector<AlertEvent> events = frames(engine, 5300, 9100, [](double) { return attentive(); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS cleared cleared @9100");
    CHECK(events[0].source == AlertSource::Vision);
    CHECK(events[0].evidence.at("absent_ms") == 6000);

    // A face lost meanwhile is unknown: the proof starts again when it returns.
    AlertEngine lost(AlertsSettings{});
    frames(lost, 0, 3000, [](double s) { return eyesClosed(s); });
    frames(lost, 3100, 5000, [](double) { return attentive(); });
    CHECK(frames(lost, 5100, 5500, [](double s) { return noFace(s); }).empty());
    CHECK(noClear(frames(lost, 5600, 11500, [](double) { return attentive(); })));
    CHECK(describe(frames(lost, 11600, 11600, [](double) { return attentive(); })) ==
          std::vector<std::string>{"DROWSINESS cleared cleared @11600"});
}

TEST_CASE("fusion: a model answer AWAKE never vetoes a measured eye closure") {
    AlertEngine engine(AlertsSettings{});
    std::uint64_t sequence = 1;
    // The model keeps saying AWAKE with confidence while the eyes are closed.
    models(engine, 0, 1000, calm(), sequence, 1000);
    frames(engine, 1000, 3000, [](double s) { return eyesClosed(s); });
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    for (long long t = 3000; t <= 30000; t += 2000) {
        CHECK(noClear(ofKind(engine.observe(ms(t), sequence++, calm()), AlertKind::Drowsiness)));
        CHECK(ofKind(frames(engine, t + 100, t + 1900,
                            [t](double s) { return eyesClosed(2.0 + (t - 3000) / 1000.0 + s); }),
                     AlertKind::Drowsiness)
                  .size() <= 1); // the escalation only
        CHECK(isActive(engine, AlertKind::Drowsiness));
    }
}

TEST_CASE("fusion: vision's open eyes do not clear the model's alert, the model's clear does") {
    AlertEngine engine(AlertsSettings{});
    std::uint64_t sequence = 1;
    std::vector<AlertEvent> events = models(engine, 0, 4000, sleepy(), sequence);
    REQUIRE(describe(ofKind(events, AlertKind::Drowsiness)) ==
            std::vector<std::string>{"DROWSINESS raised warning @3000"});
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].source == AlertSource::Model);
    // Vision sees open eyes for 20 s: the model's alert stands.
    CHECK(frames(engine, 4100, 24100, [](double) { return attentive(); }).size() <= 1);
    CHECK(isActive(engine, AlertKind::Drowsiness));
    CHECK(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Model);
    // The model's own hysteresis clears it (calm from 26000, clear_after 6 s).
    events = models(engine, 26000, 32000, calm(), sequence);
    REQUIRE(ofKind(events, AlertKind::Drowsiness).size() == 1);
    CHECK(describe(ofKind(events, AlertKind::Drowsiness)[0]) ==
          "DROWSINESS cleared cleared @32000");
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].source == AlertSource::Model);
}

TEST_CASE("fusion: while both hold the alert it stays, it clears when the last one lets go") {
    AlertEngine engine(AlertsSettings{});
    // The eyes close at 0; the model says SLEEPY at 0 and 2000.
    engine.observe(ms(0), 1, sleepy());
    CHECK(frames(engine, 0, 1900, [](double s) { return eyesClosed(s); }).empty());
    std::vector<AlertEvent> events =
        frames(engine, 2000, 2000, [](double) { return eyesClosed(2.0); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS raised warning @2000");
    CHECK(events[0].source == AlertSource::Vision);
    engine.observe(ms(2000), 2, sleepy());
    // The model's own raise_after (3 s) makes it both, without a new transition.
    CHECK(engine.tick(ms(3000)).empty());
    CHECK(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Both);

    // Both sources reach critical_after together: the escalation names both.
    events = engine.tick(ms(10000));
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS level critical @10000");
    CHECK(events[0].source == AlertSource::Both);
    CHECK(events[0].evidence.contains("vision"));
    CHECK(events[0].evidence.contains("present_samples"));

    // The model lets go (AWAKE from 10000 for clear_after 6 s); vision still holds.
    std::uint64_t sequence = 3;
    events = models(engine, 10000, 16000, calm(), sequence);
    CHECK(ofKind(events, AlertKind::Drowsiness).empty());
    CHECK(isActive(engine, AlertKind::Drowsiness));
    CHECK(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Vision);

    // Vision lets go: cleared, by vision.
    events = frames(engine, 16100, 22100, [](double) { return attentive(); });
    REQUIRE(ofKind(events, AlertKind::Drowsiness).size() == 1);
    CHECK(describe(ofKind(events, AlertKind::Drowsiness)[0]) ==
          "DROWSINESS cleared cleared @22100");
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].source == AlertSource::Vision);
}

TEST_CASE("fusion: the model clearing last names the model") {
    AlertEngine engine(AlertsSettings{});
    std::uint64_t sequence = 1;
    models(engine, 0, 2000, sleepy(), sequence);
    frames(engine, 2100, 4100, [](double s) { return eyesClosed(s); });
    REQUIRE(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Both);
    // Vision sees open eyes from 4200 and lets go at 10200; the model still says SLEEPY.
    std::vector<AlertEvent> events;
    for (long long t = 4000; t <= 10000; t += 2000) {
        append(events, engine.observe(ms(t + 200), sequence++, sleepy()));
        append(events, frames(engine, t + 200, t + 1900, [](double) { return attentive(); }));
    }
    CHECK(isActive(engine, AlertKind::Drowsiness));
    CHECK(activeSource(engine, AlertKind::Drowsiness) == AlertSource::Model);
    events = models(engine, 12000, 18000, calm(), sequence);
    REQUIRE(ofKind(events, AlertKind::Drowsiness).size() == 1);
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].type == Type::Cleared);
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].source == AlertSource::Model);
}

TEST_CASE("silent sources: failed model answers and unmeasured frames clear nothing") {
    AlertEngine engine(AlertsSettings{});
    std::uint64_t sequence = 1;
    frames(engine, 0, 2000, [](double s) { return eyesClosed(s); });
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    // The model server fails for a minute; vision sees no face meanwhile (neither
    // absent nor present for DROWSINESS).
    std::vector<AlertEvent> events = models(engine, 2000, 62000, allFailed(), sequence);
    append(events, frames(
                       engine, 2100, 62000, [](double s) { return noFace(s); }, 500));
    CHECK(ofKind(events, AlertKind::Drowsiness).size() == 1); // the escalation
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].type == Type::LevelChanged);
    CHECK(isActive(engine, AlertKind::Drowsiness));

    // The model's alert is not cleared by a vision stage that stops or sees nothing.
    AlertEngine model(AlertsSettings{});
    std::uint64_t s2 = 1;
    models(model, 0, 4000, sleepy(), s2);
    REQUIRE(isActive(model, AlertKind::Drowsiness));
    CHECK(noClear(frames(model, 4100, 20000, [](double) { return VisionEvidence{}; })));
    CHECK(ofKind(model.visionStopped(ms(20000)), AlertKind::Drowsiness).empty());
    CHECK(isActive(model, AlertKind::Drowsiness));
}

TEST_CASE("vision stopping ends its own holds only") {
    AlertEngine engine(AlertsSettings{});
    std::uint64_t sequence = 1;
    models(engine, 0, 4000, sleepy(), sequence);                    // DROWSINESS by the model
    frames(engine, 4000, 6000, [](double s) { return noFace(s); }); // DRIVER_NOT_VISIBLE by vision
    REQUIRE(isActive(engine, AlertKind::DriverNotVisible));
    REQUIRE(activeSource(engine, AlertKind::DriverNotVisible) == AlertSource::Vision);
    const std::vector<AlertEvent> events = engine.visionStopped(ms(7000));
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DRIVER_NOT_VISIBLE cleared cleared @7000");
    CHECK(events[0].source == AlertSource::Vision);
    CHECK(events[0].evidence.at("vision").at("stopped") == true);
    CHECK(isActive(engine, AlertKind::Drowsiness));
}

TEST_CASE("vision: DISTRACTION from the head off the road long") {
    AlertEngine engine(AlertsSettings{}); // distraction clear_after 2 s
    CHECK(frames(engine, 0, 1900, [](double s) { return lookingAway(s); }).empty());
    std::vector<AlertEvent> events =
        frames(engine, 2000, 2000, [](double) { return lookingAway(2.0); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DISTRACTION raised warning @2000");
    CHECK(events[0].source == AlertSource::Vision);
    CHECK(events[0].evidence.at("onset_ms") == 0);
    events = frames(engine, 2100, 4100, [](double) { return attentive(); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DISTRACTION cleared cleared @4100");
}

TEST_CASE("vision: DRIVER_NOT_VISIBLE from no face long, a face seen clears it") {
    AlertEngine engine(AlertsSettings{}); // driver_not_visible clear_after 4 s
    CHECK(frames(engine, 0, 1900, [](double s) { return noFace(s); }).empty());
    std::vector<AlertEvent> events = frames(engine, 2000, 2000, [](double) { return noFace(2.0); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DRIVER_NOT_VISIBLE raised warning @2000");
    CHECK(events[0].source == AlertSource::Vision);
    CHECK(events[0].confidence == Approx(1.0));
    events = frames(engine, 2100, 6100, [](double) { return attentive(); });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DRIVER_NOT_VISIBLE cleared cleared @6100");
    // A head turned out of the detector's reach is offRoadLong, not absent.
    AlertEngine turned(AlertsSettings{});
    events = frames(turned, 0, 3000, [](double s) {
        VisionEvidence v = noFace(s);
        v.faceAbsentLong = false; // vision/signals: lost from outside the cone
        v.outsideCone = true;
        v.outsideConeS = s;
        v.offRoadLong = s >= 2.0;
        return v;
    });
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == AlertKind::Distraction);
}

TEST_CASE("vision: PERCLOS high and frequent yawns raise DROWSINESS") {
    AlertEngine perclos(AlertsSettings{});
    std::vector<AlertEvent> events = frames(perclos, 0, 0, [](double) {
        VisionEvidence v = attentive();
        v.perclos = 0.2;
        v.perclosHigh = true;
        return v;
    });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS raised warning @0");
    CHECK(events[0].evidence.at("vision").at("conditions").as_array().at(0) == "perclos_high");

    AlertEngine yawns(AlertsSettings{});
    events = frames(yawns, 0, 0, [](double) {
        VisionEvidence v = attentive();
        v.yawnsInWindow = 3;
        v.yawningOften = true;
        return v;
    });
    REQUIRE(events.size() == 1);
    CHECK(events[0].evidence.at("vision").at("conditions").as_array().at(0) == "yawning_often");
}

TEST_CASE("vision never raises the model-only kinds") {
    AlertEngine engine(AlertsSettings{});
    std::vector<AlertEvent> events = frames(engine, 0, 60000, [](double s) {
        VisionEvidence v = eyesClosed(s);
        v.outsideCone = true;
        v.outsideConeS = s;
        v.offRoadLong = true;
        return v;
    });
    for (const AlertEvent& e : events) {
        CHECK((e.kind == AlertKind::Drowsiness || e.kind == AlertKind::Distraction));
    }
    CHECK_FALSE(isActive(engine, AlertKind::PhoneUse));
    CHECK_FALSE(isActive(engine, AlertKind::HandsOffWheel));
    CHECK_FALSE(isActive(engine, AlertKind::ImpairedDriving));
}

TEST_CASE("vision: a re-raise waits out the kind's cooldown") {
    AlertsSettings rules;
    rules[AlertKind::Distraction].cooldown = std::chrono::milliseconds(5000);
    AlertEngine engine(rules);
    frames(engine, 0, 2000, [](double s) { return lookingAway(s); });
    frames(engine, 2100, 4100, [](double) { return attentive(); }); // cleared at 4100
    REQUIRE_FALSE(isActive(engine, AlertKind::Distraction));
    // Away again from 4200: the condition holds from 6200, the cooldown ends at 9100.
    CHECK(frames(engine, 4200, 9000, [](double s) { return lookingAway(s); }).empty());
    REQUIRE(engine.nextDeadline() == ms(9100));
    const std::vector<AlertEvent> events = engine.tick(ms(9100));
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DISTRACTION raised warning @9100");
}

TEST_CASE("vision: low-confidence open eyes are not a proof of absence") {
    AlertEngine engine(AlertsSettings{});
    frames(engine, 0, 2000, [](double s) { return eyesClosed(s); });
    const std::vector<AlertEvent> events = frames(engine, 2100, 20000, [](double) {
        VisionEvidence v = attentive();
        v.eyesConfidence = 0.2; // the head turned far: the far eye means little
        return v;
    });
    for (const AlertEvent& e : events) {
        CHECK(e.type != Type::Cleared);
    }
    CHECK(isActive(engine, AlertKind::Drowsiness));
}

TEST_CASE("vision: a doubtful frame inside a proof of absence neither proves nor restarts it") {
    AlertEngine engine(AlertsSettings{}); // drowsiness clear_after 6 s
    frames(engine, 0, 2000, [](double s) { return eyesClosed(s); });
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    // Open eyes from 2100, every third frame measured below the floor.
    int frame = 0;
    const std::vector<AlertEvent> events = frames(engine, 2100, 8100, [&frame](double) {
        VisionEvidence v = attentive();
        if (++frame % 3 == 0) {
            v.eyesConfidence = 0.45;
        }
        return v;
    });
    REQUIRE(events.size() == 1);
    CHECK(describe(events[0]) == "DROWSINESS cleared cleared @8100");
}
