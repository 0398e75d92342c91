#pragma once

/// \file
/// Prometheus metrics of `dmsd run` for node_exporter's textfile collector:
/// the counters, states and histograms of GetStatus as text exposition
/// (base/prometheus.h), composed on the daemon's loop every `metrics.interval`
/// (one consistent snapshot, tens of microseconds) and written atomically to
/// `metrics.textfile` by a writer thread of its own: a rename over the old
/// file can wait on the disk for tens of milliseconds on a busy box, which the
/// loop (and the alert path on it) must not (docs/performance.md). The file is
/// a few kilobytes, written without fsync (readers see the old or the new
/// file; a power cut may lose the latest, which the next interval rewrites).
/// The latest content wins: a write still waiting when the next is composed
/// is replaced. Failures are logged once per distinct error and counted; the
/// daemon goes on.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
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
    /// Finishes the write in progress and the one waiting, then joins the writer.
    ~MetricsExporter();
    MetricsExporter(const MetricsExporter&) = delete;
    MetricsExporter& operator=(const MetricsExporter&) = delete;

    /// (Re)starts with \a settings: writes at once, then every interval. An
    /// empty `textfile` stops.
    void start(const MetricsSettings& settings);
    /// Stops the timer and waits (at most \a flushTimeout) until the file
    /// holds the latest content composed; it stays as last written.
    void stop(std::chrono::milliseconds flushTimeout = std::chrono::seconds(2));
    /// Composes the content now, on the caller's thread, and hands it to the
    /// writer (at start; on a stop: the final state).
    void writeNow();

    /// Figures of the writes so far (thread-safe).
    MetricsWriterStats stats() const;
    bool enabled() const { return !settings_.textfile.empty(); }

private:
    struct Job {
        std::string path;
        std::string text;
    };

    void arm();
    void writerLoop();
    void write(const Job& job);

    std::function<std::string()> compose_;
    boost::asio::steady_timer timer_;
    MetricsSettings settings_; ///< the loop's; the writer gets the path in each Job

    mutable std::mutex mutex_;     ///< guards everything below but the thread
    std::condition_variable wake_; ///< a job or quit for the writer
    std::condition_variable idle_; ///< the writer finished everything handed to it
    std::optional<Job> pending_;
    bool busy_ = false;
    bool quit_ = false;
    MetricsWriterStats stats_;
    std::thread writer_; ///< started at the first write, joined by the destructor
};

} // namespace dmsd
