// The decision engine's hysteresis (docs/interfaces.md section 3; docs/alerts.md).

#include <random>
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

/// Drowsiness at the contract's defaults: raise 3 s, clear 6 s, critical 10 s, cooldown 30 s.
AlertsSettings contractRules() {
    return AlertsSettings{};
}

/// Feeds `answers` every `step` ms over [from, to] and collects the events.
std::vector<AlertEvent> feed(AlertEngine& engine, long long from, long long to,
                             const SequenceAnswers& answers, long long step = 2000,
                             std::uint64_t firstSequence = 1) {
    std::vector<AlertEvent> events;
    std::uint64_t sequence = firstSequence;
    for (long long t = from; t <= to; t += step) {
        append(events, engine.observe(ms(t), sequence++, answers));
    }
    return events;
}

std::vector<std::string> drowsyEvents(const std::vector<AlertEvent>& events) {
    return describe(ofKind(events, AlertKind::Drowsiness));
}

bool isActive(const AlertEngine& engine, AlertKind kind) {
    return (engine.activeMask() & alertBit(kind)) != 0;
}

} // namespace

TEST_CASE("raise exactly at raise_after, not before") {
    AlertEngine engine(contractRules());
    CHECK(engine.observe(ms(0), 1, sleepy()).empty());
    CHECK(engine.observe(ms(2000), 2, sleepy()).empty());
    REQUIRE(engine.nextDeadline() == ms(3000));
    CHECK(engine.tick(ms(2999)).empty());
    CHECK_FALSE(isActive(engine, AlertKind::Drowsiness));

    const std::vector<AlertEvent> events = engine.tick(ms(3000));
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == Type::Raised);
    CHECK(events[0].kind == AlertKind::Drowsiness);
    CHECK(events[0].level == AlertLevel::Warning);
    CHECK(events[0].at == ms(3000));
    CHECK(events[0].sequenceId == 2);
    CHECK(events[0].confidence == Approx(0.9));
    CHECK(isActive(engine, AlertKind::Drowsiness));
    REQUIRE(engine.activeAlerts().size() == 1);
    CHECK(engine.activeAlerts()[0].since == ms(3000));
    CHECK(engine.activeAlerts()[0].level == AlertLevel::Warning);
}

TEST_CASE("observations just before the thresholds change nothing") {
    AlertEngine engine(contractRules());
    engine.observe(ms(0), 1, sleepy());
    CHECK(engine.observe(ms(2999), 2, sleepy()).empty());
    CHECK(describe(engine.observe(ms(3000), 3, sleepy())) ==
          std::vector<std::string>{"DROWSINESS raised warning @3000"});
    CHECK(engine.observe(ms(9999), 4, sleepy()).empty());
    CHECK(describe(engine.observe(ms(10000), 5, sleepy())) ==
          std::vector<std::string>{"DROWSINESS level critical @10000"});
    engine.observe(ms(11000), 6, calm());
    CHECK(engine.observe(ms(16999), 7, calm()).empty());
    CHECK(describe(engine.observe(ms(17000), 8, calm())) ==
          std::vector<std::string>{"DROWSINESS cleared cleared @17000"});
}

TEST_CASE("a late tick stamps the transition at the time it became due") {
    AlertEngine engine(contractRules());
    engine.observe(ms(0), 1, sleepy());
    engine.observe(ms(2000), 2, sleepy());
    const std::vector<AlertEvent> events = engine.tick(ms(12000));
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS raised warning @3000",
                                                       "DROWSINESS level critical @10000"});
    CHECK(engine.now() == ms(12000));
}

TEST_CASE("without ticks a raise comes with the confirming observation") {
    AlertEngine engine(contractRules());
    engine.observe(ms(0), 1, sleepy());
    const std::vector<AlertEvent> events = engine.observe(ms(4000), 2, sleepy());
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS raised warning @4000"});
}

TEST_CASE("critical exactly at critical_after, measured from the condition's start") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 8000, sleepy());
    CHECK(engine.nextDeadline() == ms(10000));
    CHECK(engine.tick(ms(9999)).empty());
    const std::vector<AlertEvent> events = engine.tick(ms(10000));
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == Type::LevelChanged);
    CHECK(events[0].level == AlertLevel::Critical);
    CHECK(engine.activeAlerts()[0].level == AlertLevel::Critical);
    CHECK(engine.activeAlerts()[0].since == ms(3000));
    // Nothing more is scheduled for a critical alert.
    CHECK_FALSE(engine.nextDeadline().has_value());
}

