#pragma once

/// \file
/// The decision engine: turns analysed sequences, skipped static windows and
/// camera/analyzer health into alert transitions (docs/interfaces.md section 3) with the
/// contract's hysteresis (raise_after, critical_after, clear_after, cooldown).
///
/// Pure logic: no I/O, no clock, no threads. Time is passed in as EngineTime on a
/// monotonic axis chosen by the caller (steady clock in `run`, video time in
/// `analyze`); an earlier time than one already seen is treated as the latest one.
/// Not thread-safe: call it from one thread (the daemon's asio loop).
///
/// Every input returns the transitions it caused, in time order. Transitions that
/// become due with the passage of time alone (raise, escalation, health clears) are
/// produced by the next call of any input, stamped with the time they became due;
/// `nextDeadline()` says when to call `tick()` so that they come out on time.
/// The full rules, with timelines, are in docs/alerts.md.
///
/// Two sources of evidence: the model's answers (observe(), carryForward()) and the
/// per-frame vision (observeVision()). Each source has its own hysteresis per kind
/// and holds the kind's alert or not; the alert is raised while either holds it and
/// clears when neither does, so one source never clears (or vetoes) the other's
/// alert. Events name the source that decided them (AlertSource).

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include <boost/json/object.hpp>

#include "alerts/alert_conditions.h"
#include "alerts/alert_types.h"
#include "alerts/settings.h"
#include "alerts/vision_evidence.h"
#include "llm/analyses/face_state.h"
#include "llm/answers.h"

namespace dmsd {

/// Engine tuning beyond the per-kind rules of `alerts:` (docs/alerts.md).
struct AlertTuning {
    /// Answers whose confidence is below this count as unknown.
    double confidenceFloor = 0.5;
    /// Observation-based kinds: the number of present observations needed before a
    /// raise, of consecutive absent ones that end a not-yet-raised episode, and of
    /// absent ones (spanning clear_after) before a clear. At least 1. The default 2
    /// is what keeps a single outlier from raising, clearing or resetting anything.
    int confirmSamples = 2;
    /// Weight of the newest observation in the alert's running confidence (0..1].
    double confidenceSmoothing = 0.5;
};

/// Alert decision engine; one instance per monitored driver seat.
class AlertEngine {
public:
    explicit AlertEngine(const AlertsSettings& settings, AlertTuning tuning = {});

    /// Replaces the per-kind rules (configuration reload). Alert state is kept: active
    /// alerts stay active, running episodes and cooldowns continue and are judged by
    /// the new thresholds from the next call on.
    void updateRules(const AlertsSettings& settings);
    /// Replaces the tuning; alert state is kept as by updateRules().
    void updateTuning(const AlertTuning& tuning);
    const AlertsSettings& rules() const { return rules_; }
    const AlertTuning& tuning() const { return tuning_; }

    /// One analysed sequence whose answers became known at `t`. Feeds the six
    /// answer-based kinds and, from the answers' success or failure, ANALYZER_FAULT.
    std::vector<AlertEvent> observe(EngineTime t, std::uint64_t sequenceId,
                                    const SequenceAnswers& answers);

    /// A static window skipped at `t`: the last analysed sequence's reading is
    /// observed again (docs/interfaces.md section 2, Sampling). `sequenceId` 0 keeps the id of
    /// the sequence whose answers are carried. Does nothing before the first observe().
    std::vector<AlertEvent> carryForward(EngineTime t, std::uint64_t sequenceId = 0);

    /// Camera health at `t`: false while no frames arrive (CAMERA_FAULT). Report every
    /// change; repeating a report is harmless.
    std::vector<AlertEvent> observeCamera(EngineTime t, bool ok);

    /// Explicit model-server health at `t` (ANALYZER_FAULT), e.g. from a failed
    /// connection or version probe. A failing report stays in force until an ok report
    /// or a sequence with at least one answer; see docs/alerts.md for how it combines
    /// with the failures seen in observe().
    std::vector<AlertEvent> observeAnalyzer(EngineTime t, bool ok);

    /// One frame of the per-frame vision at `t`. Feeds DROWSINESS (eyes closed long,
    /// PERCLOS high, yawning often), DISTRACTION (head off the road long) and
    /// DRIVER_NOT_VISIBLE (no face long); the vision's conditions carry their own
    /// durations, so a present condition holds the alert at once (no raise_after,
    /// no confirmation count). Vision's hold ends after the condition has been
    /// measured absent for the kind's clear_after.
    std::vector<AlertEvent> observeVision(EngineTime t, const VisionEvidence& vision);

    /// The vision stopped at `t` (failed, or disabled by a reload): its holds end,
    /// so alerts only vision held clear; the model's are untouched.
    std::vector<AlertEvent> visionStopped(EngineTime t);

    /// Produces the transitions due by `t` with no new input.
    std::vector<AlertEvent> tick(EngineTime t);

