// Cost of the Prometheus metrics file: on the daemon's event loop, composing
// the exposition (metricsText of a status with every family filled and both
// histograms populated) and handing it to the writer thread, as
// MetricsExporter::writeNow does every `metrics.interval`; on the writer
// thread, the atomic write without fsync. Prints figures; no pass/fail.
// Usage: bench_metrics [writes] [directory]
// (the directory defaults to a fresh one under $TMPDIR or /tmp).

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "base/atomic_file.h"
#include "base/prometheus.h"
#include "daemon/metrics_exporter.h"
#include "notify/alert_dispatcher.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
    std::vector<double> us;
    void add(Clock::duration d) {
        us.push_back(std::chrono::duration<double, std::micro>(d).count());
    }
    void print(const char* what) {
        std::sort(us.begin(), us.end());
        auto at = [&](double q) {
            return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))];
        };
        std::printf("%-40s n=%-6zu p50=%8.1f us  p99=%8.1f us  max=%8.1f us\n", what, us.size(),
                    at(0.50), at(0.99), us.back());
    }
};

} // namespace

int main(int argc, char** argv) {
    const int writes = argc > 1 ? std::atoi(argv[1]) : 2000;
    test::TempDir temp("dmsd-bench-metrics");
    const std::filesystem::path dir = argc > 2 ? std::filesystem::path(argv[2]) : temp.path();
    const std::filesystem::path file = dir / "dmsd.prom";

    // A status as after hours of running: large counters, two active alerts,
    // CAN and snapshots on (every family of docs/operations.md present).
    Config config;
    config.version = "fleet-2026-12-01";
    StatusSnapshot status;
    status.config = &config;
    status.health.state = ServiceState::Degraded;
    status.health.camera = CameraState::Streaming;
    status.health.modelOk = true;
    status.active = {{AlertKind::Drowsiness, AlertLevel::Critical, 0.93, EngineTime{0}},
                     {AlertKind::PhoneUse, AlertLevel::Warning, 0.81, EngineTime{0}}};
    status.capture.framesCaptured = 1'080'000;
    status.capture.framesDropped = 312;
    status.frames.framesEncoded = 143'000;
    status.sequences.analysed = 35'900;
    status.sequences.skippedStatic = 12'100;
    status.llm.requests = 143'600;
    status.llm.cacheHits = 4'210;
    status.can = CanStatus{};
    status.can->framesSent = 360'000;
    status.snapshots = SnapshotStats{};
    status.snapshots->written = 420;

    Histogram latency(sequenceLatencyBucketsSeconds());
    Histogram alertPath(alertPathBucketsSeconds());
    for (int i = 0; i < 36'000; ++i) {
        latency.observe(0.3 + (i % 97) * 0.05);
        alertPath.observe(0.0002 + (i % 13) * 0.0001);
    }

    Figures compose;
    Figures write;
    std::size_t bytes = 0;
    for (int i = 0; i < writes; ++i) {
        const auto begin = Clock::now();
        const std::string text = metricsText(status, latency, alertPath);
        const auto composed = Clock::now();
        const std::error_code error =
            writeFileAtomically(file, text, AtomicWrite{0644, Durability::Atomic, true});
        const auto end = Clock::now();
        if (error) {
            std::fprintf(stderr, "bench_metrics: %s: %s\n", file.c_str(), error.message().c_str());
            return 1;
        }
        bytes = text.size();
        compose.add(composed - begin);
        write.add(end - composed);
        ++status.capture.framesCaptured;
    }

    // What the loop pays per interval: MetricsExporter::writeNow (compose and
    // hand-off), with the writer thread writing meanwhile.
    Figures loop;
    {
        boost::asio::io_context io;
        MetricsExporter exporter(io, [&] { return metricsText(status, latency, alertPath); });
        MetricsSettings settings;
        settings.textfile = (dir / "exporter.prom").string();
        settings.interval = std::chrono::hours(1); // the timer stays out of the way
        exporter.start(settings);
        for (int i = 0; i < writes; ++i) {
            const auto begin = Clock::now();
            exporter.writeNow();
            loop.add(Clock::now() - begin);
            ++status.capture.framesCaptured;
        }
        exporter.stop();
        const MetricsWriterStats stats = exporter.stats();
        std::printf("exporter: %llu files written by its thread (the latest content wins), "
                    "%llu failed\n",
                    static_cast<unsigned long long>(stats.written),
                    static_cast<unsigned long long>(stats.failed));
    }

    std::printf("metrics file %s: %zu bytes, %d writes (%s)\n", file.c_str(), bytes, writes,
                DMSD_BUILD_TYPE);
    compose.print("compose (metricsText)");
    write.print("write (temporary file, rename, no fsync)");
    loop.print("writeNow on the loop (compose + hand-off)");
    return 0;
}