TEST_CASE("clear after the condition has been absent clear_after") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 10000, sleepy());
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    // Absent from 12 s: 12 + 6 = 18 s.
    CHECK(feed(engine, 12000, 16000, calm(), 2000, 10).empty());
    CHECK(isActive(engine, AlertKind::Drowsiness));
    const std::vector<AlertEvent> events = engine.observe(ms(18000), 20, calm());
    REQUIRE(events.size() == 1);
    CHECK(events[0].type == Type::Cleared);
    CHECK(events[0].level == AlertLevel::Cleared);
    CHECK(events[0].at == ms(18000));
    CHECK(events[0].sequenceId == 20);
    CHECK_FALSE(isActive(engine, AlertKind::Drowsiness));
    CHECK(engine.activeAlerts().empty());
}

TEST_CASE("answer-based kinds clear only on an observation, never by time alone") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    engine.observe(ms(6000), 5, calm());
    engine.observe(ms(8000), 6, calm());
    // The last observation said absent, but nothing has been seen since 8 s: neither
    // time nor a health report clears it.
    CHECK(engine.observeCamera(ms(20000), false).empty());
    CHECK(describe(engine.tick(ms(60000))) ==
          std::vector<std::string>{"CAMERA_FAULT raised warning @23000",
                                   "CAMERA_FAULT level critical @30000"});
    CHECK(isActive(engine, AlertKind::Drowsiness));
    const std::vector<AlertEvent> events = engine.observe(ms(61000), 7, calm());
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS cleared cleared @61000"});
}

TEST_CASE("cooldown blocks a re-raise, then allows it") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    const std::vector<AlertEvent> cleared = feed(engine, 6000, 12000, calm());
    REQUIRE(drowsyEvents(cleared) == std::vector<std::string>{"DROWSINESS cleared cleared @12000"});

    // The condition returns at 14 s and holds; cooldown runs to 12 + 30 = 42 s.
    std::vector<AlertEvent> events = feed(engine, 14000, 40000, sleepy());
    CHECK(events.empty());
    CHECK(engine.nextDeadline() == ms(42000));
    CHECK(engine.tick(ms(41999)).empty());
    events = engine.tick(ms(42000));
    // Held since 14 s, so it is past critical_after (24 s) too: raise, then climb.
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS raised warning @42000",
                                                       "DROWSINESS level critical @42000"});
    CHECK(ofKind(events, AlertKind::Drowsiness)[0].sequenceId == 14);
}

TEST_CASE("a new episode after the cooldown raises after raise_after as usual") {
    AlertsSettings rules;
    rules[AlertKind::Drowsiness].cooldown = ms(5000);
    AlertEngine engine(rules);
    feed(engine, 0, 4000, sleepy());
    feed(engine, 6000, 12000, calm()); // cleared at 12 s, cooldown to 17 s
    feed(engine, 20000, 22000, sleepy());
    CHECK(engine.nextDeadline() == ms(23000));
    CHECK(drowsyEvents(engine.tick(ms(23000))) ==
          std::vector<std::string>{"DROWSINESS raised warning @23000"});
}

TEST_CASE("a single present outlier does not raise") {
    AlertEngine engine(contractRules());
    std::vector<AlertEvent> events = engine.observe(ms(0), 1, sleepy());
    append(events, engine.observe(ms(2000), 2, calm()));
    append(events, engine.observe(ms(4000), 3, calm()));
    append(events, engine.tick(ms(30000)));
    CHECK(events.empty());

    SECTION("nor does one present sample held by silence") {
        AlertEngine quiet(contractRules());
        quiet.observe(ms(0), 1, sleepy());
        CHECK_FALSE(quiet.nextDeadline().has_value());
        CHECK(quiet.tick(ms(60000)).empty());
    }
}

TEST_CASE("a single absent outlier neither clears nor resets the episode") {
    SECTION("before the raise") {
        AlertEngine engine(contractRules());
        engine.observe(ms(0), 1, sleepy());
        engine.observe(ms(2000), 2, calm()); // outlier
        CHECK(engine.tick(ms(3500)).empty());
        // Back to present: still the episode that started at 0 s.
        const std::vector<AlertEvent> events = engine.observe(ms(4000), 3, sleepy());
        CHECK(describe(events) == std::vector<std::string>{"DROWSINESS raised warning @4000"});
        CHECK(json::value(events[0].evidence).at("onset_ms") == 0);
    }
    SECTION("two consecutive absent samples end a not-yet-raised episode") {
        AlertEngine engine(contractRules());
        engine.observe(ms(0), 1, sleepy());
        engine.observe(ms(2000), 2, calm());
        engine.observe(ms(4000), 3, calm());
        engine.observe(ms(6000), 4, sleepy());
        CHECK(engine.observe(ms(8000), 5, sleepy()).empty());
        CHECK(engine.nextDeadline() == ms(9000)); // a new episode from 6 s
    }
    SECTION("after the raise") {
        AlertEngine engine(contractRules());
        feed(engine, 0, 4000, sleepy());
        std::vector<AlertEvent> events = feed(engine, 6000, 6000, calm());
        append(events, feed(engine, 8000, 16000, sleepy()));
        // The outlier did not clear; the condition kept its start, so critical at 10 s.
        CHECK(describe(events) == std::vector<std::string>{"DROWSINESS level critical @10000"});
    }
}

