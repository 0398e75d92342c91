#include "alerts/alert_engine.h"

#include <algorithm>
#include <cmath>

#include <boost/json/value.hpp>

namespace dmsd {

namespace {

namespace json = boost::json;

double unitInterval(double value) {
    if (std::isnan(value)) {
        return 0.0;
    }
    return std::clamp(value, 0.0, 1.0);
}

double rounded(double value) {
    return std::round(unitInterval(value) * 1000.0) / 1000.0;
}

/// Transitions that can become due in one call are few (at most raise, escalate and
/// clear per kind); the bound only guards against a logic error looping forever.
constexpr int kMaxCatchUpRounds = 8 * static_cast<int>(kAlertKindCount);

} // namespace

AlertEngine::AlertEngine(const AlertsSettings& settings, AlertTuning tuning)
    : rules_(settings), tuning_(tuning) {
}

void AlertEngine::updateRules(const AlertsSettings& settings) {
    rules_ = settings;
}

void AlertEngine::updateTuning(const AlertTuning& tuning) {
    tuning_ = tuning;
}

bool AlertEngine::isHealthKind(AlertKind kind) {
    return kind == AlertKind::CameraFault || kind == AlertKind::AnalyzerFault;
}

int AlertEngine::confirmSamples(AlertKind kind) const {
    // Health is a reported state, not a noisy sample: one report is the truth until
    // the next one, so no confirmation count applies.
    return isHealthKind(kind) ? 1 : std::max(1, tuning_.confirmSamples);
}

std::vector<AlertEvent> AlertEngine::observe(EngineTime t, std::uint64_t sequenceId,
                                             const SequenceAnswers& answers) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    SequenceReading reading = readSequence(answers, ReadingRules{tuning_.confidenceFloor});
    driverState_ = reading.driverState;
    applyReading(reading, sequenceId, false, now_);
    if (reading.analyzerOk) {
        analyzerSequenceOk_ = *reading.analyzerOk;
        if (*reading.analyzerOk) {
            // An answer proves the server works, whatever an earlier probe said.
            if (analyzerReportedOk_ == false) {
                analyzerReportedOk_ = true;
            }
        }
        analyzerErrors_ = reading.analyzerErrors;
        applyAnalyzer(now_, sequenceId);
    }
    lastReading_ = std::move(reading);
    lastSequenceId_ = sequenceId;
    evaluateAll(now_, true, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::carryForward(EngineTime t, std::uint64_t sequenceId) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    if (!lastReading_) {
        return events;
    }
    applyReading(*lastReading_, sequenceId != 0 ? sequenceId : lastSequenceId_, true, now_);
    evaluateAll(now_, true, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::observeCamera(EngineTime t, bool ok) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    json::object evidence;
    evidence["health"] = json::object{{"camera_ok", ok}};
    apply(AlertKind::CameraFault,
          Sample{ok ? Verdict::Absent : Verdict::Present, ok ? 0.0 : 1.0, &evidence, 0, false},
          now_);
    evaluateAll(now_, false, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::observeAnalyzer(EngineTime t, bool ok) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    analyzerReportedOk_ = ok;
    applyAnalyzer(now_, 0);
    evaluateAll(now_, false, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::tick(EngineTime t) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    return events;
}

std::optional<EngineTime> AlertEngine::nextDeadline() const {
    std::optional<EngineTime> earliest;
    for (AlertKind kind : kAllAlertKinds) {
        const std::optional<EngineTime> d = deadline(kind);
        if (d && (!earliest || *d < *earliest)) {
            earliest = d;
        }
    }
    return earliest;
}

std::vector<ActiveAlert> AlertEngine::activeAlerts() const {
    std::vector<ActiveAlert> active;
    for (AlertKind kind : kAllAlertKinds) {
        const Track& track = tracks_[alertIndex(kind)];
        if (track.phase == Phase::Raised) {
            active.push_back(
                ActiveAlert{kind, track.level, unitInterval(track.confidence), track.raisedAt});
        }
    }
    return active;
}

std::uint16_t AlertEngine::activeMask() const {
    return dmsd::activeMask(activeAlerts());
}

void AlertEngine::advanceTo(EngineTime t, std::vector<AlertEvent>& events) {
    // Time never runs backwards for the engine: a late input is judged as of now.
    const EngineTime target = std::max(t, now_);
    for (int round = 0; round < kMaxCatchUpRounds; ++round) {
        const std::optional<EngineTime> due = nextDeadline();
        if (!due || *due > target) {
            break;
        }
        // Each transition is stamped with the time it became due (or now, if the rules
        // changed under a running episode), independent of how often we are called.
        now_ = std::max(*due, now_);
        const std::size_t before = events.size();
        evaluateAll(now_, false, events);
        if (events.size() == before) {
            break;
        }
    }
    now_ = target;
}

std::optional<EngineTime> AlertEngine::deadline(AlertKind kind) const {
    const Track& track = tracks_[alertIndex(kind)];
    const AlertRule& rule = rules_[kind];
    if (track.phase == Phase::Pending) {
        if (track.absentRun == 0 && track.presentSamples >= confirmSamples(kind)) {
            EngineTime due = track.onset + rule.raiseAfter;
            if (track.clearedAt) {
                due = std::max(due, *track.clearedAt + rule.cooldown);
            }
            return due;
        }
        return std::nullopt;
    }
    if (track.phase == Phase::Raised) {
        if (track.level == AlertLevel::Warning && track.absentRun == 0) {
            return track.onset + rule.criticalAfter;
        }
        // Only health clears by time alone; answer-based kinds clear on an observation.
        if (isHealthKind(kind) && track.absentSince && track.absentSamples >= 1) {
            return *track.absentSince + rule.clearAfter;
        }
    }
    return std::nullopt;
}

void AlertEngine::apply(AlertKind kind, const Sample& sample, EngineTime t) {
    Track& track = tracks_[alertIndex(kind)];
    const double alpha = std::clamp(tuning_.confidenceSmoothing, 0.01, 1.0);
    track.lastVerdict = sample.verdict;
    track.lastSequence = sample.sequenceId;
    track.lastCarried = sample.carried;
    if (sample.evidence != nullptr) {
        track.lastEvidence = *sample.evidence;
    }
    switch (sample.verdict) {
    case Verdict::Present:
        if (track.phase == Phase::Idle) {
            // The condition is taken to have started at its first present observation.
            track.phase = Phase::Pending;
            track.onset = t;
            track.presentSamples = 0;
            track.confidence = sample.probability;
        } else {
            track.confidence = (1.0 - alpha) * track.confidence + alpha * sample.probability;
        }
        ++track.presentSamples;
        track.absentRun = 0;
        track.absentSince.reset();
        track.absentSamples = 0;
        track.presentSequence = sample.sequenceId;
        track.presentCarried = sample.carried;
        track.presentEvidence = track.lastEvidence;
        break;
    case Verdict::Absent:
        if (track.phase == Phase::Idle) {
            break;
        }
        track.confidence = (1.0 - alpha) * track.confidence + alpha * sample.probability;
        ++track.absentRun;
        if (track.phase == Phase::Pending) {
            if (track.absentRun >= confirmSamples(kind)) {
                // The condition did not hold: the episode ends before it was raised.
                track.phase = Phase::Idle;
                track.presentSamples = 0;
                track.absentRun = 0;
            }
            break;
        }
        if (!track.absentSince) {
            track.absentSince = t;
            track.absentSamples = 0;
        }
        ++track.absentSamples;
        break;
    case Verdict::Unknown:
        // Unknown neither raises nor resets a running episode; it only interrupts a
        // proof of absence, which must then start again (never in the driver's favour).
        if (track.phase == Phase::Raised && !isHealthKind(kind)) {
            track.absentSince.reset();
            track.absentSamples = 0;
        }
        break;
    }
}

void AlertEngine::evaluate(AlertKind kind, EngineTime t, bool atObservation,
                           std::vector<AlertEvent>& events) {
    Track& track = tracks_[alertIndex(kind)];
    const AlertRule& rule = rules_[kind];
    const int confirm = confirmSamples(kind);
    if (track.phase == Phase::Pending) {
        const bool held = track.absentRun == 0;
        const bool coolingDown = track.clearedAt && t < *track.clearedAt + rule.cooldown;
        if (held && track.presentSamples >= confirm && t >= track.onset + rule.raiseAfter &&
            !coolingDown) {
            track.phase = Phase::Raised;
            track.level = AlertLevel::Warning;
            track.raisedAt = t;
            events.push_back(makeEvent(AlertEvent::Type::Raised, kind, t));
        }
    }
    if (track.phase != Phase::Raised) {
        return;
    }
    if (track.level == AlertLevel::Warning && track.absentRun == 0 &&
        t >= track.onset + rule.criticalAfter) {
        track.level = AlertLevel::Critical;
        events.push_back(makeEvent(AlertEvent::Type::LevelChanged, kind, t));
    }
    const bool mayClear = isHealthKind(kind) || atObservation;
    if (mayClear && track.absentSince && track.absentSamples >= confirm &&
        t >= *track.absentSince + rule.clearAfter) {
        track.level = AlertLevel::Cleared;
        events.push_back(makeEvent(AlertEvent::Type::Cleared, kind, t));
        track.phase = Phase::Idle;
        track.clearedAt = t;
        track.presentSamples = 0;
        track.absentRun = 0;
        track.absentSince.reset();
        track.absentSamples = 0;
    }
}

void AlertEngine::evaluateAll(EngineTime t, bool atObservation, std::vector<AlertEvent>& events) {
    for (AlertKind kind : kAllAlertKinds) {
        evaluate(kind, t, atObservation, events);
    }
}

void AlertEngine::applyReading(const SequenceReading& reading, std::uint64_t sequenceId,
                               bool carried, EngineTime t) {
    for (AlertKind kind : kAllAlertKinds) {
        if (isHealthKind(kind)) {
            continue;
        }
        const KindObservation& obs = reading.kinds[alertIndex(kind)];
        apply(kind, Sample{obs.verdict, obs.probability, &obs.evidence, sequenceId, carried}, t);
    }
}

void AlertEngine::applyAnalyzer(EngineTime t, std::uint64_t sequenceId) {
    const bool failing = analyzerReportedOk_ == false || analyzerSequenceOk_ == false;
    const bool known = analyzerReportedOk_.has_value() || analyzerSequenceOk_.has_value();
    json::object health;
    health["reported_ok"] =
        analyzerReportedOk_ ? json::value(*analyzerReportedOk_) : json::value(nullptr);
    health["last_sequence_ok"] =
        analyzerSequenceOk_ ? json::value(*analyzerSequenceOk_) : json::value(nullptr);
    if (!analyzerErrors_.empty()) {
        health["errors"] = analyzerErrors_;
    }
    json::object evidence;
    evidence["health"] = std::move(health);
    const Verdict verdict = failing ? Verdict::Present : known ? Verdict::Absent : Verdict::Unknown;
    apply(AlertKind::AnalyzerFault,
          Sample{verdict, failing ? 1.0 : 0.0, &evidence, sequenceId, false}, t);
}

AlertEvent AlertEngine::makeEvent(AlertEvent::Type type, AlertKind kind, EngineTime t) const {
    const Track& track = tracks_[alertIndex(kind)];
    AlertEvent event;
    event.type = type;
    event.kind = kind;
    event.level = track.level;
    event.confidence = unitInterval(track.confidence);
    event.at = t;
    const bool cleared = type == AlertEvent::Type::Cleared;
    event.sequenceId = cleared ? track.lastSequence : track.presentSequence;
    event.source = kind == AlertKind::CameraFault || kind == AlertKind::AnalyzerFault
                       ? AlertSource::Health
                       : AlertSource::Model;

    // Raise and escalation cite the last observation that saw the condition; a clear
    // cites the last one, which saw it absent.
    json::object evidence;
    evidence["kind"] = alertKindName(kind);
    evidence["sequence_id"] = event.sequenceId;
    evidence["carried_forward"] = cleared ? track.lastCarried : track.presentCarried;
    evidence["onset_ms"] = track.onset.count();
    evidence["held_ms"] = (t - track.onset).count();
    evidence["present_samples"] = track.presentSamples;
    evidence["last_verdict"] = verdictName(track.lastVerdict);
    evidence["confidence"] = rounded(track.confidence);
    if (cleared && track.absentSince) {
        evidence["absent_ms"] = (t - *track.absentSince).count();
        evidence["absent_samples"] = track.absentSamples;
    }
    for (const auto& entry : cleared ? track.lastEvidence : track.presentEvidence) {
        evidence[entry.key()] = entry.value();
    }
    event.evidence = std::move(evidence);
    return event;
}

} // namespace dmsd
