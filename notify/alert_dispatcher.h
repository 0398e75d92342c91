#pragma once

/// \file
/// Hands a burst of alert transitions to every registered AlertSink, the
/// vehicle first: every event goes to every immediate sink (CAN frame, D-Bus
/// signal) before any deferred sink (journal, snapshots) sees the first one.
/// When the burst came from answers, the alert path (answers complete ->
/// the event handed to every immediate sink) is measured per event, for
/// GetStatus `alert_path_us`.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "base/latency_window.h"
#include "base/prometheus.h"
#include "notify/alert_sink.h"

namespace dmsd {

/// The alert path figures of GetStatus `alert_path_us`.
struct AlertPathFigures {
    std::uint64_t events = 0; ///< events timed since start
    double p50 = 0;           ///< µs, over the last 1024 events
    double p99 = 0;
    double max = 0; ///< µs, since start
};

/// Upper bounds, in seconds, of the alert-path histogram (metrics
/// `dmsd_alert_path_seconds`): 100 µs to 100 ms, with 2 ms (the bound
/// docs/performance.md holds the path to) as an edge.
std::vector<double> alertPathBucketsSeconds();

class AlertDispatcher {
public:
    using Clock = std::chrono::steady_clock;
    /// \a now is the clock of the alert path (tests inject one).
    explicit AlertDispatcher(std::function<Clock::time_point()> now = Clock::now);

    /// Registers \a sink; sinks of the same timing are called in registration order.
    void add(std::unique_ptr<AlertSink> sink);

    /// Sends \a events (nothing when empty). \a answersAt: when the answers that
    /// caused them were complete; given, each event's alert path is stamped
    /// right after the immediate sinks had it.
    void dispatch(const std::vector<AlertEvent>& events, const AlertContext& context,
                  std::optional<Clock::time_point> answersAt = std::nullopt);

    AlertPathFigures alertPath() const;
    /// Every timed event since start, in seconds (alertPathBucketsSeconds()).
    const Histogram& alertPathHistogram() const { return alertPathHistogram_; }

private:
    std::function<Clock::time_point()> now_;
    std::vector<std::unique_ptr<AlertSink>> immediate_;
    std::vector<std::unique_ptr<AlertSink>> deferred_;
    LatencyWindow alertPath_{1024};
    std::uint64_t alertPathEvents_ = 0;
    double alertPathMaxUs_ = 0;
    Histogram alertPathHistogram_{alertPathBucketsSeconds()};
};

} // namespace dmsd