TEST_CASE("an outlier among absent samples while raised restarts the clear timer") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    std::vector<AlertEvent> events = feed(engine, 6000, 8000, calm());
    append(events, engine.observe(ms(10000), 9, sleepy())); // present again: absence restarts
    append(events, feed(engine, 12000, 16000, calm(), 2000, 10));
    // Present again at 10 s = critical_after from the start: it climbs instead of clearing.
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS level critical @10000"});
    events = engine.observe(ms(18000), 20, calm());
    CHECK(describe(events) == std::vector<std::string>{"DROWSINESS cleared cleared @18000"});
}

TEST_CASE("failed answers never clear an alert and never hold back escalation") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 2000, sleepy());
    engine.tick(ms(3000));
    REQUIRE(isActive(engine, AlertKind::Drowsiness));
    // From now on every analysis fails.
    std::vector<AlertEvent> events = feed(engine, 4000, 60000, allFailed());
    // Escalation happens on the last observation (a driver we cannot see is not thereby
    // attentive); no clear ever happens.
    CHECK(drowsyEvents(events) == std::vector<std::string>{"DROWSINESS level critical @10000"});
    CHECK(isActive(engine, AlertKind::Drowsiness));
}

TEST_CASE("failed answers do not reset a pending episode") {
    AlertEngine engine(contractRules());
    engine.observe(ms(0), 1, sleepy());
    engine.observe(ms(2000), 2, allFailed());
    engine.observe(ms(4000), 3, allFailed());
    // A present answer after an unknown gap continues the episode begun at 0 s.
    const std::vector<AlertEvent> events = engine.observe(ms(6000), 4, sleepy());
    CHECK(drowsyEvents(events) == std::vector<std::string>{"DROWSINESS raised warning @6000"});
    CHECK(json::value(ofKind(events, AlertKind::Drowsiness)[0].evidence).at("onset_ms") == 0);

    SECTION("and a confirmed episode still raises on time while answers fail") {
        AlertEngine other(contractRules());
        other.observe(ms(0), 1, sleepy());
        other.observe(ms(2000), 2, sleepy());
        other.observe(ms(2500), 3, allFailed());
        CHECK(drowsyEvents(other.tick(ms(3000))) ==
              std::vector<std::string>{"DROWSINESS raised warning @3000"});
    }
}

TEST_CASE("an unknown answer interrupts the proof of absence") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    std::vector<AlertEvent> events;
    append(events, engine.observe(ms(6000), 10, calm()));
    append(events, engine.observe(ms(8000), 11, allFailed()));
    append(events, engine.observe(ms(10000), 12, calm())); // absence starts again here
    append(events, engine.observe(ms(12000), 13, calm()));
    append(events, engine.observe(ms(14000), 14, calm()));
    CHECK(drowsyEvents(events).empty());
    events = engine.observe(ms(16000), 15, calm());
    CHECK(drowsyEvents(events) == std::vector<std::string>{"DROWSINESS cleared cleared @16000"});
}

TEST_CASE("a driver the scene cannot see does not clear driver alerts") {
    AlertEngine engine(contractRules());
    SequenceAnswers distracted = calm();
    distracted.set(AttentionAnswer{false, Gaze::Passenger, true, 0.9});
    feed(engine, 0, 4000, distracted);
    REQUIRE(isActive(engine, AlertKind::Distraction));

    SequenceAnswers unseen = calm(); // attention claims "road", but nobody is visible
    unseen.set(GeneralSceneAnswer{"covered lens", false, 0});
    const std::vector<AlertEvent> events = feed(engine, 6000, 20000, unseen);
    CHECK(ofKind(events, AlertKind::Distraction).size() == 1); // escalation only
    CHECK(ofKind(events, AlertKind::Distraction)[0].type == Type::LevelChanged);
    CHECK(isActive(engine, AlertKind::Distraction));
    CHECK(isActive(engine, AlertKind::DriverNotVisible));
}

