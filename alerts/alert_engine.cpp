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

double rounded3(double value) {
    return std::round(value * 1000.0) / 1000.0;
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
    evaluateAll(now_, Observer::Model, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::carryForward(EngineTime t, std::uint64_t sequenceId) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    if (!lastReading_) {
        return events;
    }
    applyReading(*lastReading_, sequenceId != 0 ? sequenceId : lastSequenceId_, true, now_);
    evaluateAll(now_, Observer::Model, events);
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
    evaluateAll(now_, Observer::None, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::observeAnalyzer(EngineTime t, bool ok) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    analyzerReportedOk_ = ok;
    applyAnalyzer(now_, 0);
    evaluateAll(now_, Observer::None, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::observeVision(EngineTime t, const VisionEvidence& vision) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    const double floor = tuning_.confidenceFloor;
    const auto since = [this](double heldS) {
        return now_ -
               EngineTime(static_cast<std::int64_t>(std::llround(std::max(0.0, heldS) * 1000.0)));
    };

    json::object measured;
    measured["face_present"] = vision.facePresent;
    measured["face_absent_s"] = rounded3(vision.faceAbsentS);
    measured["eyes_closed"] = vision.eyesClosed;
    measured["eyes_closed_s"] = rounded3(vision.eyesClosedS);
    measured["perclos"] = rounded(vision.perclos);
    measured["yawns_in_window"] = vision.yawnsInWindow;
    if (vision.poseMeasured) {
        measured["yaw_deg"] = std::round(vision.yawDeg * 10.0) / 10.0;
        measured["pitch_deg"] = std::round(vision.pitchDeg * 10.0) / 10.0;
    }
    measured["outside_cone_s"] = rounded3(vision.outsideConeS);

    // DROWSINESS: eyes closed long, PERCLOS high or yawning often. The absence is
    // eyes measured (with confidence) and none of the three: a blink is not drowsiness
    // and must not restart the proof of absence.
    {
        json::array conditions;
        if (vision.eyesClosedLong) {
            conditions.emplace_back("eyes_closed_long");
        }
        if (vision.perclosHigh) {
            conditions.emplace_back("perclos_high");
        }
        if (vision.yawningOften) {
            conditions.emplace_back("yawning_often");
        }
        const bool present = !conditions.empty();
        // Eyes measured below the floor (a head turned far foreshortens them)
        // neither prove nor interrupt an absence: at 15 fps a face near the
        // floor would otherwise restart the proof every few frames.
        const bool doubtful = !present && vision.eyesMeasured && vision.eyesConfidence < floor;
        const Verdict verdict = present               ? Verdict::Present
                                : vision.eyesMeasured ? Verdict::Absent
                                                      : Verdict::Unknown;
        json::object evidence = measured;
        evidence["conditions"] = std::move(conditions);
        if (!doubtful) {
            applyVision(AlertKind::Drowsiness, verdict,
                        present ? std::max(vision.eyesConfidence, 0.5) : 0.0,
                        since(vision.eyesClosedLong ? vision.eyesClosedS : 0.0),
                        json::object{{"vision", std::move(evidence)}}, now_);
        }
    }
    // DISTRACTION: the head outside the on-road cone long.
    {
        const bool doubtful =
            !vision.offRoadLong && vision.poseMeasured && vision.poseConfidence < floor;
        const Verdict verdict = vision.offRoadLong    ? Verdict::Present
                                : vision.poseMeasured ? Verdict::Absent
                                                      : Verdict::Unknown;
        json::object evidence = measured;
        evidence["conditions"] = vision.offRoadLong ? json::array{"off_road_long"} : json::array{};
        if (!doubtful) {
            applyVision(AlertKind::Distraction, verdict,
                        vision.offRoadLong ? std::max(vision.poseConfidence, 0.5) : 0.0,
                        since(vision.outsideConeS), json::object{{"vision", std::move(evidence)}},
                        now_);
        }
    }
    // DRIVER_NOT_VISIBLE: no face long (lost from inside the cone); a face seen is
    // the absence.
    {
        const Verdict verdict = vision.faceAbsentLong ? Verdict::Present
                                : vision.facePresent  ? Verdict::Absent
                                                      : Verdict::Unknown;
        json::object evidence = measured;
        evidence["conditions"] =
            vision.faceAbsentLong ? json::array{"face_absent_long"} : json::array{};
        applyVision(AlertKind::DriverNotVisible, verdict,
                    vision.faceAbsentLong ? std::max(vision.faceConfidence, 0.5) : 0.0,
                    since(vision.faceAbsentS), json::object{{"vision", std::move(evidence)}}, now_);
    }
    evaluateAll(now_, Observer::Vision, events);
    return events;
}

std::vector<AlertEvent> AlertEngine::visionStopped(EngineTime t) {
    std::vector<AlertEvent> events;
    advanceTo(t, events);
    for (VisionTrack& v : vision_) {
        if (v.holds) {
            v.holds = false;
            v.level = AlertLevel::Cleared;
            v.absentSince.reset();
            v.lastVerdict = Verdict::Unknown;
            v.lastEvidence = json::object{{"vision", json::object{{"stopped", true}}}};
        }
    }
    evaluateAll(now_, Observer::Vision, events);
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
        const AlertState& alert = alerts_[alertIndex(kind)];
        if (alert.raised) {
            const Track& track = tracks_[alertIndex(kind)];
            const VisionTrack& v = vision_[alertIndex(kind)];
            double confidence = 0.0;
            if (track.phase == Phase::Raised) {
                confidence = track.confidence;
            }
            if (v.holds) {
                confidence = std::max(confidence, v.confidence);
            }
            active.push_back(ActiveAlert{kind, alert.level, unitInterval(confidence),
                                         alert.raisedAt, alert.source});
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
        evaluateAll(now_, Observer::None, events);
        // A deadline may change a source's state without a transition (the model
        // escalating an alert vision already made critical): go on while the
        // schedule moves, stop if nothing changed at all.
        if (events.size() == before && nextDeadline() == due) {
            break;
        }
    }
    now_ = target;
}

std::optional<EngineTime> AlertEngine::deadline(AlertKind kind) const {
    const Track& track = tracks_[alertIndex(kind)];
    const VisionTrack& v = vision_[alertIndex(kind)];
    const AlertState& alert = alerts_[alertIndex(kind)];
    const AlertRule& rule = rules_[kind];
    std::optional<EngineTime> earliest;
    const auto consider = [&earliest](EngineTime due) {
        if (!earliest || due < *earliest) {
            earliest = due;
        }
    };
    if (track.phase == Phase::Pending) {
        if (track.absentRun == 0 && track.presentSamples >= confirmSamples(kind)) {
            EngineTime due = track.onset + rule.raiseAfter;
            if (alert.clearedAt) {
                due = std::max(due, *alert.clearedAt + rule.cooldown);
            }
            consider(due);
        }
    }
    if (track.phase == Phase::Raised) {
        if (track.level == AlertLevel::Warning && track.absentRun == 0) {
            consider(track.onset + rule.criticalAfter);
        }
        // Only health clears by time alone; answer-based kinds clear on an observation.
        if (isHealthKind(kind) && track.absentSince && track.absentSamples >= 1) {
            consider(*track.absentSince + rule.clearAfter);
        }
    }
    if (v.holds) {
        if (!alert.raised && alert.clearedAt) {
            consider(*alert.clearedAt + rule.cooldown); // vision waits out the cooldown
        }
        if (v.level == AlertLevel::Warning) {
            consider(v.onset + rule.criticalAfter);
        }
    }
    return earliest;
}

bool AlertEngine::coolingDown(AlertKind kind, EngineTime t) const {
    const AlertState& alert = alerts_[alertIndex(kind)];
    return alert.clearedAt && t < *alert.clearedAt + rules_[kind].cooldown;
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

void AlertEngine::evaluate(AlertKind kind, EngineTime t, Observer observer,
                           std::vector<AlertEvent>& events) {
    Track& track = tracks_[alertIndex(kind)];
    VisionTrack& v = vision_[alertIndex(kind)];
    AlertState& alert = alerts_[alertIndex(kind)];
    const AlertRule& rule = rules_[kind];
    const int confirm = confirmSamples(kind);
    bool modelCleared = false;
    bool visionCleared = false;
    const auto forgetProofs = [&] {
        if (modelCleared) {
            track.absentSince.reset();
            track.absentSamples = 0;
        }
        if (visionCleared) {
            v.absentSince.reset();
        }
    };

    // The model's hysteresis: raise_after over confirmed observations, escalation,
    // clear_after over confirmed absent observations.
    if (track.phase == Phase::Pending) {
        const bool held = track.absentRun == 0;
        if (held && track.presentSamples >= confirm && t >= track.onset + rule.raiseAfter &&
            !coolingDown(kind, t)) {
            track.phase = Phase::Raised;
            track.level = AlertLevel::Warning;
            track.raisedAt = t;
        }
    }
    if (track.phase == Phase::Raised) {
        if (track.level == AlertLevel::Warning && track.absentRun == 0 &&
            t >= track.onset + rule.criticalAfter) {
            track.level = AlertLevel::Critical;
        }
        const bool mayClear = isHealthKind(kind) || observer == Observer::Model;
        if (mayClear && track.absentSince && track.absentSamples >= confirm &&
            t >= *track.absentSince + rule.clearAfter) {
            // The proof of absence is forgotten after the event has cited it.
            track.phase = Phase::Idle;
            track.level = AlertLevel::Cleared;
            track.presentSamples = 0;
            track.absentRun = 0;
            modelCleared = true;
        }
    }

    // The vision's: its conditions carry their own durations; escalation from the
    // condition's onset; clear_after of measured absence, judged at a vision frame.
    if (v.holds) {
        if (v.level == AlertLevel::Warning && t >= v.onset + rule.criticalAfter) {
            v.level = AlertLevel::Critical;
        }
        if (observer == Observer::Vision && v.absentSince &&
            t >= *v.absentSince + rule.clearAfter) {
            v.holds = false;
            v.level = AlertLevel::Cleared;
            visionCleared = true;
        }
    }

    // The alert: raised while either source holds it, cleared when neither does.
    const bool modelHolds = track.phase == Phase::Raised;
    const bool visionHolds = v.holds;
    if (!alert.raised) {
        if ((modelHolds || visionHolds) && !coolingDown(kind, t)) {
            alert.raised = true;
            alert.level = AlertLevel::Warning;
            alert.raisedAt = t;
            alert.source = holders(kind);
            events.push_back(makeEvent(AlertEvent::Type::Raised, kind, t, alert.source));
        }
    } else if (!modelHolds && !visionHolds) {
        // Cleared by the source(s) that held it until now.
        alert.raised = false;
        alert.level = AlertLevel::Cleared;
        alert.clearedAt = t;
        events.push_back(makeEvent(AlertEvent::Type::Cleared, kind, t, alert.source));
        forgetProofs();
        return;
    }
    forgetProofs();
    if (!alert.raised) {
        return;
    }
    alert.source = holders(kind);
    const bool modelCritical = modelHolds && track.level == AlertLevel::Critical;
    const bool visionCritical = visionHolds && v.level == AlertLevel::Critical;
    if (alert.level == AlertLevel::Warning && (modelCritical || visionCritical)) {
        alert.level = AlertLevel::Critical;
        const AlertSource by = modelCritical && visionCritical ? AlertSource::Both
                               : visionCritical                ? AlertSource::Vision
                                                               : alert.source;
        events.push_back(makeEvent(AlertEvent::Type::LevelChanged, kind, t, by));
    }
}

void AlertEngine::evaluateAll(EngineTime t, Observer observer, std::vector<AlertEvent>& events) {
    for (AlertKind kind : kAllAlertKinds) {
        evaluate(kind, t, observer, events);
    }
}

AlertSource AlertEngine::holders(AlertKind kind) const {
    if (isHealthKind(kind)) {
        return AlertSource::Health;
    }
    const bool model = tracks_[alertIndex(kind)].phase == Phase::Raised;
    const bool vision = vision_[alertIndex(kind)].holds;
    if (model && vision) {
        return AlertSource::Both;
    }
    return vision ? AlertSource::Vision : AlertSource::Model;
}

void AlertEngine::applyVision(AlertKind kind, Verdict verdict, double probability, EngineTime onset,
                              json::object evidence, EngineTime t) {
    VisionTrack& v = vision_[alertIndex(kind)];
    v.lastVerdict = verdict;
    v.lastEvidence = std::move(evidence);
    switch (verdict) {
    case Verdict::Present:
        if (!v.holds) {
            v.holds = true;
            v.level = AlertLevel::Warning;
            v.onset = std::min(onset, t);
        }
        v.confidence = unitInterval(probability);
        v.absentSince.reset();
        v.presentEvidence = v.lastEvidence;
        break;
    case Verdict::Absent:
        if (v.holds && !v.absentSince) {
            v.absentSince = t;
        }
        break;
    case Verdict::Unknown:
        // As for the model: an unmeasured frame never counts in the driver's favour.
        v.absentSince.reset();
        break;
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

AlertEvent AlertEngine::makeEvent(AlertEvent::Type type, AlertKind kind, EngineTime t,
                                  AlertSource source) const {
    const Track& track = tracks_[alertIndex(kind)];
    const VisionTrack& v = vision_[alertIndex(kind)];
    const AlertState& alert = alerts_[alertIndex(kind)];
    const bool cleared = type == AlertEvent::Type::Cleared;
    const bool fromModel = source != AlertSource::Vision;
    const bool fromVision = source == AlertSource::Vision || source == AlertSource::Both;
    AlertEvent event;
    event.type = type;
    event.kind = kind;
    event.level = alert.level;
    event.at = t;
    event.source = source;
    double confidence = 0.0;
    if (fromModel) {
        confidence = track.confidence;
        event.sequenceId = cleared ? track.lastSequence : track.presentSequence;
    }
    if (fromVision) {
        confidence = std::max(confidence, v.confidence);
    }
    event.confidence = unitInterval(confidence);

    // Raise and escalation cite the last observation that saw the condition; a clear
    // cites the last one, which saw it absent.
    json::object evidence;
    evidence["kind"] = alertKindName(kind);
    evidence["sequence_id"] = event.sequenceId;
    evidence["source"] = alertSourceName(source);
    if (fromModel) {
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
    } else {
        evidence["onset_ms"] = v.onset.count();
        evidence["held_ms"] = (t - v.onset).count();
        evidence["last_verdict"] = verdictName(v.lastVerdict);
        evidence["confidence"] = rounded(v.confidence);
        if (cleared && v.absentSince) {
            evidence["absent_ms"] = (t - *v.absentSince).count();
        }
    }
    if (fromModel) {
        for (const auto& entry : cleared ? track.lastEvidence : track.presentEvidence) {
            evidence[entry.key()] = entry.value();
        }
    }
    if (fromVision) {
        for (const auto& entry : cleared ? v.lastEvidence : v.presentEvidence) {
            evidence[entry.key()] = entry.value();
        }
    }
    event.evidence = std::move(evidence);
    return event;
}

} // namespace dmsd
