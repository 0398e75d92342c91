#pragma once

/// \file
/// Percentiles of the last N samples of a latency (or any figure): what
/// GetStatus reports for sequences, requests and the alert path.

#include <cstddef>
#include <vector>

namespace dmsd {

/// Sliding window of the last N samples with nearest-rank percentiles.
class LatencyWindow {
public:
    LatencyWindow() : LatencyWindow(1024) {}
    explicit LatencyWindow(std::size_t capacity) : capacity_(capacity) {}
    void add(double sample);
    /// \a p in 0..100; 0 when empty.
    double percentile(double p) const;
    std::size_t size() const { return samples_.size(); }

private:
    std::size_t capacity_;
    std::size_t next_ = 0;
    std::vector<double> samples_;
};

} // namespace dmsd
