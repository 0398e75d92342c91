#include <fmt/format.h>

#include "report/render.h"

namespace dmsd::report {

namespace {

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
std::string csvField(const std::string& value) {
    if (value.find_first_of(",\"\r\n") == std::string::npos) {
        return value;
    }
    std::string out = "\"";
    for (char c : value) {
        out += c;
        if (c == '"') {
            out += '"';
        }
    }
    return out + "\"";
}

} // namespace

std::string renderCsv(const FleetReport& report) {
    std::string out = "video,kind,peak_level,start_s,end_s,duration_s,source,open_at_end\r\n";
    for (const VideoReport& v : report.videos) {
        for (const AlertInterval& i : v.intervals) {
            out += fmt::format("{},{},{},{:.3f},{:.3f},{:.3f},{},{}\r\n", csvField(i.video),
                               csvField(i.kind), csvField(i.peakLevel), i.startS, i.endS,
                               i.durationS(), csvField(i.source), i.openAtEnd ? "true" : "false");
        }
    }
    return out;
}

} // namespace dmsd::report