TEST_CASE("low-confidence answers count as unknown") {
    SECTION("they do not raise") {
        AlertEngine engine(contractRules());
        feed(engine, 0, 20000, sleepy(0.3));
        CHECK(engine.tick(ms(60000)).empty());
        CHECK(engine.activeAlerts().empty());
    }
    SECTION("they do not clear") {
        AlertEngine engine(contractRules());
        feed(engine, 0, 4000, sleepy());
        const std::vector<AlertEvent> events = feed(engine, 6000, 40000, calm(0.4));
        CHECK(drowsyEvents(events) == std::vector<std::string>{"DROWSINESS level critical @10000"});
        CHECK(isActive(engine, AlertKind::Drowsiness));
    }
    SECTION("a lower floor lets them count") {
        AlertEngine engine(contractRules(), AlertTuning{0.25, 2, 0.5});
        feed(engine, 0, 2000, sleepy(0.3));
        const std::vector<AlertEvent> events = engine.tick(ms(3000));
        REQUIRE(events.size() == 1);
        CHECK(events[0].confidence == Approx(0.3));
    }
}

TEST_CASE("event confidence is a running measure of the evidence") {
    AlertEngine engine(contractRules());
    engine.observe(ms(0), 1, sleepy(0.9));
    engine.observe(ms(2000), 2, sleepy(0.7));
    std::vector<AlertEvent> events = engine.tick(ms(3000));
    REQUIRE(events.size() == 1);
    CHECK(events[0].confidence == Approx(0.8)); // 0.5 * 0.9 + 0.5 * 0.7

    // An absent answer (confidence 0.9 that the driver is fine) lowers it.
    engine.observe(ms(4000), 3, calm(0.9));
    CHECK(engine.activeAlerts()[0].confidence == Approx(0.45)); // 0.5 * 0.8 + 0.5 * 0.1
    // An unknown one leaves it.
    engine.observe(ms(6000), 4, allFailed());
    CHECK(engine.activeAlerts()[0].confidence == Approx(0.45));
}

TEST_CASE("carried-forward static windows keep the timers running") {
    SECTION("a driver who falls asleep and stays still is alerted") {
        AlertEngine engine(contractRules());
        engine.observe(ms(0), 1, sleepy());
        std::vector<AlertEvent> events = engine.carryForward(ms(2000), 2);
        append(events, engine.tick(ms(3000)));
        append(events, engine.carryForward(ms(4000)));
        append(events, engine.tick(ms(10000)));
        REQUIRE(drowsyEvents(events) ==
                std::vector<std::string>{"DROWSINESS raised warning @3000",
                                         "DROWSINESS level critical @10000"});
        const json::value evidence = json::value(events[0].evidence);
        CHECK(evidence.at("carried_forward") == true);
        CHECK(evidence.at("sequence_id") == 2);
        CHECK(events[0].sequenceId == 2);
        CHECK(engine.driverState() == FaceState::Sleepy);
    }
    SECTION("a carried absent observation clears like an analysed one") {
        AlertEngine engine(contractRules());
        feed(engine, 0, 4000, sleepy());
        engine.observe(ms(6000), 4, calm());
        std::vector<AlertEvent> events = engine.carryForward(ms(8000));
        append(events, engine.carryForward(ms(10000)));
        CHECK(drowsyEvents(events).empty());
        events = engine.carryForward(ms(12000));
        REQUIRE(drowsyEvents(events) ==
                std::vector<std::string>{"DROWSINESS cleared cleared @12000"});
        CHECK(events[0].sequenceId == 4); // the carried sequence
    }
    SECTION("nothing to carry before the first analysis") {
        AlertEngine engine(contractRules());
        CHECK(engine.carryForward(ms(2000)).empty());
        CHECK(engine.activeAlerts().empty());
    }
}

