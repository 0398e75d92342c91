#pragma once

/// \file
/// Renderings of a fleet report: a plain-text summary for the terminal, CSV
/// of the intervals for spreadsheets, and one self-contained HTML trip
/// report (inline CSS and SVG, no script, nothing fetched) per run.

#include <string>

#include "report/intervals.h"

namespace dmsd::report {

/// Fleet totals, per-video totals and every interval, as aligned text.
std::string renderText(const FleetReport& report);

/// One row per interval: video,kind,peak_level,start_s,end_s,duration_s,source,open_at_end
/// (RFC 4180 quoting).
std::string renderCsv(const FleetReport& report);

/// The HTML trip report: fleet totals, then per video a timeline (the
/// driver-state band, a lane per alert kind raised with its levels, the
/// sequence latency strip), its totals and its intervals.
std::string renderHtml(const FleetReport& report);

/// "1:02:03.4" style video time (h:mm:ss.s, or m:ss.s under an hour).
std::string formatVideoTime(double seconds);

} // namespace dmsd::report
