#include "base/latency_window.h"

#include <algorithm>
#include <cmath>

namespace dmsd {

void LatencyWindow::add(double sample) {
    if (capacity_ == 0) {
        return;
    }
    if (samples_.size() < capacity_) {
        samples_.push_back(sample);
    } else {
        samples_[next_] = sample;
    }
    next_ = (next_ + 1) % capacity_;
}

double LatencyWindow::percentile(double p) const {
    if (samples_.empty()) {
        return 0.0;
    }
    std::vector<double> sorted = samples_;
    std::sort(sorted.begin(), sorted.end());
    const double rank = std::ceil(std::clamp(p, 0.0, 100.0) / 100.0 * double(sorted.size()));
    const std::size_t index = rank < 1.0 ? 0 : static_cast<std::size_t>(rank) - 1;
    return sorted[std::min(index, sorted.size() - 1)];
}

} // namespace dmsd
