#pragma once

/// \file
/// The AlertSinks of dmsd's notifiers. CAN and D-Bus are vehicle-facing
/// (immediate); the journal and snapshots deferred. The CAN, D-Bus and
/// snapshot sinks follow a notifier that the daemon recreates on reload: they
/// hold the daemon's owning pointer and do nothing while it is empty (the
/// notifier disabled or not started).

#include <memory>

#include "notify/alert_sink.h"
#include "notify/can_notifier.h"
#include "notify/dbus_service.h"
#include "notify/journal.h"
#include "notify/snapshots.h"

namespace dmsd {

/// The alert frame of each event (docs/interfaces.md section 5).
class CanAlertSink final : public AlertSink {
public:
    explicit CanAlertSink(const std::unique_ptr<CanNotifier>& can) : can_(can) {}
    Timing timing() const override { return Timing::Immediate; }
    void onAlert(const AlertEvent& event, const AlertContext& context) override;

private:
    const std::unique_ptr<CanNotifier>& can_;
};

/// AlertRaised/AlertCleared of each event, then ActiveAlerts once per burst.
class DbusAlertSink final : public AlertSink {
public:
    explicit DbusAlertSink(const std::unique_ptr<DbusService>& dbus) : dbus_(dbus) {}
    Timing timing() const override { return Timing::Immediate; }
    void onAlert(const AlertEvent& event, const AlertContext& context) override;
    void onBurstEnd(const AlertContext& context) override;

private:
    const std::unique_ptr<DbusService>& dbus_;
};

/// The alert journal entry of each event (Journal::alert).
class JournalAlertSink final : public AlertSink {
public:
    explicit JournalAlertSink(Journal& journal) : journal_(journal) {}
    Timing timing() const override { return Timing::Deferred; }
    void onAlert(const AlertEvent& event, const AlertContext& context) override;

private:
    Journal& journal_;
};

/// An evidence snapshot of each raised alert: its deciding sequence's frames
/// and answers, when still known.
class SnapshotAlertSink final : public AlertSink {
public:
    explicit SnapshotAlertSink(const std::unique_ptr<SnapshotWriter>& snapshots)
        : snapshots_(snapshots) {}
    Timing timing() const override { return Timing::Deferred; }
    void onAlert(const AlertEvent& event, const AlertContext& context) override;

private:
    const std::unique_ptr<SnapshotWriter>& snapshots_;
};

} // namespace dmsd
