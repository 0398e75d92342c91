// report/trip_log.h and report/intervals.h: analyze's lines read back and
// paired into alert intervals, shards merged, problems named.

#include <fstream>

#include <catch2/catch.hpp>

#include "report/intervals.h"
#include "report/trip_log.h"
#include "test/report/trip_lines.h"
#include "test/support/temp_dir.h"

using namespace dmsd::report;
using dmsd::test::alertLine;
using dmsd::test::sequenceLine;
using dmsd::test::summaryLine;
using dmsd::test::TempDir;
using dmsd::test::writeLines;

TEST_CASE("intervals: raise, escalation, clear, and one still raised at the end", "[report]") {
    TempDir dir("dmsd-report");
    const auto file = writeLines(
        dir / "a.jsonl", {sequenceLine("a.mp4", 1, 0, 2, "AWAKE", 400),
                          sequenceLine("a.mp4", 2, 2, 4, "SLEEPY", 500),
                          alertLine("a.mp4", 4.5, "raised", "DROWSINESS", "warning"),
                          alertLine("a.mp4", 8.25, "level_changed", "DROWSINESS", "critical"),
                          alertLine("a.mp4", 12, "cleared", "DROWSINESS", "cleared"),
                          alertLine("a.mp4", 15, "raised", "PHONE_USE", "warning"),
                          alertLine("a.mp4", 16, "raised", "ANALYZER_FAULT", "warning", "health"),
                          alertLine("a.mp4", 17, "cleared", "ANALYZER_FAULT", "cleared", "health"),
                          summaryLine("a.mp4", 20)});
    const TripLog log = readTripLogs({file});
    REQUIRE(log.problems.empty());
    REQUIRE(log.videos.size() == 1);
    CHECK(log.videos[0].sequences.size() == 2);
    CHECK(log.videos[0].sequences[1].driverState == "SLEEPY");
    const FleetReport fleet = fleetReport(log);
    REQUIRE(fleet.problems.empty());
    const VideoReport& v = fleet.videos.at(0);
    REQUIRE(v.intervals.size() == 3);
    const AlertInterval& drowsy = v.intervals[0];
    CHECK(drowsy.kind == "DROWSINESS");
    CHECK(drowsy.peakLevel == "critical");
    CHECK(drowsy.startS == 4.5);
    CHECK(drowsy.endS == 12);
    CHECK_FALSE(drowsy.openAtEnd);
    REQUIRE(drowsy.levels.size() == 2);
    CHECK(drowsy.levels[1] == std::pair<double, std::string>(8.25, "critical"));
    const AlertInterval& phone = v.intervals[1];
    CHECK(phone.kind == "PHONE_USE");
    CHECK(phone.openAtEnd);
    CHECK(phone.endS == 20); // the video's end
    CHECK(v.intervals[2].source == "health");
    CHECK(v.totals.at("DROWSINESS").totalS == Approx(7.5));
    CHECK(fleet.durationS == 20);
}

TEST_CASE("fleet totals over shards, a video in two files taken once", "[report]") {
    TempDir dir("dmsd-report");
    const auto shard0 = writeLines(dir / "shard0.jsonl",
                                   {alertLine("a.mp4", 1, "raised", "DISTRACTION", "warning"),
                                    alertLine("a.mp4", 4, "cleared", "DISTRACTION", "cleared"),
                                    summaryLine("a.mp4", 10)});
    const auto shard1 = writeLines(
        dir / "shard1.jsonl",
        {alertLine("b.mp4", 2, "raised", "DISTRACTION", "warning"),
         alertLine("b.mp4", 3, "level_changed", "DISTRACTION", "critical"),
         alertLine("b.mp4", 7, "cleared", "DISTRACTION", "cleared"), summaryLine("b.mp4", 30),
         // a.mp4 analysed again: already read from shard0
         alertLine("a.mp4", 1, "raised", "DISTRACTION", "warning"), summaryLine("a.mp4", 10)});
    const FleetReport fleet = fleetReport(readTripLogs({shard0, shard1}));
    REQUIRE(fleet.videos.size() == 2);
    const KindTotals& distraction = fleet.totals.at("DISTRACTION");
    CHECK(distraction.intervals == 2);
    CHECK(distraction.videos == 2);
    CHECK(distraction.totalS == Approx(3 + 5));
    CHECK(distraction.peakLevel == "critical");
    CHECK(fleet.durationS == 40);
    REQUIRE(fleet.problems.size() == 1);
    CHECK_THAT(fleet.problems[0], Catch::Contains("shard1.jsonl:5") &&
                                      Catch::Contains("already read from") &&
                                      Catch::Contains("shard0.jsonl"));
}

TEST_CASE("bad lines are problems naming file and line, the rest is read", "[report]") {
    TempDir dir("dmsd-report");
    const auto file = writeLines(
        dir / "bad.jsonl",
        {"not json", R"({"type":"alert","video":"a.mp4","t_s":"soon"})",
         alertLine("a.mp4", 3, "cleared", "DROWSINESS", "cleared"),
         R"({"type":"progress","video":"a.mp4"})", // another line type: skipped quietly
         alertLine("a.mp4", 5, "raised", "DROWSINESS", "warning"),
         alertLine("a.mp4", 6, "raised", "DROWSINESS", "warning"), summaryLine("a.mp4", 9)});
    const FleetReport fleet = fleetReport(readTripLogs({file, dir / "missing.jsonl"}));
    REQUIRE(fleet.problems.size() == 5);
    CHECK_THAT(fleet.problems[0], Catch::Contains("bad.jsonl:1: not a JSON object"));
    CHECK_THAT(fleet.problems[1], Catch::Contains("bad.jsonl:2") && Catch::Contains("t_s"));
    CHECK_THAT(fleet.problems[2], Catch::Contains("missing.jsonl: cannot be read"));
    CHECK_THAT(fleet.problems[3], Catch::Contains("DROWSINESS cleared at 3.000 s without a raise"));
    CHECK_THAT(fleet.problems[4], Catch::Contains("already raised"));
    REQUIRE(fleet.videos.at(0).intervals.size() == 1);
    CHECK(fleet.videos[0].intervals[0].startS == 5);
    CHECK(fleet.videos[0].intervals[0].endS == 9);
}
