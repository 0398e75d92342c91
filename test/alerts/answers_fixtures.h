#pragma once

// Builders of SequenceAnswers for the alert tests: a calm driver, and one change
// at a time on top of it.

#include <string>
#include <utility>

#include "alerts/alert_engine.h"
#include "llm/analyses/attention.h"
#include "llm/analyses/face_state.h"
#include "llm/analyses/general_scene.h"
#include "llm/analyses/hand_position.h"
#include "llm/analyses/impaired_driving.h"
#include "llm/answers.h"

namespace dmsd::test {

inline EngineTime ms(long long value) {
    return EngineTime{value};
}

inline AnalysisError failure(AnalysisError::Kind kind = AnalysisError::Kind::Timeout) {
    return AnalysisError{kind, 0, "test failure"};
}

/// Every analysis answered, nothing alarming, all confident.
inline SequenceAnswers calm(double confidence = 0.9) {
    SequenceAnswers a;
    a.set(FaceStateAnswer{FaceState::Awake, false, false, confidence});
    a.set(AttentionAnswer{true, Gaze::Road, true, confidence});
    a.set(HandPositionAnswer{2, Holding::Nothing, confidence});
    a.set(GeneralSceneAnswer{"a driver at the wheel", true, 1});
    a.set(ImpairedDrivingAnswer{Concern::Low, {}, confidence});
    return a;
}

/// A sleepy driver (face_state SLEEPY, eyes closed), everything else calm.
inline SequenceAnswers sleepy(double confidence = 0.9) {
    SequenceAnswers a = calm();
    a.set(FaceStateAnswer{FaceState::Sleepy, true, false, confidence});
    return a;
}

/// Every asked analysis failed.
inline SequenceAnswers allFailed(AnalysisError::Kind kind = AnalysisError::Kind::Timeout) {
    SequenceAnswers a;
    for (AnalysisKind analysis : kAllAnalyses) {
        a.setError(analysis, failure(kind));
    }
    return a;
}

/// Short text of an event for table comparisons: "DROWSINESS raised warning @3000".
inline std::string describe(const AlertEvent& e) {
    const char* type = e.type == AlertEvent::Type::Raised         ? "raised"
                       : e.type == AlertEvent::Type::LevelChanged ? "level"
                                                                  : "cleared";
    return std::string(alertKindName(e.kind)) + " " + type + " " +
           std::string(alertLevelName(e.level)) + " @" + std::to_string(e.at.count());
}

inline std::vector<std::string> describe(const std::vector<AlertEvent>& events) {
    std::vector<std::string> out;
    for (const AlertEvent& e : events) {
        out.push_back(describe(e));
    }
    return out;
}

/// Only the events of one kind.
inline std::vector<AlertEvent> ofKind(const std::vector<AlertEvent>& events, AlertKind kind) {
    std::vector<AlertEvent> out;
    for (const AlertEvent& e : events) {
        if (e.kind == kind) {
            out.push_back(e);
        }
    }
    return out;
}

inline void append(std::vector<AlertEvent>& all, std::vector<AlertEvent> more) {
    for (AlertEvent& e : more) {
        all.push_back(std::move(e));
    }
}

} // namespace dmsd::test
