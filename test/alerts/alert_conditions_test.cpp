// How one sequence's answers are read per alert kind (docs/interfaces.md section 3).

#include <limits>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "alerts/alert_conditions.h"
#include "test/alerts/answers_fixtures.h"

using namespace dmsd;
using namespace dmsd::test;
namespace json = boost::json;

namespace {

Verdict verdictOf(const SequenceAnswers& answers, AlertKind kind, ReadingRules rules = {}) {
    return readSequence(answers, rules).kinds[alertIndex(kind)].verdict;
}

const json::object& analysesOf(const SequenceReading& reading, AlertKind kind) {
    return reading.kinds[alertIndex(kind)].evidence.at("analyses").as_object();
}

} // namespace

TEST_CASE("a calm, confident sequence reads every answer-based kind as absent") {
    const SequenceReading r = readSequence(calm());
    for (AlertKind kind : kAllAlertKinds) {
        INFO(alertKindName(kind));
        if (kind == AlertKind::CameraFault || kind == AlertKind::AnalyzerFault) {
            CHECK(r.kinds[alertIndex(kind)].verdict == Verdict::Unknown);
        } else {
            CHECK(r.kinds[alertIndex(kind)].verdict == Verdict::Absent);
        }
    }
    CHECK(r.analyzerOk == true);
    CHECK(r.driverState == FaceState::Awake);
}

TEST_CASE("DROWSINESS: SLEEPY, TIRED, EXHAUSTED, eyes closed, yawning or attention eyes shut") {
    struct Row {
        FaceState state;
        bool eyesClosed;
        bool yawning;
        bool attentionEyesOpen;
        Verdict expected;
    };
    const Row rows[] = {
        {FaceState::Sleepy, false, false, true, Verdict::Present},
        {FaceState::Tired, false, false, true, Verdict::Present},
        {FaceState::Exhausted, false, false, true, Verdict::Present},
        {FaceState::Awake, true, false, true, Verdict::Present},
        {FaceState::Neutral, false, true, true, Verdict::Present},
        {FaceState::Awake, false, false, false, Verdict::Present},
        {FaceState::Awake, false, false, true, Verdict::Absent},
        {FaceState::Joyful, false, false, true, Verdict::Absent},
        {FaceState::Angry, false, false, true, Verdict::Absent},
        {FaceState::Neutral, false, false, true, Verdict::Absent},
        {FaceState::Unknown, false, false, true, Verdict::Unknown},
    };
    for (const Row& row : rows) {
        SequenceAnswers a = calm();
        a.set(FaceStateAnswer{row.state, row.eyesClosed, row.yawning, 0.8});
        a.set(AttentionAnswer{true, Gaze::Road, row.attentionEyesOpen, 0.8});
        INFO(faceStateName(row.state) << " eyes_closed=" << row.eyesClosed << " yawning="
                                      << row.yawning << " eyes_open=" << row.attentionEyesOpen);
        CHECK(verdictOf(a, AlertKind::Drowsiness) == row.expected);
    }
}

TEST_CASE("DROWSINESS: attention stands in for face_state only when face_state is not asked") {
    SequenceAnswers a = calm();
    a.clear(AnalysisKind::FaceState);
    CHECK(verdictOf(a, AlertKind::Drowsiness) == Verdict::Absent);
    a.set(AttentionAnswer{true, Gaze::Road, false, 0.8});
    CHECK(verdictOf(a, AlertKind::Drowsiness) == Verdict::Present);

    // A failed face_state is not replaced: "eyes open" alone does not prove an awake driver.
    SequenceAnswers b = calm();
    b.setError(AnalysisKind::FaceState, failure());
    const SequenceReading r = readSequence(b);
    CHECK(r.kinds[alertIndex(AlertKind::Drowsiness)].verdict == Verdict::Unknown);
    CHECK(r.kinds[alertIndex(AlertKind::Drowsiness)].evidence.at("unknown_reason") == "failed");
}

TEST_CASE("DISTRACTION: looking_at_road false") {
    SequenceAnswers a = calm();
    a.set(AttentionAnswer{false, Gaze::Passenger, true, 0.8});
    CHECK(verdictOf(a, AlertKind::Distraction) == Verdict::Present);
    a.set(AttentionAnswer{true, Gaze::Road, true, 0.8});
    CHECK(verdictOf(a, AlertKind::Distraction) == Verdict::Absent);
    a.clear(AnalysisKind::Attention);
    CHECK(verdictOf(a, AlertKind::Distraction) == Verdict::Unknown);
}

