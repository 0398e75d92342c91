#pragma once

/// \file
/// Progress of `dmsd analyze` on stderr (docs/interfaces.md section 1): a live
/// one-line bar when stderr is a terminal, plain lines every few seconds
/// otherwise. Pure formatting; the analyzer samples the figures on its loop.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace dmsd::batch {

/// The figures shown.
struct ProgressFigures {
    std::size_t videosDone = 0;
    std::size_t videosFailed = 0;
    std::size_t videosTotal = 0;
    std::uint64_t windowsDone = 0; ///< sequences analysed plus static windows skipped
    double windowsEstimated = 0.0; ///< sum over videos of duration / interval
    std::size_t requestsInFlight = 0;
    double elapsedS = 0.0;
    std::optional<double> etaS; ///< unknown until some work is done
};

/// "0:42", "12:05", "1:02:03".
std::string formatClock(double seconds);

/// ETA from the fraction of windows done (nullopt before any is done).
std::optional<double> estimateEta(std::uint64_t done, double estimated, double elapsedS);

/// The terminal bar, at most \a columns wide (no control characters).
std::string formatBar(const ProgressFigures& figures, std::size_t columns);

/// One plain progress line (no newline).
std::string formatPlain(const ProgressFigures& figures);

} // namespace dmsd::batch