TEST_CASE("CAMERA_FAULT from camera health") {
    AlertEngine engine(contractRules()); // camera_fault: raise 3 s, clear 5 s, critical 10 s
    CHECK(engine.observeCamera(ms(1000), false).empty());
    CHECK(engine.nextDeadline() == ms(4000));
    CHECK(engine.tick(ms(3999)).empty());
    std::vector<AlertEvent> events = engine.tick(ms(4000));
    REQUIRE(events.size() == 1);
    CHECK(events[0].kind == AlertKind::CameraFault);
    CHECK(events[0].type == Type::Raised);
    CHECK(events[0].confidence == 1.0);
    CHECK(events[0].sequenceId == 0);
    CHECK(json::value(events[0].evidence).at("health").at("camera_ok") == false);
    // Repeated reports change nothing.
    CHECK(engine.observeCamera(ms(5000), false).empty());
    CHECK(describe(engine.tick(ms(11000))) ==
          std::vector<std::string>{"CAMERA_FAULT level critical @11000"});
    // Health clears by time: ok from 12 s, cleared at 17 s.
    CHECK(engine.observeCamera(ms(12000), true).empty());
    CHECK(engine.tick(ms(16999)).empty());
    CHECK(describe(engine.tick(ms(17000))) ==
          std::vector<std::string>{"CAMERA_FAULT cleared cleared @17000"});

    SECTION("a short dropout raises nothing") {
        AlertEngine other(contractRules());
        other.observeCamera(ms(0), false);
        other.observeCamera(ms(2000), true);
        CHECK(other.tick(ms(60000)).empty());
    }
}

TEST_CASE("ANALYZER_FAULT from explicit health reports") {
    AlertEngine engine(contractRules()); // analyzer_fault: raise 6 s, clear 5 s
    engine.observeAnalyzer(ms(0), false);
    CHECK(describe(engine.tick(ms(6000))) ==
          std::vector<std::string>{"ANALYZER_FAULT raised warning @6000"});
    engine.observeAnalyzer(ms(7000), true);
    CHECK(describe(engine.tick(ms(12000))) ==
          std::vector<std::string>{"ANALYZER_FAULT cleared cleared @12000"});
}

TEST_CASE("ANALYZER_FAULT derived from sequences whose analyses all fail") {
    AlertEngine engine(contractRules());
    std::vector<AlertEvent> events = feed(engine, 0, 6000, allFailed());
    CHECK(describe(ofKind(events, AlertKind::AnalyzerFault)) ==
          std::vector<std::string>{"ANALYZER_FAULT raised warning @6000"});
    const json::value evidence = json::value(ofKind(events, AlertKind::AnalyzerFault)[0].evidence);
    CHECK(evidence.at("health").at("last_sequence_ok") == false);
    CHECK(evidence.at("health").at("errors").at("face_state") == "timeout");

    // An explicit ok does not override what the requests show.
    engine.observeAnalyzer(ms(7000), true);
    CHECK(engine.tick(ms(29000)).empty());
    CHECK(isActive(engine, AlertKind::AnalyzerFault));
    // One answered sequence does.
    engine.observe(ms(31000), 20, calm());
    CHECK(describe(ofKind(engine.tick(ms(36000)), AlertKind::AnalyzerFault)) ==
          std::vector<std::string>{"ANALYZER_FAULT cleared cleared @36000"});

    SECTION("a successful sequence overrides a failing probe") {
        AlertEngine other(contractRules());
        other.observeAnalyzer(ms(0), false);
        other.observe(ms(2000), 1, calm());
        CHECK(other.tick(ms(60000)).empty());
    }
    SECTION("cancelled (superseded) requests say nothing") {
        AlertEngine other(contractRules());
        feed(other, 0, 20000, allFailed(AnalysisError::Kind::Cancelled));
        CHECK(other.tick(ms(60000)).empty());
    }
    SECTION("one success among failures ends a pending fault") {
        AlertEngine other(contractRules());
        other.observe(ms(0), 1, allFailed());
        other.observe(ms(2000), 2, allFailed());
        other.observe(ms(4000), 3, calm());
        other.observe(ms(6000), 4, allFailed()); // a new episode from 6 s
        CHECK(other.tick(ms(11999)).empty());
        CHECK(describe(other.tick(ms(12000))) ==
              std::vector<std::string>{"ANALYZER_FAULT raised warning @12000"});
    }
}

TEST_CASE("updateRules keeps the alert state") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    REQUIRE(isActive(engine, AlertKind::Drowsiness));

    AlertsSettings changed;
    changed[AlertKind::Drowsiness] = AlertRule{ms(1000), ms(2000), ms(20000), ms(60000)};
    engine.updateRules(changed);
    CHECK(engine.rules()[AlertKind::Drowsiness].criticalAfter == ms(20000));
    CHECK(isActive(engine, AlertKind::Drowsiness));
    CHECK(engine.activeAlerts()[0].since == ms(3000));
    // Escalation follows the new critical_after from the original start.
    CHECK(engine.nextDeadline() == ms(20000));
    CHECK(feed(engine, 6000, 18000, sleepy(), 2000, 10).empty());
    CHECK(drowsyEvents(engine.tick(ms(20000))) ==
          std::vector<std::string>{"DROWSINESS level critical @20000"});
    // Clear follows the new clear_after; cooldown the new cooldown.
    engine.observe(ms(22000), 30, calm());
    CHECK(drowsyEvents(engine.observe(ms(24000), 31, calm())) ==
          std::vector<std::string>{"DROWSINESS cleared cleared @24000"});
    feed(engine, 26000, 30000, sleepy(), 2000, 40);
    CHECK(engine.nextDeadline() == ms(84000));
}