TEST_CASE("PHONE_USE: holding a phone, or gaze on a phone") {
    SequenceAnswers a = calm();
    a.set(HandPositionAnswer{1, Holding::Phone, 0.8});
    CHECK(verdictOf(a, AlertKind::PhoneUse) == Verdict::Present);

    SequenceAnswers b = calm();
    b.set(AttentionAnswer{false, Gaze::Phone, true, 0.8});
    CHECK(verdictOf(b, AlertKind::PhoneUse) == Verdict::Present);

    for (Holding holding :
         {Holding::Nothing, Holding::Food, Holding::Drink, Holding::Cigarette, Holding::Other}) {
        SequenceAnswers c = calm();
        c.set(HandPositionAnswer{1, holding, 0.8});
        INFO(holdingName(holding));
        CHECK(verdictOf(c, AlertKind::PhoneUse) == Verdict::Absent);
    }

    // Attention stands in when hand_position is switched off, not when it failed.
    SequenceAnswers d = calm();
    d.clear(AnalysisKind::HandPosition);
    CHECK(verdictOf(d, AlertKind::PhoneUse) == Verdict::Absent);
    d.setError(AnalysisKind::HandPosition, failure());
    CHECK(verdictOf(d, AlertKind::PhoneUse) == Verdict::Unknown);
}

TEST_CASE("HANDS_OFF_WHEEL: hands_on_wheel == 0, out-of-range counts are unknown") {
    const std::pair<int, Verdict> rows[] = {{0, Verdict::Present},
                                            {1, Verdict::Absent},
                                            {2, Verdict::Absent},
                                            {3, Verdict::Unknown},
                                            {-1, Verdict::Unknown}};
    for (const auto& [hands, expected] : rows) {
        SequenceAnswers a = calm();
        a.set(HandPositionAnswer{hands, Holding::Nothing, 0.8});
        INFO("hands_on_wheel=" << hands);
        CHECK(verdictOf(a, AlertKind::HandsOffWheel) == expected);
    }
}

TEST_CASE("IMPAIRED_DRIVING: concern HIGH only") {
    const std::pair<Concern, Verdict> rows[] = {
        {Concern::High, Verdict::Present},
        {Concern::Moderate, Verdict::Absent},
        {Concern::Low, Verdict::Absent},
    };
    for (const auto& [concern, expected] : rows) {
        SequenceAnswers a = calm();
        a.set(ImpairedDrivingAnswer{concern, {"slurred gestures"}, 0.8});
        INFO(concernName(concern));
        CHECK(verdictOf(a, AlertKind::ImpairedDriving) == expected);
    }
}

TEST_CASE("DRIVER_NOT_VISIBLE: general_scene driver_visible false, it masks the driver kinds") {
    SequenceAnswers a = sleepy();
    a.set(AttentionAnswer{true, Gaze::Road, true, 0.9});
    a.set(GeneralSceneAnswer{"an empty seat", false, 0});
    const SequenceReading r = readSequence(a);
    CHECK(r.kinds[alertIndex(AlertKind::DriverNotVisible)].verdict == Verdict::Present);
    CHECK(r.kinds[alertIndex(AlertKind::DriverNotVisible)].probability == 1.0);
    for (AlertKind kind : {AlertKind::Drowsiness, AlertKind::Distraction, AlertKind::PhoneUse,
                           AlertKind::HandsOffWheel, AlertKind::ImpairedDriving}) {
        INFO(alertKindName(kind));
        const KindObservation& obs = r.kinds[alertIndex(kind)];
        CHECK(obs.verdict == Verdict::Unknown);
        CHECK(obs.evidence.at("unknown_reason") == "driver_not_visible");
        CHECK(obs.evidence.at("analyses").as_object().contains("general_scene"));
    }
    CHECK(r.driverState == FaceState::Unknown);

    SequenceAnswers failed = calm();
    failed.setError(AnalysisKind::GeneralScene, failure());
    CHECK(verdictOf(failed, AlertKind::DriverNotVisible) == Verdict::Unknown);
    // A failed scene does not mask the other kinds.
    CHECK(verdictOf(failed, AlertKind::Distraction) == Verdict::Absent);
}

