#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "report/render.h"

namespace dmsd::report {

std::string formatVideoTime(double seconds) {
    const double clamped = std::max(0.0, seconds);
    const auto tenths = static_cast<long long>(std::llround(clamped * 10.0));
    const long long h = tenths / 36000;
    const long long m = (tenths / 600) % 60;
    const long long s = (tenths / 10) % 60;
    const long long t = tenths % 10;
    if (h > 0) {
        return fmt::format("{}:{:02}:{:02}.{}", h, m, s, t);
    }
    return fmt::format("{}:{:02}.{}", m, s, t);
}

namespace {

std::string plural(std::size_t n, std::string_view one, std::string_view many) {
    return fmt::format("{} {}", n, n == 1 ? one : many);
}

std::size_t intervalCount(const FleetReport& report) {
    std::size_t n = 0;
    for (const VideoReport& v : report.videos) {
        n += v.intervals.size();
    }
    return n;
}

} // namespace

std::string renderText(const FleetReport& report) {
    std::string out = fmt::format(
        "dmsd report: {}, {} of video, {}\n", plural(report.videos.size(), "video", "videos"),
        formatVideoTime(report.durationS),
        plural(intervalCount(report), "alert interval", "alert intervals"));
    std::size_t videoWidth = 5;
    for (const VideoReport& v : report.videos) {
        videoWidth = std::max(videoWidth, v.log->video.size());
    }
    out += "\nfleet\n";
    if (report.totals.empty()) {
        out += "  no alert was raised\n";
    }
    for (const auto& [kind, t] : report.totals) {
        out += fmt::format("  {:<18} {} in {}, {:.1f} s in all, peak {}\n", kind,
                           plural(t.intervals, "interval", "intervals"),
                           plural(t.videos, "video", "videos"), t.totalS, t.peakLevel);
    }
    out += "\nper video\n";
    for (const VideoReport& v : report.videos) {
        std::string state = v.log->status.empty() ? "no summary" : v.log->status;
        out += fmt::format("  {:<{}}  {} ({})\n", v.log->video, videoWidth,
                           formatVideoTime(v.durationS), state);
        for (const auto& [kind, t] : v.totals) {
            out += fmt::format("    {:<18} {}, {:.1f} s, peak {}\n", kind,
                               plural(t.intervals, "interval", "intervals"), t.totalS, t.peakLevel);
        }
    }
    if (intervalCount(report) > 0) {
        out += fmt::format("\nintervals\n  {:<{}}  {:<18} {:<8} {:>9} {:>9} {:>9}  {}\n", "video",
                           videoWidth, "kind", "peak", "start", "end", "duration", "source");
        for (const VideoReport& v : report.videos) {
            for (const AlertInterval& i : v.intervals) {
                out += fmt::format("  {:<{}}  {:<18} {:<8} {:>9} {:>9} {:>8.1f}s  {}{}\n", i.video,
                                   videoWidth, i.kind, i.peakLevel, formatVideoTime(i.startS),
                                   formatVideoTime(i.endS), i.durationS(), i.source,
                                   i.openAtEnd ? " (still raised at the end)" : "");
            }
        }
    }
    return out;
}

} // namespace dmsd::report