TEST_CASE("updateRules shortening a running episode's wait raises at the next call, not in the "
          "past") {
    AlertsSettings slow;
    slow[AlertKind::Drowsiness].raiseAfter = ms(20000);
    slow[AlertKind::Drowsiness].criticalAfter = ms(30000);
    AlertEngine engine(slow);
    feed(engine, 0, 6000, sleepy());
    CHECK(engine.activeAlerts().empty());
    engine.updateRules(contractRules());
    CHECK(engine.nextDeadline() == ms(3000)); // already due
    // Stamped at the latest time the engine had seen, never before it.
    CHECK(drowsyEvents(engine.tick(ms(6500))) ==
          std::vector<std::string>{"DROWSINESS raised warning @6000"});
}

TEST_CASE("updateTuning keeps the alert state") {
    AlertEngine engine(contractRules());
    feed(engine, 0, 4000, sleepy());
    engine.updateTuning(AlertTuning{0.95, 3, 0.5});
    CHECK(isActive(engine, AlertKind::Drowsiness));
    // Answers at 0.9 are now below the floor: they cannot clear.
    feed(engine, 6000, 20000, calm(0.9));
    CHECK(isActive(engine, AlertKind::Drowsiness));
}

TEST_CASE("every answer-based kind raises from its condition") {
    struct Row {
        AlertKind kind;
        SequenceAnswers answers;
    };
    std::vector<Row> rows;
    rows.push_back({AlertKind::Drowsiness, sleepy()});
    {
        SequenceAnswers a = calm();
        a.set(AttentionAnswer{false, Gaze::Down, true, 0.9});
        rows.push_back({AlertKind::Distraction, a});
    }
    {
        SequenceAnswers a = calm();
        a.set(HandPositionAnswer{1, Holding::Phone, 0.9});
        rows.push_back({AlertKind::PhoneUse, a});
    }
    {
        SequenceAnswers a = calm();
        a.set(HandPositionAnswer{0, Holding::Nothing, 0.9});
        rows.push_back({AlertKind::HandsOffWheel, a});
    }
    {
        SequenceAnswers a = calm();
        a.set(ImpairedDrivingAnswer{Concern::High, {"swaying"}, 0.9});
        rows.push_back({AlertKind::ImpairedDriving, a});
    }
    {
        SequenceAnswers a = calm();
        a.set(GeneralSceneAnswer{"empty seat", false, 0});
        rows.push_back({AlertKind::DriverNotVisible, a});
    }
    for (const Row& row : rows) {
        INFO(alertKindName(row.kind));
        AlertEngine engine(contractRules());
        const AlertRule& rule = engine.rules()[row.kind];
        std::vector<AlertEvent> events;
        for (long long t = 0; t <= rule.criticalAfter.count() + 2000; t += 1000) {
            append(events,
                   engine.observe(ms(t), static_cast<std::uint64_t>(t / 1000 + 1), row.answers));
        }
        // Only this kind, raised at raise_after (1 s samples), then critical.
        CHECK(describe(events) ==
              std::vector<std::string>{
                  std::string(alertKindName(row.kind)) + " raised warning @" +
                      std::to_string(std::max<long long>(rule.raiseAfter.count(), 1000)),
                  std::string(alertKindName(row.kind)) + " level critical @" +
                      std::to_string(rule.criticalAfter.count())});
        CHECK(engine.activeMask() == alertBit(row.kind));
    }
}

