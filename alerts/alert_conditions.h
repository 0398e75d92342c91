#pragma once

/// \file
/// The condition of each alert kind (docs/interfaces.md section 3) read from one
/// sequence's typed answers: present, absent or unknown, with a probability and
/// the evidence (which analyses said what). Pure functions; the hysteresis over
/// time lives in alerts/alert_engine.h. The rules are documented in docs/alerts.md.

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include <boost/json/object.hpp>

#include "alerts/alert_types.h"
#include "llm/analyses/face_state.h"
#include "llm/answers.h"

namespace dmsd {

/// What one observation says about one kind's condition.
enum class Verdict : std::uint8_t {
    Unknown, ///< no usable answer: not asked, failed, below the confidence floor, driver unseen
    Absent,  ///< a confident answer says the condition does not hold
    Present, ///< a confident answer says the condition holds
};

/// "unknown", "absent", "present".
constexpr std::string_view verdictName(Verdict verdict) {
    switch (verdict) {
    case Verdict::Absent:
        return "absent";
    case Verdict::Present:
        return "present";
    case Verdict::Unknown:
        break;
    }
    return "unknown";
}

/// One kind's reading of one sequence.
struct KindObservation {
    Verdict verdict = Verdict::Unknown;
    /// Probability (0..1) that the condition holds, from the answers' confidences;
    /// meaningful only when the verdict is not Unknown.
    double probability = 0.0;
    /// `{"analyses": {...}, "unknown_reason": "..."}`: the answers the kind was read from.
    boost::json::object evidence;
};

/// Tuning of how answers are read; not (yet) configuration keys.
struct ReadingRules {
    /// An answer whose `confidence` is below this counts as unknown for every kind
    /// it feeds (it neither raises, confirms, clears nor resets anything).
    double confidenceFloor = 0.5;
};

/// All kinds' readings of one sequence, plus what it says about the analyzer.
struct SequenceReading {
    /// Indexed by alertIndex(); CAMERA_FAULT and ANALYZER_FAULT entries stay Unknown
    /// (they come from health, see AlertEngine).
    std::array<KindObservation, kAlertKindCount> kinds{};
    /// true: at least one analysis answered; false: every asked analysis failed
    /// (cancellations excluded); nullopt: nothing asked, or only cancellations.
    std::optional<bool> analyzerOk;
    /// `{"face_state": "timeout", ...}` for the failed analyses.
    boost::json::object analyzerErrors;
    /// Face state of this sequence; Unknown if not answered, below the floor, or the
    /// scene says no driver is visible.
    FaceState driverState = FaceState::Unknown;
};

/// Reads one sequence's answers (docs/interfaces.md section 3 conditions; docs/alerts.md).
SequenceReading readSequence(const SequenceAnswers& answers, const ReadingRules& rules = {});

/// Short name of an analysis error kind: "connection_failed", "timeout", ...
std::string_view analysisErrorName(AnalysisError::Kind kind);

} // namespace dmsd
