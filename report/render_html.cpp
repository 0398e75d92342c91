#include <algorithm>
#include <set>

#include <fmt/format.h>

#include "base/base64.h"
#include "report/evidence.h"
#include "report/render.h"

namespace dmsd::report {

namespace {

std::string escape(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out += c;
        }
    }
    return out;
}

/// CSS class of a driver state: alert (awake), drowsy (sleepy, tired,
/// exhausted), other (joyful, angry, neutral), unknown (no answer).
std::string_view stateClass(const std::string& state) {
    if (state == "AWAKE") {
        return "state-alert";
    }
    if (state == "SLEEPY" || state == "TIRED" || state == "EXHAUSTED") {
        return "state-drowsy";
    }
    if (state.empty()) {
        return "state-unknown";
    }
    return "state-other";
}

// The timeline's geometry, in SVG user units.
constexpr double kLabelWidth = 150.0;
constexpr double kPlotWidth = 800.0;
constexpr double kLaneHeight = 18.0;
constexpr double kLaneGap = 6.0;
constexpr double kLatencyHeight = 30.0;

class Timeline {
public:
    explicit Timeline(double durationS) : durationS_(std::max(durationS, 0.001)) {}
    double x(double t) const {
        return kLabelWidth + std::clamp(t / durationS_, 0.0, 1.0) * kPlotWidth;
    }
    double width(double from, double to) const { return std::max(0.5, x(to) - x(from)); }

private:
    double durationS_;
};