TEST_CASE("evidence JSON names the analyses and the decision") {
    AlertEngine engine(contractRules());
    SequenceAnswers a = sleepy(0.8);
    a.set(AttentionAnswer{true, Gaze::Road, false, 0.7});
    engine.observe(ms(0), 41, a);
    engine.observe(ms(2000), 42, a);
    const std::vector<AlertEvent> events = engine.tick(ms(3000));
    REQUIRE(events.size() == 1);
    const json::value evidence = json::value(events[0].evidence);
    REQUIRE(evidence.is_object());
    CHECK(evidence.at("kind") == "DROWSINESS");
    CHECK(evidence.at("sequence_id") == 42);
    CHECK(evidence.at("carried_forward") == false);
    CHECK(evidence.at("onset_ms") == 0);
    CHECK(evidence.at("held_ms") == 3000);
    CHECK(evidence.at("present_samples") == 2);
    CHECK(evidence.at("last_verdict") == "present");
    const json::object& analyses = evidence.at("analyses").as_object();
    CHECK(analyses.at("face_state").at("state") == "SLEEPY");
    CHECK(analyses.at("face_state").at("eyes_closed") == true);
    CHECK(analyses.at("attention").at("eyes_open") == false);
    CHECK_FALSE(analyses.contains("hand_position"));
    // Compact: one line, no spaces after separators.

    engine.observe(ms(4000), 43, calm());
    engine.observe(ms(6000), 44, calm());
    engine.observe(ms(8000), 45, calm());
    const std::vector<AlertEvent> cleared = engine.observe(ms(10000), 46, calm());
    REQUIRE(cleared.size() == 1);
    const json::value clearEvidence = json::value(cleared[0].evidence);
    CHECK(clearEvidence.at("absent_ms") == 6000);
    CHECK(clearEvidence.at("absent_samples") == 4);
    CHECK(clearEvidence.at("last_verdict") == "absent");
    CHECK(clearEvidence.at("analyses").at("face_state").at("state") == "AWAKE");
}

TEST_CASE("driverState follows the last sequence") {
    AlertEngine engine(contractRules());
    CHECK(engine.driverState() == FaceState::Unknown);
    engine.observe(ms(0), 1, sleepy());
    CHECK(engine.driverState() == FaceState::Sleepy);
    engine.observe(ms(2000), 2, calm());
    CHECK(engine.driverState() == FaceState::Awake);
    engine.observe(ms(4000), 3, allFailed());
    CHECK(engine.driverState() == FaceState::Unknown);
    engine.observe(ms(6000), 4, calm());
    engine.carryForward(ms(8000));
    CHECK(engine.driverState() == FaceState::Awake);
}

TEST_CASE("time never runs backwards") {
    AlertEngine engine(contractRules());
    engine.observe(ms(5000), 1, sleepy());
    engine.observe(ms(1000), 2, sleepy()); // judged as at 5 s
    CHECK(engine.now() == ms(5000));
    CHECK(engine.nextDeadline() == ms(8000));
    CHECK(engine.tick(ms(0)).empty());
}

TEST_CASE("the confirmation count is tunable") {
    AlertEngine engine(contractRules(), AlertTuning{0.5, 1, 0.5});
    engine.observe(ms(0), 1, sleepy());
    CHECK(describe(engine.tick(ms(3000))) ==
          std::vector<std::string>{"DROWSINESS raised warning @3000"});
    engine.observe(ms(4000), 2, calm());
    // Still no clear on an unknown gap.
    CHECK(engine.observe(ms(9000), 3, allFailed()).empty());
    engine.observe(ms(10000), 4, calm());
    CHECK(describe(engine.observe(ms(16000), 5, calm())) ==
          std::vector<std::string>{"DROWSINESS cleared cleared @16000"});
}

// One row per input; `expect` lists the events that input returns.
TEST_CASE("timeline table: drowsiness at the contract defaults") {
    enum class In { Sleepy, Calm, Failed, Low, Carry, Tick, CameraDown, CameraUp };
    struct Row {
        long long t;
        In input;
        std::vector<std::string> expect;
    };
    const std::vector<Row> rows = {
        {0, In::Calm, {}},
        {2000, In::Sleepy, {}},                                     // episode starts at 2 s
        {4000, In::Low, {}},                                        // unknown: no confirmation
        {4900, In::Tick, {}},                                       // one sample only
        {6000, In::Sleepy, {"DROWSINESS raised warning @6000"}},    // confirmed, held 4 s
        {8000, In::Carry, {}},                                      // static window
        {11999, In::Tick, {}},                                      //
        {12000, In::Tick, {"DROWSINESS level critical @12000"}},    // 2 + 10 s
        {14000, In::Calm, {}},                                      // absence from 14 s
        {16000, In::Failed, {}},                                    // interrupts it
        {18000, In::Calm, {}},                                      // absence from 18 s
        {20000, In::Calm, {}},                                      //
        {22000, In::Carry, {}},                                     // carried calm
        {24000, In::Calm, {"DROWSINESS cleared cleared @24000"}},   // 18 + 6 s
        {26000, In::Sleepy, {}},                                    // cooldown to 54 s
        {28000, In::Sleepy, {}},                                    //
        {30000, In::CameraDown, {}},                                //
        {33000, In::Tick, {"CAMERA_FAULT raised warning @33000"}},  //
        {34000, In::CameraUp, {}},                                  //
        {39000, In::Tick, {"CAMERA_FAULT cleared cleared @39000"}}, //
        {53999, In::Tick, {}},                                      //
        {54000, In::Tick, {"DROWSINESS raised warning @54000", "DROWSINESS level critical @54000"}},
    };
    AlertEngine engine(contractRules());
    std::uint64_t sequence = 0;
    for (const Row& row : rows) {
        std::vector<AlertEvent> events;
        switch (row.input) {
        case In::Sleepy:
            events = engine.observe(ms(row.t), ++sequence, sleepy());
            break;
        case In::Calm:
            events = engine.observe(ms(row.t), ++sequence, calm());
            break;
        case In::Failed:
            events = engine.observe(ms(row.t), ++sequence, allFailed());
            break;
        case In::Low:
            events = engine.observe(ms(row.t), ++sequence, sleepy(0.2));
            break;
        case In::Carry:
            events = engine.carryForward(ms(row.t), ++sequence);
            break;
        case In::Tick:
            events = engine.tick(ms(row.t));
            break;
        case In::CameraDown:
            events = engine.observeCamera(ms(row.t), false);
            break;
        case In::CameraUp:
            events = engine.observeCamera(ms(row.t), true);
            break;
        }
        INFO("t=" << row.t);
        CHECK(describe(events) == row.expect);
    }
}

