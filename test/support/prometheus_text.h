#pragma once

/// \file
/// A checker of the Prometheus text exposition format (0.0.4) for tests, the
/// rules promtool's `check metrics` enforces that matter here: metric and label
/// names, one HELP and TYPE per family before its samples, no duplicate
/// sample, values that parse, counters ending in `_total`, histograms with
/// increasing `le` bounds, non-decreasing cumulative buckets, a `+Inf` bucket
/// equal to `_count`, and `_sum`. Also where promtool is: tests use both.

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd::test {

struct PromSample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct PromText {
    std::vector<PromSample> samples;
    std::map<std::string, std::string> types; ///< family -> counter, gauge, histogram
    std::vector<std::string> errors;          ///< empty when the text is valid

    /// The value of sample \a name with exactly \a labels, if present.
    std::optional<double> value(const std::string& name,
                                const std::map<std::string, std::string>& labels = {}) const;
};

PromText parsePromText(std::string_view text);

/// Path of promtool (Debian's `prometheus` package), empty when not installed.
std::string promtoolPath();

} // namespace dmsd::test
