#include "alerts/alert_conditions.h"

#include <algorithm>
#include <cmath>

#include <boost/json/array.hpp>
#include <boost/json/value.hpp>

#include "llm/analyses/attention.h"
#include "llm/analyses/face_state.h"
#include "llm/analyses/general_scene.h"
#include "llm/analyses/hand_position.h"
#include "llm/analyses/impaired_driving.h"
#include "llm/analysis.h"

namespace dmsd {

namespace {

namespace json = boost::json;

/// How one analysis votes on one kind.
struct Vote {
    enum class Source : std::uint8_t { NotAsked, Failed, BelowFloor, NoVerdict, Voted };
    Source source = Source::NotAsked;
    Verdict verdict = Verdict::Unknown;
    double probability = 0.0;
};

/// Clamps a self-reported confidence to 0..1; NaN stays NaN so that it fails the floor.
double clampConfidence(double confidence) {
    if (std::isnan(confidence)) {
        return confidence;
    }
    return std::clamp(confidence, 0.0, 1.0);
}

bool confident(double confidence, const ReadingRules& rules) {
    // NaN compares false: an unreadable confidence is a low one.
    return clampConfidence(confidence) >= rules.confidenceFloor;
}

/// A yes/no reading of a confident answer: the answer's confidence is the
/// probability of what it says.
Vote voteFrom(bool conditionHolds, double confidence) {
    const double c = clampConfidence(confidence);
    return conditionHolds ? Vote{Vote::Source::Voted, Verdict::Present, c}
                          : Vote{Vote::Source::Voted, Verdict::Absent, 1.0 - c};
}

/// The vote of \a Answer's analysis: not asked, failed or below the floor
/// become Unknown; otherwise `decide` reads the answer.
template <class Answer, class Decide>
Vote voteOf(const SequenceAnswers& answers, const ReadingRules& rules, Decide decide) {
    if (!answers.asked(Answer::kKind)) {
        return {};
    }
    const Answer* answer = answers.get<Answer>();
    if (answer == nullptr) {
        return {Vote::Source::Failed, Verdict::Unknown, 0.0};
    }
    if (!confident(answer->confidence, rules)) {
        return {Vote::Source::BelowFloor, Verdict::Unknown, 0.0};
    }
    return decide(*answer);
}

/// Rounds a confidence for the evidence so that the JSON stays short and stable.
double rounded(double value) {
    if (std::isnan(value)) {
        return 0.0;
    }
    return std::round(value * 1000.0) / 1000.0;
}

void confidenceFields(double confidence, const ReadingRules& rules, json::object& entry) {
    entry["confidence"] = rounded(confidence);
    if (!confident(confidence, rules)) {
        entry["below_floor"] = true;
    }
}

/// Evidence entry of one analysis, `{"<name>": {...}}`: what its answer says
/// (its descriptor's fields and the confidence), or its error; empty when not asked.
json::object evidenceOf(AnalysisKind kind, const SequenceAnswers& answers,
                        const ReadingRules& rules) {
    if (!answers.asked(kind)) {
        return {};
    }
    json::object entry;
    if (const AnalysisError* error = answers.error(kind)) {
        entry["error"] = analysisErrorName(error->kind);
    } else if (answers.answered(kind)) {
        const Analysis& a = analysis(kind);
        entry = a.evidence(answers.answer(kind));
        if (const std::optional<double> confidence = a.confidence(answers.answer(kind))) {
            confidenceFields(*confidence, rules, entry);
        }
    } else {
        entry["error"] = "unknown";
    }
    return {{analysisName(kind), std::move(entry)}};
}

/// Combines a primary analysis with a secondary one that can only add evidence
/// of presence (docs/alerts.md, "Reading the answers").
Vote combine(const Vote& primary, const Vote& secondary) {
    if (primary.verdict == Verdict::Present || secondary.verdict == Verdict::Present) {
        double p = 0.0;
        for (const Vote* vote : {&primary, &secondary}) {
            if (vote->verdict == Verdict::Present) {
                p = std::max(p, vote->probability);
            }
        }
        return {Vote::Source::Voted, Verdict::Present, p};
    }
    if (primary.verdict == Verdict::Absent) {
        return primary;
    }
    // The secondary analysis stands in for a primary one that is switched off, never
    // for one that failed: a failed face_state does not let "eyes open" clear DROWSINESS.
    if (primary.source == Vote::Source::NotAsked && secondary.verdict == Verdict::Absent) {
        return secondary;
    }
    Vote unknown = primary;
    if (primary.source == Vote::Source::NotAsked) {
        unknown.source = secondary.source;
    }
    unknown.verdict = Verdict::Unknown;
    return unknown;
}

std::string_view unknownReason(Vote::Source source) {
    switch (source) {
    case Vote::Source::NotAsked:
        return "not_asked";
    case Vote::Source::Failed:
        return "failed";
    case Vote::Source::BelowFloor:
        return "below_floor";
    case Vote::Source::NoVerdict:
    case Vote::Source::Voted:
        break;
    }
    return "no_verdict";
}

bool drowsyFace(FaceState state) {
    return state == FaceState::Sleepy || state == FaceState::Tired || state == FaceState::Exhausted;
}

} // namespace

std::string_view analysisErrorName(AnalysisError::Kind kind) {
    switch (kind) {
    case AnalysisError::Kind::ConnectionFailed:
        return "connection_failed";
    case AnalysisError::Kind::Timeout:
        return "timeout";
    case AnalysisError::Kind::HttpStatus:
        return "http_status";
    case AnalysisError::Kind::ServerError:
        return "server_error";
    case AnalysisError::Kind::MalformedBody:
        return "malformed_body";
    case AnalysisError::Kind::InvalidAnswer:
        return "invalid_answer";
    case AnalysisError::Kind::Cancelled:
        return "cancelled";
    }
    return "unknown";
}

SequenceReading readSequence(const SequenceAnswers& answers, const ReadingRules& rules) {
    SequenceReading reading;

    // Evidence entries, one per asked analysis.
    const json::object faceEvidence = evidenceOf(AnalysisKind::FaceState, answers, rules);
    const json::object attentionEvidence = evidenceOf(AnalysisKind::Attention, answers, rules);
    const json::object handEvidence = evidenceOf(AnalysisKind::HandPosition, answers, rules);
    const json::object sceneEvidence = evidenceOf(AnalysisKind::GeneralScene, answers, rules);
    const json::object impairedEvidence = evidenceOf(AnalysisKind::ImpairedDriving, answers, rules);

    // The scene decides DRIVER_NOT_VISIBLE; general_scene carries no confidence, so
    // its answer counts in full.
    Vote notVisible;
    if (answers.asked(AnalysisKind::GeneralScene)) {
        if (const GeneralSceneAnswer* scene = answers.get<GeneralSceneAnswer>()) {
            notVisible = voteFrom(!scene->driverVisible, 1.0);
        } else {
            notVisible.source = Vote::Source::Failed;
        }
    }
    const bool driverUnseen = notVisible.verdict == Verdict::Present;

    // DROWSINESS: face_state primary; attention's eyes_open == false adds presence.
    const Vote faceVote = voteOf<FaceStateAnswer>(answers, rules, [](const FaceStateAnswer& a) {
        const bool drowsy = drowsyFace(a.state) || a.eyesClosed || a.yawning;
        if (!drowsy && a.state == FaceState::Unknown) {
            return Vote{Vote::Source::NoVerdict, Verdict::Unknown, 0.0};
        }
        return voteFrom(drowsy, a.confidence);
    });
    const Vote eyesVote = voteOf<AttentionAnswer>(answers, rules, [](const AttentionAnswer& a) {
        return voteFrom(!a.eyesOpen, a.confidence);
    });
    // DISTRACTION: attention.looking_at_road.
    const Vote roadVote = voteOf<AttentionAnswer>(answers, rules, [](const AttentionAnswer& a) {
        return voteFrom(!a.lookingAtRoad, a.confidence);
    });
    // PHONE_USE: hand_position.holding primary; attention.gaze == phone adds presence.
    const Vote holdingVote =
        voteOf<HandPositionAnswer>(answers, rules, [](const HandPositionAnswer& a) {
            return voteFrom(a.holding == Holding::Phone, a.confidence);
        });
    const Vote gazePhoneVote =
        voteOf<AttentionAnswer>(answers, rules, [](const AttentionAnswer& a) {
            return voteFrom(a.gaze == Gaze::Phone, a.confidence);
        });
    // HANDS_OFF_WHEEL: hand_position.hands_on_wheel == 0 (out-of-range counts are unreadable).
    const Vote handsVote =
        voteOf<HandPositionAnswer>(answers, rules, [](const HandPositionAnswer& a) {
            if (a.handsOnWheel < 0 || a.handsOnWheel > 2) {
                return Vote{Vote::Source::NoVerdict, Verdict::Unknown, 0.0};
            }
            return voteFrom(a.handsOnWheel == 0, a.confidence);
        });
    // IMPAIRED_DRIVING: impaired_driving.concern == HIGH.
    const Vote impairedVote =
        voteOf<ImpairedDrivingAnswer>(answers, rules, [](const ImpairedDrivingAnswer& a) {
            return voteFrom(a.concern == Concern::High, a.confidence);
        });

    auto fill = [&](AlertKind kind, const Vote& vote,
                    std::initializer_list<const json::object*> parts, bool aboutDriver) {
        KindObservation& obs = reading.kinds[alertIndex(kind)];
        json::object analyses;
        for (const json::object* part : parts) {
            for (const auto& entry : *part) {
                analyses[entry.key()] = entry.value();
            }
        }
        obs.verdict = vote.verdict;
        obs.probability = vote.probability;
        if (aboutDriver && driverUnseen) {
            // Answers about a driver the scene cannot see are not evidence either way:
            // a driver who cannot be seen is not thereby attentive (nor asleep).
            for (const auto& entry : sceneEvidence) {
                analyses[entry.key()] = entry.value();
            }
            obs.verdict = Verdict::Unknown;
            obs.probability = 0.0;
            obs.evidence["unknown_reason"] = "driver_not_visible";
        } else if (obs.verdict == Verdict::Unknown) {
            obs.evidence["unknown_reason"] = unknownReason(vote.source);
        }
        obs.evidence["analyses"] = std::move(analyses);
    };

    fill(AlertKind::Drowsiness, combine(faceVote, eyesVote), {&faceEvidence, &attentionEvidence},
         true);
    fill(AlertKind::Distraction, roadVote, {&attentionEvidence}, true);
    fill(AlertKind::PhoneUse, combine(holdingVote, gazePhoneVote),
         {&handEvidence, &attentionEvidence}, true);
    fill(AlertKind::HandsOffWheel, handsVote, {&handEvidence}, true);
    fill(AlertKind::ImpairedDriving, impairedVote, {&impairedEvidence}, true);
    fill(AlertKind::DriverNotVisible, notVisible, {&sceneEvidence}, false);

    // What the sequence says about the model server.
    int asked = 0;
    int answered = 0;
    int failed = 0;
    for (AnalysisKind kind : kAllAnalyses) {
        if (!answers.asked(kind)) {
            continue;
        }
        ++asked;
        const AnalysisError* error = answers.error(kind);
        if (answers.answered(kind)) {
            ++answered;
        } else if (error == nullptr || error->kind != AnalysisError::Kind::Cancelled) {
            ++failed;
            reading.analyzerErrors[analysisName(kind)] =
                error != nullptr ? analysisErrorName(error->kind) : "unknown";
        }
    }
    if (answered > 0) {
        reading.analyzerOk = true;
    } else if (asked > 0 && failed > 0) {
        reading.analyzerOk = false;
    }

    if (const FaceStateAnswer* face = answers.get<FaceStateAnswer>();
        !driverUnseen && face != nullptr && confident(face->confidence, rules)) {
        reading.driverState = face->state;
    }
    return reading;
}

} // namespace dmsd