TEST_CASE("answers below the confidence floor are unknown, at the floor they count") {
    SequenceAnswers low = sleepy(0.49);
    CHECK(verdictOf(low, AlertKind::Drowsiness) == Verdict::Unknown);
    CHECK(readSequence(low).kinds[alertIndex(AlertKind::Drowsiness)].evidence.at(
              "unknown_reason") == "below_floor");
    CHECK(readSequence(low).driverState == FaceState::Unknown);
    CHECK(verdictOf(sleepy(0.5), AlertKind::Drowsiness) == Verdict::Present);
    CHECK(verdictOf(low, AlertKind::Drowsiness, ReadingRules{0.4}) == Verdict::Present);

    // Low-confidence negatives cannot clear anything either.
    CHECK(verdictOf(calm(0.3), AlertKind::Distraction) == Verdict::Unknown);
    // NaN and out-of-range confidences: NaN is low, > 1 is clamped to 1.
    SequenceAnswers nan = sleepy(std::numeric_limits<double>::quiet_NaN());
    CHECK(verdictOf(nan, AlertKind::Drowsiness) == Verdict::Unknown);
    const SequenceReading high = readSequence(sleepy(7.0));
    CHECK(high.kinds[alertIndex(AlertKind::Drowsiness)].probability == 1.0);
}

TEST_CASE("the probability of a reading follows the answer's confidence") {
    const SequenceReading present = readSequence(sleepy(0.8));
    CHECK(present.kinds[alertIndex(AlertKind::Drowsiness)].probability == Approx(0.8));
    const SequenceReading absent = readSequence(calm(0.8));
    CHECK(absent.kinds[alertIndex(AlertKind::Drowsiness)].probability == Approx(0.2));

    // Two sources saying present: the stronger one counts.
    SequenceAnswers both = sleepy(0.6);
    both.set(AttentionAnswer{true, Gaze::Road, false, 0.95});
    CHECK(readSequence(both).kinds[alertIndex(AlertKind::Drowsiness)].probability == Approx(0.95));
}

TEST_CASE("evidence names the analyses each kind was read from") {
    SequenceAnswers a = sleepy(0.8);
    a.setError(AnalysisKind::HandPosition, failure(AnalysisError::Kind::HttpStatus));
    const SequenceReading r = readSequence(a);

    const json::object& drowsy = analysesOf(r, AlertKind::Drowsiness);
    CHECK(drowsy.at("face_state").at("state") == "SLEEPY");
    CHECK(drowsy.at("face_state").at("eyes_closed") == true);
    CHECK(drowsy.at("face_state").at("confidence").as_double() == Approx(0.8));
    CHECK(drowsy.contains("attention"));
    CHECK_FALSE(drowsy.contains("hand_position"));

    const json::object& phone = analysesOf(r, AlertKind::PhoneUse);
    CHECK(phone.at("hand_position").at("error") == "http_status");
    CHECK(phone.contains("attention"));

    CHECK(analysesOf(r, AlertKind::ImpairedDriving).at("impaired_driving").at("concern") == "LOW");
    CHECK(analysesOf(r, AlertKind::DriverNotVisible).at("general_scene").at("driver_visible") ==
          true);
    CHECK(r.analyzerErrors.at("hand_position") == "http_status");

    SequenceAnswers low = sleepy(0.2);
    CHECK(analysesOf(readSequence(low), AlertKind::Drowsiness).at("face_state").at("below_floor") ==
          true);
}

TEST_CASE("analyzer health from a sequence: any answer is ok, all failed is failing") {
    CHECK(readSequence(calm()).analyzerOk == true);
    CHECK(readSequence(allFailed()).analyzerOk == false);
    CHECK(readSequence(allFailed(AnalysisError::Kind::ConnectionFailed)).analyzerErrors.size() ==
          5);
    // Cancellations (superseded work) say nothing about the server.
    CHECK_FALSE(readSequence(allFailed(AnalysisError::Kind::Cancelled)).analyzerOk.has_value());
    // Nothing asked: nothing known.
    CHECK_FALSE(readSequence(SequenceAnswers{}).analyzerOk.has_value());

    SequenceAnswers partly = allFailed();
    partly.set(GeneralSceneAnswer{"", true, 1});
    CHECK(readSequence(partly).analyzerOk == true);
}

TEST_CASE("analysis error kinds have short names") {
    CHECK(analysisErrorName(AnalysisError::Kind::ConnectionFailed) == "connection_failed");
    CHECK(analysisErrorName(AnalysisError::Kind::Timeout) == "timeout");
    CHECK(analysisErrorName(AnalysisError::Kind::InvalidAnswer) == "invalid_answer");
    CHECK(analysisErrorName(AnalysisError::Kind::Cancelled) == "cancelled");
}