TEST_CASE("randomised timelines keep the invariants, whatever the tick rate") {
    // Two engines see the same inputs; one is ticked every 100 ms, the other never.
    // Both must produce the same transitions (times are stamped when due), and every
    // event must be well-formed.
    for (unsigned seed = 1; seed <= 40; ++seed) {
        std::mt19937 rng(seed);
        AlertsSettings rules;
        rules[AlertKind::Drowsiness] = AlertRule{ms(3000), ms(4000), ms(7000), ms(9000)};
        AlertEngine ticked(rules);
        AlertEngine lazy(rules);
        std::vector<AlertEvent> a;
        std::vector<AlertEvent> b;
        long long t = 0;
        for (int step = 0; step < 300; ++step) {
            const long long next = t + 500 + static_cast<long long>(rng() % 3000);
            for (long long u = t + 100; u < next; u += 100) {
                append(a, ticked.tick(ms(u)));
            }
            t = next;
            const unsigned pick = rng() % 10;
            auto both = [&](auto&& call) {
                append(a, call(ticked));
                append(b, call(lazy));
            };
            const std::uint64_t id = static_cast<std::uint64_t>(step + 1);
            const double confidence = 0.4 + 0.1 * static_cast<double>(rng() % 6);
            const bool ok = rng() % 2 == 0;
            if (pick < 3) {
                both([&](AlertEngine& e) { return e.observe(ms(t), id, sleepy(confidence)); });
            } else if (pick < 6) {
                both([&](AlertEngine& e) { return e.observe(ms(t), id, calm()); });
            } else if (pick < 7) {
                both([&](AlertEngine& e) { return e.observe(ms(t), id, allFailed()); });
            } else if (pick < 8) {
                both([&](AlertEngine& e) { return e.carryForward(ms(t)); });
            } else {
                both([&](AlertEngine& e) { return e.observeCamera(ms(t), ok); });
            }
        }
        append(a, ticked.tick(ms(t + 100000)));
        append(b, lazy.tick(ms(t + 100000)));
        INFO("seed " << seed);
        REQUIRE(describe(a) == describe(b));

        std::array<AlertLevel, kAlertKindCount> level{};
        EngineTime last{0};
        for (const AlertEvent& e : a) {
            CHECK(e.confidence >= 0.0);
            CHECK(e.confidence <= 1.0);
            CHECK(e.at >= last);
            last = e.at;
            CHECK(json::value(e.evidence).is_object());
            AlertLevel& current = level[alertIndex(e.kind)];
            switch (e.type) {
            case Type::Raised:
                CHECK(current == AlertLevel::Cleared);
                CHECK(e.level == AlertLevel::Warning);
                break;
            case Type::LevelChanged:
                CHECK(current == AlertLevel::Warning);
                CHECK(e.level == AlertLevel::Critical);
                break;
            case Type::Cleared:
                CHECK(current != AlertLevel::Cleared);
                CHECK(e.level == AlertLevel::Cleared);
                break;
            }
            current = e.level;
        }
        for (const ActiveAlert& active : ticked.activeAlerts()) {
            CHECK(level[alertIndex(active.kind)] == active.level);
        }
        CHECK(ticked.activeMask() == lazy.activeMask());
    }
}
