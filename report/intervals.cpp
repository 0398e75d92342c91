#include "report/intervals.h"

#include <algorithm>

#include <fmt/format.h>

namespace dmsd::report {

int levelRank(const std::string& level) {
    if (level == "critical") {
        return 3;
    }
    if (level == "warning") {
        return 2;
    }
    if (level == "info") {
        return 1;
    }
    return 0;
}

namespace {

void addTo(KindTotals& totals, const AlertInterval& interval) {
    ++totals.intervals;
    totals.totalS += interval.durationS();
    if (levelRank(interval.peakLevel) > levelRank(totals.peakLevel)) {
        totals.peakLevel = interval.peakLevel;
    }
}

} // namespace

VideoReport videoReport(const VideoLog& log, std::vector<std::string>& problems) {
    VideoReport report;
    report.log = &log;
    double end = 0.0;
    for (const SequenceRecord& s : log.sequences) {
        end = std::max(end, s.endS);
    }
    for (const AlertRecord& a : log.alerts) {
        end = std::max(end, a.tS);
    }
    report.durationS = log.durationS ? std::max(*log.durationS, end) : end;

    std::map<std::string, AlertInterval> open;
    for (const AlertRecord& a : log.alerts) {
        auto it = open.find(a.kind);
        if (a.event == "raised") {
            if (it != open.end()) {
                problems.push_back(fmt::format("{}: {} raised at {:.3f} s while already raised",
                                               log.video, a.kind, a.tS));
                continue;
            }
            AlertInterval interval;
            interval.video = log.video;
            interval.kind = a.kind;
            interval.peakLevel = a.level;
            interval.startS = a.tS;
            interval.source = a.source;
            interval.peakConfidence = a.confidence;
            interval.levels.emplace_back(a.tS, a.level);
            open.emplace(a.kind, std::move(interval));
            continue;
        }
        if (it == open.end()) {
            problems.push_back(fmt::format("{}: {} {} at {:.3f} s without a raise", log.video,
                                           a.kind, a.event, a.tS));
            continue;
        }
        AlertInterval& interval = it->second;
        if (a.event == "level_changed") {
            interval.levels.emplace_back(a.tS, a.level);
            if (levelRank(a.level) > levelRank(interval.peakLevel)) {
                interval.peakLevel = a.level;
            }
            interval.peakConfidence = std::max(interval.peakConfidence, a.confidence);
        } else { // cleared
            interval.endS = a.tS;
            report.intervals.push_back(std::move(interval));
            open.erase(it);
        }
    }
    for (auto& [kind, interval] : open) {
        interval.endS = std::max(report.durationS, interval.startS);
        interval.openAtEnd = true;
        report.intervals.push_back(std::move(interval));
    }
    std::stable_sort(
        report.intervals.begin(), report.intervals.end(),
        [](const AlertInterval& a, const AlertInterval& b) { return a.startS < b.startS; });
    for (const AlertInterval& interval : report.intervals) {
        addTo(report.totals[interval.kind], interval);
    }
    return report;
}

FleetReport fleetReport(const TripLog& log) {
    FleetReport fleet;
    fleet.problems = log.problems;
    for (const VideoLog& video : log.videos) {
        VideoReport report = videoReport(video, fleet.problems);
        fleet.durationS += report.durationS;
        for (const auto& [kind, totals] : report.totals) {
            KindTotals& all = fleet.totals[kind];
            all.intervals += totals.intervals;
            all.totalS += totals.totalS;
            all.videos += 1;
            if (levelRank(totals.peakLevel) > levelRank(all.peakLevel)) {
                all.peakLevel = totals.peakLevel;
            }
        }
        fleet.videos.push_back(std::move(report));
    }
    return fleet;
}

} // namespace dmsd::report