constexpr std::string_view kStyle = R"(
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:32px;word-break:break-all}
table{border-collapse:collapse;margin:8px 0}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.problems{color:#8a4b00}
svg text{font-size:11px;fill:#333}
.axis line{stroke:#bbb}
.level-info{fill:#1f77b4}.level-warning{fill:#ff9f1c}.level-critical{fill:#d62728}
.state-alert{fill:#2ca02c}.state-drowsy{fill:#9467bd}.state-other{fill:#9ecae1}.state-unknown{fill:#ddd}
.latency{fill:#7f7f7f}
.lane-bg{fill:#f4f4f4}
.legend span{display:inline-block;margin-right:14px}
td.evidence img{margin-right:4px;vertical-align:top}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-1px}
)";

std::string legend() {
    return R"(<p class="legend"><span><i style="background:#ff9f1c"></i>warning</span>)"
           R"(<span><i style="background:#d62728"></i>critical</span>)"
           R"(<span><i style="background:#1f77b4"></i>info</span>)"
           R"(<span><i style="background:#2ca02c"></i>driver awake</span>)"
           R"(<span><i style="background:#9467bd"></i>driver sleepy, tired or exhausted</span>)"
           R"(<span><i style="background:#9ecae1"></i>other state</span>)"
           R"(<span><i style="background:#ddd"></i>no answer</span></p>)";
}

std::string totalsTable(const std::map<std::string, KindTotals>& totals, bool fleet) {
    if (totals.empty()) {
        return "<p>No alert was raised.</p>\n";
    }
    std::string out = "<table class=\"totals\"><tr><th>kind</th><th>intervals</th>";
    out += fleet ? "<th>videos</th>" : "";
    out += "<th>time raised</th><th>peak level</th></tr>\n";
    for (const auto& [kind, t] : totals) {
        out += fmt::format("<tr><td>{}</td><td class=\"num\">{}</td>", escape(kind), t.intervals);
        out += fleet ? fmt::format("<td class=\"num\">{}</td>", t.videos) : "";
        out += fmt::format("<td class=\"num\">{:.1f} s</td><td>{}</td></tr>\n", t.totalS,
                           escape(t.peakLevel));
    }
    return out + "</table>\n";
}

std::string timelineSvg(const VideoReport& v) {
    const Timeline line(v.durationS);
    std::vector<std::string> kinds;
    for (const AlertInterval& i : v.intervals) {
        if (std::find(kinds.begin(), kinds.end(), i.kind) == kinds.end()) {
            kinds.push_back(i.kind);
        }
    }
    std::sort(kinds.begin(), kinds.end());
    const double lanesTop = kLaneHeight + kLaneGap;
    const double latencyTop =
        lanesTop + static_cast<double>(kinds.size()) * (kLaneHeight + kLaneGap);
    const double axisTop = latencyTop + kLatencyHeight + kLaneGap;
    const double height = axisTop + 16.0;
    std::string out =
        fmt::format("<svg class=\"timeline\" width=\"{:.0f}\" "
                    "height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" role=\"img\">\n",
                    kLabelWidth + kPlotWidth + 10, height, kLabelWidth + kPlotWidth + 10, height);

    // The time axis first, behind the rest: ticks at the start, the quarters and the end.
    out += "<g class=\"axis\">\n";
    for (int q = 0; q <= 4; ++q) {
        const double t = v.durationS * q / 4.0;
        out += fmt::format("<line x1=\"{0:.2f}\" x2=\"{0:.2f}\" y1=\"0\" y2=\"{1:.1f}\"/>"
                           "<text x=\"{0:.2f}\" y=\"{2:.1f}\" text-anchor=\"{3}\">{4}</text>\n",
                           line.x(t), axisTop, axisTop + 12,
                           q == 0   ? "start"
                           : q == 4 ? "end"
                                    : "middle",
                           formatVideoTime(t));
    }
    out += "</g>\n";

    // The driver-state band: one rectangle per sequence, from its answer.
    out += fmt::format("<g class=\"driver-state\"><text x=\"0\" y=\"{:.1f}\">driver state</text>\n",
                       kLaneHeight - 5);
    for (const SequenceRecord& s : v.log->sequences) {
        out +=
            fmt::format("<rect class=\"{}\" x=\"{:.2f}\" y=\"0\" width=\"{:.2f}\" "
                        "height=\"{:.0f}\"><title>{} - {}: {}</title></rect>\n",
                        stateClass(s.driverState), line.x(s.startS), line.width(s.startS, s.endS),
                        kLaneHeight, formatVideoTime(s.startS), formatVideoTime(s.endS),
                        s.driverState.empty() ? "no answer" : escape(s.driverState));
    }
    out += "</g>\n";

    // A lane per alert kind raised, its levels step by step.
    for (std::size_t k = 0; k < kinds.size(); ++k) {
        const double y = lanesTop + static_cast<double>(k) * (kLaneHeight + kLaneGap);
        out += fmt::format("<g class=\"lane\" data-kind=\"{}\"><text x=\"0\" y=\"{:.1f}\">{}</text>"
                           "<rect class=\"lane-bg\" x=\"{:.0f}\" y=\"{:.1f}\" width=\"{:.0f}\" "
                           "height=\"{:.0f}\"/>\n",
                           escape(kinds[k]), y + kLaneHeight - 5, escape(kinds[k]), kLabelWidth, y,
                           kPlotWidth, kLaneHeight);
        for (const AlertInterval& i : v.intervals) {
            if (i.kind != kinds[k]) {
                continue;
            }
            for (std::size_t step = 0; step < i.levels.size(); ++step) {
                const double from = i.levels[step].first;
                const double to = step + 1 < i.levels.size() ? i.levels[step + 1].first : i.endS;
                out += fmt::format(
                    "<rect class=\"level-{}\" data-level=\"{}\" x=\"{:.2f}\" y=\"{:.1f}\" "
                    "width=\"{:.2f}\" height=\"{:.0f}\"><title>{} {} {} - {} ({})</title></rect>\n",
                    escape(i.levels[step].second), escape(i.levels[step].second), line.x(from), y,
                    line.width(from, to), kLaneHeight, escape(i.kind),
                    escape(i.levels[step].second), formatVideoTime(from), formatVideoTime(to),
                    escape(i.source));
            }
        }
        out += "</g>\n";
    }

    // The latency strip: a bar per sequence, scaled to the slowest.
    std::int64_t slowest = 1;
    for (const SequenceRecord& s : v.log->sequences) {
        slowest = std::max(slowest, s.latencyMs);
    }
    out += fmt::format("<g class=\"latency-strip\"><text x=\"0\" y=\"{:.1f}\">latency (max {} "
                       "ms)</text>\n",
                       latencyTop + kLatencyHeight - 5, slowest);
    for (const SequenceRecord& s : v.log->sequences) {
        const double h =
            kLatencyHeight * static_cast<double>(s.latencyMs) / static_cast<double>(slowest);
        out += fmt::format("<rect class=\"latency\" x=\"{:.2f}\" y=\"{:.2f}\" width=\"{:.2f}\" "
                           "height=\"{:.2f}\"><title>sequence {}: {} ms</title></rect>\n",
                           line.x(s.startS), latencyTop + kLatencyHeight - h,
                           line.width(s.startS, s.endS), h, s.id, s.latencyMs);
    }
    out += "</g>\n";

    out += "</svg>\n";
    return out;
}

/// The frames that raised an interval, inline: `data:` URLs, nothing fetched.
std::string evidenceCell(const AlertInterval& i) {
    std::string out = "<td class=\"evidence\">";
    if (i.evidence != nullptr) {
        for (const EvidenceFrame& frame : i.evidence->frames) {
            out +=
                fmt::format("<img class=\"evidence\" width=\"160\" alt=\"{0}\" title=\"{1}/{0}\" "
                            "src=\"data:image/jpeg;base64,",
                            escape(frame.file), escape(i.evidence->dir.string()));
            appendBase64(out, reinterpret_cast<const unsigned char*>(frame.jpeg.data()),
                         frame.jpeg.size());
            out += "\">";
        }
    }
    return out + "</td>";
}

std::string intervalsTable(const VideoReport& v) {
    if (v.intervals.empty()) {
        return {};
    }
    const bool evidence = std::any_of(v.intervals.begin(), v.intervals.end(),
                                      [](const AlertInterval& i) { return i.evidence != nullptr; });
    std::string out = "<table class=\"intervals\"><tr><th>kind</th><th>peak level</th>"
                      "<th>start</th><th>end</th><th>duration</th><th>source</th>";
    out += evidence ? "<th>evidence</th></tr>\n" : "</tr>\n";
    for (const AlertInterval& i : v.intervals) {
        out += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td "
                           "class=\"num\">{}{}</td><td class=\"num\">{:.1f} s</td><td>{}</td>",
                           escape(i.kind), escape(i.peakLevel), formatVideoTime(i.startS),
                           formatVideoTime(i.endS), i.openAtEnd ? " (end of video)" : "",
                           i.durationS(), escape(i.source));
        out += evidence ? evidenceCell(i) + "</tr>\n" : "</tr>\n";
    }
    return out + "</table>\n";
}

} // namespace

std::string renderHtml(const FleetReport& report) {
    std::size_t intervals = 0;
    for (const VideoReport& v : report.videos) {
        intervals += v.intervals.size();
    }
    std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<title>dmsd trip report</title><style>";
    out += kStyle;
    out += "</style></head><body>\n<h1>dmsd trip report</h1>\n";
    out += fmt::format("<p class=\"overview\">{} video{}, {} of video, {} alert interval{}.</p>\n",
                       report.videos.size(), report.videos.size() == 1 ? "" : "s",
                       formatVideoTime(report.durationS), intervals, intervals == 1 ? "" : "s");
    out += "<h2>Fleet</h2>\n" + totalsTable(report.totals, true);
    if (!report.problems.empty()) {
        out += "<details class=\"problems\"><summary>" + std::to_string(report.problems.size()) +
               " problem(s) reading the input</summary><ul>\n";
        for (const std::string& problem : report.problems) {
            out += "<li>" + escape(problem) + "</li>\n";
        }
        out += "</ul></details>\n";
    }
    for (const std::string& note : report.notes) {
        out += "<p class=\"note\">" + escape(note) + "</p>\n";
    }
    out += legend();
    for (const VideoReport& v : report.videos) {
        out += fmt::format("<section class=\"video\" data-video=\"{}\">\n<h2>{}</h2>\n",
                           escape(v.log->video), escape(v.log->video));
        out += fmt::format("<p>{} of video, {} sequences, status {}{}</p>\n",
                           formatVideoTime(v.durationS), v.log->sequences.size(),
                           escape(v.log->status.empty() ? "unknown (no summary)" : v.log->status),
                           v.log->error.empty() ? "" : ": " + escape(v.log->error));
        out += timelineSvg(v);
        out += totalsTable(v.totals, false);
        out += intervalsTable(v);
        out += "</section>\n";
    }
    out += "</body></html>\n";
    return out;
}

} // namespace dmsd::report
