#include "notify/alert_dispatcher.h"

#include <algorithm>

namespace dmsd {

std::vector<double> alertPathBucketsSeconds() {
    return {0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1};
}

AlertDispatcher::AlertDispatcher(std::function<Clock::time_point()> now) : now_(std::move(now)) {
}

void AlertDispatcher::add(std::unique_ptr<AlertSink> sink) {
    if (sink->timing() == AlertSink::Timing::Immediate) {
        immediate_.push_back(std::move(sink));
    } else {
        deferred_.push_back(std::move(sink));
    }
}

void AlertDispatcher::dispatch(const std::vector<AlertEvent>& events, const AlertContext& context,
                               std::optional<Clock::time_point> answersAt) {
    if (events.empty()) {
        return;
    }
    // The vehicle first: the journal and snapshots can block on journald or wake
    // the snapshot thread on a busy two-core box, so they wait for the CAN frames
    // and D-Bus signals of the whole burst.
    for (const AlertEvent& event : events) {
        for (const auto& sink : immediate_) {
            sink->onAlert(event, context);
        }
        if (answersAt) {
            // The immediate sinks send synchronously: the frame and the signal have
            // been handed to the kernel (a frame for a congested CAN link is queued).
            const double us =
                std::chrono::duration<double, std::micro>(now_() - *answersAt).count();
            alertPath_.add(us);
            ++alertPathEvents_;
            alertPathMaxUs_ = std::max(alertPathMaxUs_, us);
            alertPathHistogram_.observe(us / 1e6);
        }
    }
    for (const auto& sink : immediate_) {
        sink->onBurstEnd(context);
    }
    for (const AlertEvent& event : events) {
        for (const auto& sink : deferred_) {
            sink->onAlert(event, context);
        }
    }
    for (const auto& sink : deferred_) {
        sink->onBurstEnd(context);
    }
}

AlertPathFigures AlertDispatcher::alertPath() const {
    return AlertPathFigures{alertPathEvents_, alertPath_.percentile(50), alertPath_.percentile(99),
                            alertPathMaxUs_};
}

} // namespace dmsd
