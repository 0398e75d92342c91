#pragma once

/// \file
/// Alert intervals from a video's alert decisions: raised -> (level changes)
/// -> cleared, with the peak level and the levels step by step; an alert
/// still raised when the video ends lasts to its end. Totals per video and
/// across the fleet. Pure.

#include <map>
#include <string>
#include <vector>

#include "report/trip_log.h"

namespace dmsd::report {

struct EvidenceSnapshot; // report/evidence.h

/// One alert from its raise to its clear.
struct AlertInterval {
    std::string video;
    std::string kind;
    std::string peakLevel; ///< the highest level reached (info < warning < critical)
    double startS = 0.0;
    double endS = 0.0;
    bool openAtEnd = false; ///< never cleared: ends where the video does
    std::string source;     ///< of the raise
    double peakConfidence = 0.0;
    /// The level from each time on: (t, level), starting at startS.
    std::vector<std::pair<double, std::string>> levels;
    /// The frames that raised it, when `--evidence` gave them (attachEvidence()).
    const EvidenceSnapshot* evidence = nullptr;

    double durationS() const { return endS - startS; }
};

/// Per kind: how many intervals, how long in all, the highest level.
struct KindTotals {
    std::size_t intervals = 0;
    double totalS = 0.0;
    std::string peakLevel;
    std::size_t videos = 0; ///< fleet totals: videos with at least one interval
};

/// A video's intervals and totals.
struct VideoReport {
    const VideoLog* log = nullptr;
    std::vector<AlertInterval> intervals; ///< by start time
    std::map<std::string, KindTotals> totals;
    double durationS = 0.0; ///< the summary's, else the end of the last sequence or alert
};

/// Every video's report and the fleet's totals.
struct FleetReport {
    std::vector<VideoReport> videos;
    std::map<std::string, KindTotals> totals;
    double durationS = 0.0;            ///< video time in all
    std::vector<std::string> problems; ///< from reading, and decisions out of order
    std::vector<std::string> notes;    ///< what the reader should know (frames left out)
};

/// Ranks "info" < "warning" < "critical" (anything else lowest).
int levelRank(const std::string& level);

/// Pairs the decisions of one video into intervals. A clear or level change
/// without a raise, or a second raise, is a problem (appended to \a problems).
VideoReport videoReport(const VideoLog& log, std::vector<std::string>& problems);

/// All videos of \a log; \a log must outlive the result.
FleetReport fleetReport(const TripLog& log);

} // namespace dmsd::report
