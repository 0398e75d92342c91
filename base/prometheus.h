#pragma once

/// \file
/// Prometheus metrics in the text exposition format (version 0.0.4), for
/// node_exporter's textfile collector: the `metrics:` settings, a cumulative
/// histogram, and a writer of metric families (`# HELP`, `# TYPE`, samples
/// with escaped labels, numbers as plain decimals). What the daemon exports
/// is composed in daemon/metrics_exporter.h.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/duration.h"
#include "base/keys.h"

namespace dmsd {

/// Problem with `metrics.textfile`: empty (off) or an absolute path whose
/// name ends in `.prom` (the collector reads only those).
std::optional<std::string> textfileProblem(std::string_view path);

/// `metrics:` of the configuration (docs/configuration.md).
struct MetricsSettings {
    /// node_exporter textfile-collector file; empty: no metrics are written.
    std::string textfile;
    /// How often the file is rewritten.
    Millis interval{10000};

    friend bool operator==(const MetricsSettings&, const MetricsSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.text("textfile", s.textfile,
               "empty (off) or an absolute path ending in .prom, e.g. "
               "/var/lib/prometheus/node-exporter/dmsd.prom",
               textfileProblem, true);
        k.duration("interval", s.interval, 1s, 1h);
    }
};

/// A cumulative histogram over fixed upper bounds (Prometheus `le`), plus
/// the `+Inf` bucket, the sum and the count. Not thread-safe.
class Histogram {
public:
    /// \a bounds: increasing upper bounds.
    explicit Histogram(std::vector<double> bounds);

    void observe(double value);

    const std::vector<double>& bounds() const { return bounds_; }
    /// Observations at or below each bound (cumulative), then the total (+Inf).
    std::vector<std::uint64_t> cumulative() const;
    std::uint64_t count() const { return count_; }
    double sum() const { return sum_; }

private:
    std::vector<double> bounds_;
    std::vector<std::uint64_t> buckets_; ///< per bound, not cumulative; last: above every bound
    std::uint64_t count_ = 0;
    double sum_ = 0;
};

/// One label of a sample: name, value (escaped when written).
using MetricLabel = std::pair<std::string_view, std::string>;

/// Writes metric families in the text exposition format. Each family is
/// declared once (HELP, TYPE) and its samples follow it.
class Exposition {
public:
    void counter(std::string_view name, std::string_view help, double value);
    void gauge(std::string_view name, std::string_view help, double value);

    /// Starts a family of several samples (\a type "counter" or "gauge").
    void family(std::string_view name, std::string_view type, std::string_view help);
    /// One sample of the current family.
    void sample(std::string_view name, const std::vector<MetricLabel>& labels, double value);

    void histogram(std::string_view name, std::string_view help, const Histogram& histogram);

    const std::string& text() const { return text_; }

private:
    std::string text_;
};

/// A sample value: integers without a fraction, other numbers as the
/// shortest plain decimal that reads back the same, `+Inf`, `-Inf`, `NaN`.
std::string formatMetricValue(double value);

} // namespace dmsd
