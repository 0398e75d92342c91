#include "notify/alert_sinks.h"

namespace dmsd {

void CanAlertSink::onAlert(const AlertEvent& event, const AlertContext& context) {
    if (can_) {
        can_->onAlertEvent(event, context.active, context.face);
    }
}

void DbusAlertSink::onAlert(const AlertEvent& event, const AlertContext& context) {
    if (dbus_) {
        dbus_->emitAlert(event, context.realtimeUs);
    }
}

void DbusAlertSink::onBurstEnd(const AlertContext& context) {
    if (dbus_) {
        dbus_->setActiveAlerts(context.active);
    }
}

void JournalAlertSink::onAlert(const AlertEvent& event, const AlertContext& context) {
    AlertLogContext log;
    log.configVersion = context.configVersion;
    log.latency = context.latency;
    journal_.alert(event, log);
}

void SnapshotAlertSink::onAlert(const AlertEvent& event, const AlertContext& context) {
    if (event.type != AlertEvent::Type::Raised || !snapshots_) {
        return;
    }
    SnapshotRequest request;
    request.event = event;
    request.configVersion = std::string(context.configVersion);
    if (event.source == AlertSource::Vision) {
        // Decided on single frames, not on a model sequence: vision's own frames.
        request.sequence = context.visionFrames;
    } else if (context.decidingSequence) {
        if (std::optional<DecidingSequence> deciding = context.decidingSequence(event.sequenceId)) {
            request.sequence = std::move(deciding->sequence);
            request.analyses = std::move(deciding->answers);
        }
    }
    snapshots_->submit(std::move(request));
}

} // namespace dmsd
