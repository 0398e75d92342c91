// report/render.h: text, CSV and HTML of a fleet report.

#include <fstream>
#include <sstream>

#include <catch2/catch.hpp>

#include "report/render.h"
#include "test/report/trip_lines.h"
#include "test/support/temp_dir.h"

using namespace dmsd::report;
using dmsd::test::alertLine;
using dmsd::test::sequenceLine;
using dmsd::test::summaryLine;
using dmsd::test::TempDir;
using dmsd::test::writeLines;

namespace {

TripLog sample(const TempDir& dir) {
    const std::string video = "trips/with, comma \"q\".mp4";
    return readTripLogs({writeLines(dir / "run.jsonl",
                                    {sequenceLine(video, 1, 0, 2, "AWAKE", 300),
                                     alertLine(video, 1.5, "raised", "DROWSINESS", "warning"),
                                     alertLine(video, 3, "level_changed", "DROWSINESS", "critical"),
                                     alertLine(video, 5, "cleared", "DROWSINESS", "cleared"),
                                     summaryLine(video, 3725)})});
}

} // namespace

TEST_CASE("CSV: one quoted row per interval", "[report]") {
    TempDir dir("dmsd-report");
    const TripLog log = sample(dir);
    const std::string csv = renderCsv(fleetReport(log));
    CHECK(csv == "video,kind,peak_level,start_s,end_s,duration_s,source,open_at_end\r\n"
                 "\"trips/with, comma \"\"q\"\".mp4\",DROWSINESS,critical,1.500,5.000,3.500,"
                 "model,false\r\n");
}

TEST_CASE("text: fleet, per video, intervals", "[report]") {
    TempDir dir("dmsd-report");
    const TripLog log = sample(dir);
    const std::string text = renderText(fleetReport(log));
    CHECK_THAT(text, Catch::StartsWith("dmsd report: 1 video, 1:02:05.0 of video, 1 alert "
                                       "interval\n"));
    CHECK_THAT(text, Catch::Contains("DROWSINESS         1 interval in 1 video, 3.5 s in all, "
                                     "peak critical"));
    CHECK_THAT(text, Catch::Contains("0:01.5") && Catch::Contains("0:05.0"));
    CHECK(formatVideoTime(59.96) == "1:00.0");
    CHECK(formatVideoTime(3600) == "1:00:00.0");
}

TEST_CASE("HTML: self-contained, escaped, a lane per kind with its levels", "[report]") {
    TempDir dir("dmsd-report");
    const TripLog log = sample(dir);
    const std::string html = renderHtml(fleetReport(log));
    CHECK_THAT(html, Catch::StartsWith("<!DOCTYPE html>"));
    // Nothing fetched: no external reference of any kind.
    for (const char* fetch : {"http:", "https:", "src=", "href=", "url(", "@import", "<script"}) {
        INFO(fetch);
        CHECK(html.find(fetch) == std::string::npos);
    }
    CHECK(html.find("with, comma &quot;q&quot;.mp4") != std::string::npos);
    CHECK(html.find("comma \"q\"") == std::string::npos);
    CHECK(html.find(R"(<g class="lane" data-kind="DROWSINESS">)") != std::string::npos);
    CHECK(html.find(R"(data-level="warning")") != std::string::npos);
    CHECK(html.find(R"(data-level="critical")") != std::string::npos);
    CHECK(html.find(R"(class="state-alert")") != std::string::npos);
}
