#include "base/prometheus.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

#include <fmt/format.h>

namespace dmsd {

std::optional<std::string> textfileProblem(std::string_view path) {
    if (path.empty()) {
        return std::nullopt;
    }
    if (path.front() != '/') {
        return fmt::format("\"{}\" is not an absolute path", path);
    }
    if (!path.ends_with(".prom") || path.ends_with("/.prom")) {
        return fmt::format("\"{}\" does not end in .prom (node_exporter's textfile collector "
                           "reads only *.prom files)",
                           path);
    }
    return std::nullopt;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {
}

void Histogram::observe(double value) {
    // Buckets are "le": a value equal to a bound belongs to that bound's bucket.
    const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), value);
    ++buckets_[static_cast<std::size_t>(it - bounds_.begin())];
    ++count_;
    sum_ += value;
}

std::vector<std::uint64_t> Histogram::cumulative() const {
    std::vector<std::uint64_t> out(buckets_.size());
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
        running += buckets_[i];
        out[i] = running;
    }
    return out;
}

std::string formatMetricValue(double value) {
    if (std::isnan(value)) {
        return "NaN";
    }
    if (std::isinf(value)) {
        return value > 0 ? "+Inf" : "-Inf";
    }
    // Plain decimals, as everywhere dmsd writes numbers: the shortest fixed
    // notation that reads back as the same double ("0.25", "812", never 1e-05).
    std::array<char, 400> buffer{};
    const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value,
                                      std::chars_format::fixed);
    return std::string(buffer.data(), result.ptr);
}

namespace {

// Label values escape backslash, double quote and newline; HELP text escapes
// backslash and newline (text exposition format 0.0.4).
std::string escape(std::string_view text, bool quotes) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '\\') {
            out += "\\\\";
        } else if (c == '\n') {
            out += "\\n";
        } else if (quotes && c == '"') {
            out += "\\\"";
        } else {
            out += c;
        }
    }
    return out;
}

} // namespace

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escape(help, false), name, type);
}

void Exposition::sample(std::string_view name, const std::vector<MetricLabel>& labels,
                        double value) {
    text_ += name;
    if (!labels.empty()) {
        text_ += '{';
        bool first = true;
        for (const auto& [label, labelValue] : labels) {
            text_ += fmt::format("{}{}=\"{}\"", first ? "" : ",", label, escape(labelValue, true));
            first = false;
        }
        text_ += '}';
    }
    text_ += ' ';
    text_ += formatMetricValue(value);
    text_ += '\n';
}

void Exposition::counter(std::string_view name, std::string_view help, double value) {
    family(name, "counter", help);
    sample(name, {}, value);
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
    family(name, "gauge", help);
    sample(name, {}, value);
}

void Exposition::histogram(std::string_view name, std::string_view help,
                           const Histogram& histogram) {
    family(name, "histogram", help);
    const std::vector<std::uint64_t> counts = histogram.cumulative();
    const std::string bucket = std::string(name) + "_bucket";
    for (std::size_t i = 0; i < histogram.bounds().size(); ++i) {
        sample(bucket, {{"le", formatMetricValue(histogram.bounds()[i])}},
               static_cast<double>(counts[i]));
    }
    sample(bucket, {{"le", "+Inf"}}, static_cast<double>(counts.back()));
    sample(std::string(name) + "_sum", {}, histogram.sum());
    sample(std::string(name) + "_count", {}, static_cast<double>(histogram.count()));
}

} // namespace dmsd