    /// The earliest time at which tick() would produce a transition, if any is
    /// scheduled by the current state (may be <= now() after updateRules()).
    std::optional<EngineTime> nextDeadline() const;

    /// Alerts currently raised, in kind order.
    std::vector<ActiveAlert> activeAlerts() const;
    /// Bitmask (alertBit) of the alerts currently raised.
    std::uint16_t activeMask() const;
    /// Face state of the last analysed (or carried) sequence; Unknown if none, or if
    /// that sequence's face_state failed, was below the confidence floor, or the scene
    /// showed no driver.
    FaceState driverState() const { return driverState_; }
    /// The latest time the engine has seen.
    EngineTime now() const { return now_; }

private:
    enum class Phase : std::uint8_t { Idle, Pending, Raised };
    /// Which source's observation a call carries: only that source may clear.
    enum class Observer : std::uint8_t { None, Model, Vision };

    /// The model's (or health's) hysteresis state of one kind; phase Raised means
    /// the model holds the kind's alert.
    struct Track {
        Phase phase = Phase::Idle;
        AlertLevel level = AlertLevel::Cleared;
        EngineTime onset{0};    ///< first present observation of the episode
        EngineTime raisedAt{0}; ///< time of the Raised transition
        int presentSamples = 0; ///< present observations in the episode
        int absentRun = 0;      ///< consecutive absent observations (unknown skipped)
        std::optional<EngineTime> absentSince; ///< start of the current proof of absence
        int absentSamples = 0;                 ///< absent observations since absentSince
        double confidence = 0.0;               ///< running probability of the condition
        Verdict lastVerdict = Verdict::Unknown;
        std::uint64_t presentSequence = 0; ///< sequence of the last present observation
        std::uint64_t lastSequence = 0;
        bool presentCarried = false;
        bool lastCarried = false;
        boost::json::object presentEvidence; ///< evidence of the last present observation
        boost::json::object lastEvidence;    ///< evidence of the last observation
    };

    /// The vision's state of one kind.
    struct VisionTrack {
        bool holds = false;  ///< vision holds the kind's alert
        EngineTime onset{0}; ///< when the held condition began (measured by vision)
        AlertLevel level = AlertLevel::Cleared;
        std::optional<EngineTime> absentSince; ///< start of the current proof of absence
        double confidence = 0.0;
        Verdict lastVerdict = Verdict::Unknown;
        boost::json::object presentEvidence;
        boost::json::object lastEvidence;
    };

    /// The kind's alert as the notifiers see it.
    struct AlertState {
        bool raised = false;
        AlertLevel level = AlertLevel::Cleared;
        EngineTime raisedAt{0};
        std::optional<EngineTime> clearedAt; ///< last Cleared transition (cooldown)
        AlertSource source = AlertSource::Model;
    };

    struct Sample {
        Verdict verdict = Verdict::Unknown;
        double probability = 0.0;
        const boost::json::object* evidence = nullptr;
        std::uint64_t sequenceId = 0;
        bool carried = false;
    };

    static bool isHealthKind(AlertKind kind);
    int confirmSamples(AlertKind kind) const;

    void advanceTo(EngineTime t, std::vector<AlertEvent>& events);
    std::optional<EngineTime> deadline(AlertKind kind) const;
    void apply(AlertKind kind, const Sample& sample, EngineTime t);
    void applyVision(AlertKind kind, Verdict verdict, double probability, EngineTime onset,
                     boost::json::object evidence, EngineTime t);
    bool coolingDown(AlertKind kind, EngineTime t) const;
    void evaluate(AlertKind kind, EngineTime t, Observer observer, std::vector<AlertEvent>& events);
    void evaluateAll(EngineTime t, Observer observer, std::vector<AlertEvent>& events);
    void applyReading(const SequenceReading& reading, std::uint64_t sequenceId, bool carried,
                      EngineTime t);
    void applyAnalyzer(EngineTime t, std::uint64_t sequenceId);
    AlertSource holders(AlertKind kind) const;
    AlertEvent makeEvent(AlertEvent::Type type, AlertKind kind, EngineTime t,
                         AlertSource source) const;

    AlertsSettings rules_;
    AlertTuning tuning_;
    std::array<Track, kAlertKindCount> tracks_{};
    std::array<VisionTrack, kAlertKindCount> vision_{};
    std::array<AlertState, kAlertKindCount> alerts_{};
    EngineTime now_{0};

    std::optional<SequenceReading> lastReading_;
    std::uint64_t lastSequenceId_ = 0;
    FaceState driverState_ = FaceState::Unknown;

    std::optional<bool> analyzerReportedOk_; ///< last explicit report (a success overrides false)
    std::optional<bool> analyzerSequenceOk_; ///< derived from the last sequence's outcomes
    boost::json::object analyzerErrors_;
};

} // namespace dmsd
