#include "batch/progress.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace dmsd::batch {

std::string formatClock(double seconds) {
    const auto total = static_cast<long long>(std::max(0.0, std::round(seconds)));
    const long long h = total / 3600;
    const long long m = (total / 60) % 60;
    const long long s = total % 60;
    if (h > 0) {
        return fmt::format("{}:{:02}:{:02}", h, m, s);
    }
    return fmt::format("{}:{:02}", m, s);
}

std::optional<double> estimateEta(std::uint64_t done, double estimated, double elapsedS) {
    if (done == 0 || estimated <= 0.0 || elapsedS <= 0.0) {
        return std::nullopt;
    }
    const double remaining = std::max(0.0, estimated - static_cast<double>(done));
    return elapsedS * remaining / static_cast<double>(done);
}

namespace {

std::string sequencesText(const ProgressFigures& f) {
    // An estimate (a video whose length the probe could not tell counts at the
    // mean of the others); never show done > estimated.
    const auto estimated = static_cast<std::uint64_t>(
        std::max(std::ceil(f.windowsEstimated), static_cast<double>(f.windowsDone)));
    return fmt::format("{}/~{} sequences", f.windowsDone, estimated);
}

std::string videosText(const ProgressFigures& f) {
    std::string text = fmt::format("{}/{} videos", f.videosDone, f.videosTotal);
    if (f.videosFailed > 0) {
        text += fmt::format(" ({} failed)", f.videosFailed);
    }
    return text;
}

} // namespace

std::string formatBar(const ProgressFigures& f, std::size_t columns) {
    const std::string eta = f.etaS ? formatClock(*f.etaS) : std::string("--:--");
    const std::string text =
        fmt::format(" {}  {}  {} in flight  {} elapsed  ETA {}", videosText(f), sequencesText(f),
                    f.requestsInFlight, formatClock(f.elapsedS), eta);
    double fraction = 0.0;
    if (f.windowsEstimated > 0.0) {
        fraction = std::clamp(static_cast<double>(f.windowsDone) / f.windowsEstimated, 0.0, 1.0);
    }
    if (f.videosTotal > 0 && f.videosDone == f.videosTotal) {
        fraction = 1.0;
    }
    const std::size_t barWidth =
        columns > text.size() + 12 ? std::min<std::size_t>(40, columns - text.size() - 2) : 0;
    std::string line;
    if (barWidth >= 10) {
        const auto filled =
            static_cast<std::size_t>(std::round(fraction * static_cast<double>(barWidth)));
// GCC 12 at -O3 reports a bogus -Wrestrict inside libstdc++ for
// "literal" + std::string (GCC bug 105329, also 105651); clang has no
// -Wrestrict.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
        line = "[" + std::string(filled, '#') + std::string(barWidth - filled, '.') + "]";
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    } else {
        line = fmt::format("{:3.0f}%", fraction * 100.0);
    }
    line += text;
    if (line.size() > columns && columns > 0) {
        line.resize(columns);
    }
    return line;
}

std::string formatPlain(const ProgressFigures& f) {
    std::string line =
        fmt::format("dmsd analyze: {}, {}, {} requests in flight, elapsed {}", videosText(f),
                    sequencesText(f), f.requestsInFlight, formatClock(f.elapsedS));
    if (f.etaS) {
        line += fmt::format(", ETA {}", formatClock(*f.etaS));
    }
    return line;
}

} // namespace dmsd::batch
