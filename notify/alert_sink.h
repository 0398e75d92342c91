#pragma once

/// \file
/// What every notifier implements to receive alert transitions: an AlertSink
/// gets each event of a burst with the one AlertContext of that burst.
/// Sinks are vehicle-facing (Immediate: the CAN frame, the D-Bus signal) or
/// Deferred (journal entries, snapshots, anything that may block or wake a
/// thread); the AlertDispatcher (notify/alert_dispatcher.h) calls every
/// immediate sink for every event before any deferred one.
///
/// Adding a notifier: one class implementing AlertSink, one line registering
/// it with the dispatcher (daemon/daemon.cpp).

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "alerts/alert_types.h"
#include "llm/analyses/face_state.h"
#include "llm/answers.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// The sequence whose answers decided an event, as snapshots keep it.
struct DecidingSequence {
    EncodedSequencePtr sequence;
    boost::json::object answers; ///< answersJson() of its answers
};

/// Everything a sink may need beyond the event, the same for every event of a burst.
struct AlertContext {
    /// Alerts raised after the whole burst (the CAN frame's active mask, the
    /// D-Bus ActiveAlerts property).
    std::vector<ActiveAlert> active;
    /// Last face state of the driver.
    FaceState face = FaceState::Unknown;
    /// Version of the configuration in force.
    std::string_view configVersion;
    /// From the capture of the deciding sequence's last frame to the decision,
    /// when the burst came from answers.
    std::optional<std::chrono::milliseconds> latency;
    /// CLOCK_REALTIME microseconds of the burst (D-Bus timestamps).
    std::uint64_t realtimeUs = 0;
    /// The deciding sequence of an event by its sequenceId, with its answers as
    /// JSON, while it is still among the recent ones; nullopt otherwise.
    /// Unset: never known. Called only by sinks that need it (snapshots).
    std::function<std::optional<DecidingSequence>(std::uint64_t sequenceId)> decidingSequence;
    /// For alerts raised by the vision alone: the frames vision decided on
    /// (the last onset and the deciding frame, vision/evidence_frames.h);
    /// null when it kept none.
    EncodedSequencePtr visionFrames;
};

/// One notifier, as the dispatcher sees it. Called on the daemon's loop thread.
class AlertSink {
public:
    enum class Timing {
        Immediate, ///< vehicle-facing: before the alert path is stamped
        Deferred,  ///< after every immediate sink has had every event
    };

    virtual ~AlertSink() = default;

    virtual Timing timing() const = 0;
    /// One transition of the burst. Must not throw; errors are the sink's to report.
    virtual void onAlert(const AlertEvent& event, const AlertContext& context) = 0;
    /// After the sink has had every event of the burst (D-Bus: ActiveAlerts).
    virtual void onBurstEnd(const AlertContext& /*context*/) {}
};

} // namespace dmsd
