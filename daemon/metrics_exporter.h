#pragma once

/// \file
/// Prometheus metrics of `dmsd run` for node_exporter's textfile collector:
/// the counters, states and histograms of GetStatus as text exposition
/// (base/prometheus.h), written atomically to `metrics.textfile` every
/// `metrics.interval` from the daemon's loop. The file is a few kilobytes and
/// is written without fsync (readers see the old or the new file; a power cut
/// may lose the latest, which the next interval rewrites), so the write does
/// not hold up the loop (docs/performance.md). Failures are logged once per
/// distinct error and counted; the daemon goes on.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "base/prometheus.h"
#include "daemon/status_reporter.h"

namespace dmsd {

/// Upper bounds, in seconds, of `dmsd_sequence_latency_seconds` (capture of a
/// sequence's last frame to its last answer): 100 ms to 30 s, the range of
/// vision models on in-car hardware up to the 20 s default request timeout.
std::vector<double> sequenceLatencyBucketsSeconds();

/// The metrics file's content for \a status (docs/operations.md lists every
/// metric). \a sequenceLatency and \a alertPath are cumulative since start.
std::string metricsText(const StatusSnapshot& status, const Histogram& sequenceLatency,
                        const Histogram& alertPath);

class MetricsExporter {
public:
    /// \a compose returns the file's content (metricsText of the daemon's status).
    MetricsExporter(boost::asio::io_context& io, std::function<std::string()> compose);

    /// (Re)starts with \a settings: writes at once, then every interval. An
    /// empty `textfile` stops.
    void start(const MetricsSettings& settings);
    /// Stops the timer; the file stays as last written.
    void stop();
    /// Composes and writes the file now (at start, on a stop: the final state).
    void writeNow();

    const MetricsWriterStats& stats() const { return stats_; }
    bool enabled() const { return !settings_.textfile.empty(); }

private:
    void arm();

    std::function<std::string()> compose_;
    boost::asio::steady_timer timer_;
    MetricsSettings settings_;
    MetricsWriterStats stats_;
};

} // namespace dmsd
