// report/evidence.h: analyze's --evidence snapshots read back, matched to the
// intervals they raised, and embedded in the HTML report.

#include <filesystem>
#include <fstream>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "base/base64.h"
#include "report/evidence.h"
#include "report/render.h"
#include "test/report/trip_lines.h"
#include "test/support/temp_dir.h"

using namespace dmsd::report;
using dmsd::test::alertLine;
using dmsd::test::quoted;
using dmsd::test::sequenceLine;
using dmsd::test::summaryLine;
using dmsd::test::TempDir;
using dmsd::test::writeLines;

namespace {

void writeBytes(const std::filesystem::path& path, const std::string& bytes) {
    std::ofstream out(path, std::ios::binary);
    out << bytes;
}

/// Bytes that start like a JPEG (SOI and an APP0 marker), distinct per \a tag.
std::string jpegLike(const std::string& tag) {
    return std::string("\xFF\xD8\xFF\xE0", 4) + tag + std::string("\xFF\xD9", 2);
}

/// A snapshot directory as the snapshot writer makes it.
std::filesystem::path snapshot(const TempDir& dir, const std::string& name,
                               const std::string& video, const std::string& kind, double t,
                               const std::string& event,
                               const std::vector<std::pair<std::string, std::string>>& frames) {
    const auto path = dir / "evidence" / name;
    std::filesystem::create_directories(path);
    std::string images;
    for (const auto& [file, bytes] : frames) {
        images += fmt::format("{}{{\"file\":{},\"width\":160,\"height\":120,\"bytes\":{}}}",
                              images.empty() ? "" : ",", quoted(file), bytes.size());
        writeBytes(path / file, bytes);
    }
    const std::string videoPart =
        video.empty() ? "" : fmt::format(R"("video":{{"path":{},"t_s":{}}},)", quoted(video), t);
    writeBytes(
        path / "alert.json",
        fmt::format(R"({{"format":"dmsd-snapshot-1","alert":{{"kind":"{}","level":"warning",)"
                    R"("event":"{}"}},"config_version":"t",{}"sequence":{{"images":[{}]}}}})",
                    kind, event, videoPart, images));
    return path;
}

TripLog trip(const TempDir& dir) {
    return readTripLogs(
        {writeLines(dir / "run.jsonl", {sequenceLine("a.mp4", 1, 0, 20, "SLEEPY", 300),
                                        alertLine("a.mp4", 12.4, "raised", "DROWSINESS", "warning"),
                                        alertLine("a.mp4", 18, "cleared", "DROWSINESS", "cleared"),
                                        alertLine("a.mp4", 3, "raised", "PHONE_USE", "warning"),
                                        alertLine("a.mp4", 6, "cleared", "PHONE_USE", "cleared"),
                                        summaryLine("a.mp4", 20)})});
}

} // namespace

TEST_CASE("evidence: each raise's frames go to the interval it opened", "[report][evidence]") {
    TempDir dir("dmsd-report-evidence");
    const std::string frame0 = jpegLike("zero");
    const std::string frame1 = jpegLike("one");
    snapshot(dir, "00000001-20261202T060000.000Z-DROWSINESS", "a.mp4", "DROWSINESS", 12.4, "raised",
             {{"frame-0.jpg", frame0}, {"frame-1.jpg", frame1}});
    // An escalation's snapshot, dmsd run's (no video), one of another video,
    // a snapshot still being written, a directory that is no snapshot.
    snapshot(dir, "00000002-20261202T060001.000Z-DROWSINESS", "a.mp4", "DROWSINESS", 14,
             "level_changed", {{"frame-0.jpg", jpegLike("esc")}});
    snapshot(dir, "00000003-20261202T060002.000Z-DROWSINESS", "", "DROWSINESS", 0, "raised",
             {{"frame-0.jpg", jpegLike("run")}});
    snapshot(dir, "00000004-20261202T060003.000Z-PHONE_USE", "b.mp4", "PHONE_USE", 3, "raised",
             {{"frame-0.jpg", jpegLike("b")}});
    snapshot(dir, ".tmp-00000005", "a.mp4", "PHONE_USE", 3, "raised", {});
    std::filesystem::create_directories(dir / "evidence" / "lost+found");

    const Evidence evidence = readEvidence({dir / "evidence"});
    CHECK(evidence.problems.empty());
    CHECK(evidence.framesLeftOut == 0);
    REQUIRE(evidence.snapshots.size() == 2);

    const TripLog log = trip(dir);
    FleetReport fleet = fleetReport(log);
    CHECK(attachEvidence(fleet, evidence) == 1); // b.mp4's: not among the inputs
    REQUIRE(fleet.videos.size() == 1);
    const auto& intervals = fleet.videos[0].intervals;
    REQUIRE(intervals.size() == 2);
    const AlertInterval& drowsy = intervals[0].kind == "DROWSINESS" ? intervals[0] : intervals[1];
    const AlertInterval& phone = intervals[0].kind == "DROWSINESS" ? intervals[1] : intervals[0];
    REQUIRE(drowsy.evidence != nullptr);
    CHECK(phone.evidence == nullptr);
    REQUIRE(drowsy.evidence->frames.size() == 2);
    CHECK(drowsy.evidence->frames[0].file == "frame-0.jpg");
    CHECK(drowsy.evidence->frames[0].jpeg == frame0);
    CHECK(drowsy.evidence->frames[1].jpeg == frame1);

    SECTION("the HTML embeds the frames as data URLs, in an evidence column") {
        const std::string html = renderHtml(fleet);
        CHECK(html.find("<th>evidence</th>") != std::string::npos);
        for (const std::string& bytes : {frame0, frame1}) {
            const std::string url =
                "src=\"data:image/jpeg;base64," +
                dmsd::base64(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()) +
                "\"";
            CHECK(html.find(url) != std::string::npos);
        }
        CHECK(html.find("http:") == std::string::npos); // nothing to fetch
    }
    SECTION("without evidence there is no evidence column") {
        const std::string html = renderHtml(fleetReport(log));
        CHECK(html.find("evidence</th>") == std::string::npos);
        CHECK(html.find("data:image/jpeg") == std::string::npos);
    }
}

TEST_CASE("evidence: bad files are named problems, the rest is read", "[report][evidence]") {
    TempDir dir("dmsd-report-evidence");
    snapshot(dir, "00000001-20261202T060000.000Z-DROWSINESS", "a.mp4", "DROWSINESS", 12.4, "raised",
             {{"frame-0.jpg", jpegLike("good")},
              {"frame-1.jpg", "GIF89a, not a JPEG"},
              {"frame-2.jpg", jpegLike(std::string(200, 'x'))}});
    // A frame name that would leave the snapshot directory.
    const auto escape = snapshot(dir, "00000002-20261202T060001.000Z-PHONE_USE", "a.mp4",
                                 "PHONE_USE", 3, "raised", {{"frame-0.jpg", jpegLike("p")}});
    writeBytes(escape / "alert.json",
               R"({"alert":{"kind":"PHONE_USE","event":"raised"},"video":{"path":"a.mp4","t_s":3},)"
               R"("sequence":{"images":[{"file":"../../run.jsonl"}]}})");
    // A sidecar that is not JSON, and one that is a FIFO (reading it must not hang).
    const auto broken = snapshot(dir, "00000003-20261202T060002.000Z-DISTRACTION", "a.mp4",
                                 "DISTRACTION", 5, "raised", {});
    writeBytes(broken / "alert.json", "{\"alert\":");
    const auto fifo = snapshot(dir, "00000004-20261202T060003.000Z-DISTRACTION", "a.mp4",
                               "DISTRACTION", 7, "raised", {});
    std::filesystem::remove(fifo / "alert.json");
    REQUIRE(::mkfifo((fifo / "alert.json").c_str(), 0600) == 0);

    EvidenceLimits limits;
    limits.maxFrameBytes = 100;
    const Evidence evidence = readEvidence({dir / "evidence", dir / "missing"}, limits);
    auto problem = [&](const std::string& path, const std::string& what) {
        return std::any_of(evidence.problems.begin(), evidence.problems.end(), [&](auto& p) {
            return p.find(path) != std::string::npos && p.find(what) != std::string::npos;
        });
    };
    INFO(fmt::format("{}", fmt::join(evidence.problems, "\n")));
    CHECK(evidence.problems.size() == 6);
    CHECK(problem("frame-1.jpg", "not a JPEG"));
    CHECK(problem("frame-2.jpg", "larger than 100 bytes"));
    CHECK(problem("00000002", "../../run.jsonl\" is not a plain file name"));
    CHECK(problem("00000003-20261202T060002.000Z-DISTRACTION/alert.json", "not a JSON object"));
    CHECK(problem("00000004-20261202T060003.000Z-DISTRACTION/alert.json", "FIFO"));
    CHECK(problem("missing", "cannot be read"));
    REQUIRE(evidence.snapshots.size() == 2);
    CHECK(evidence.snapshots[0].frames.size() == 1); // the good frame only
    CHECK(evidence.snapshots[1].frames.empty());
}

TEST_CASE("evidence: a report embeds a bounded amount, the rest is counted", "[report][evidence]") {
    TempDir dir("dmsd-report-evidence");
    const std::string big = jpegLike(std::string(1000, 'b'));
    for (int i = 1; i <= 3; ++i) {
        snapshot(dir, fmt::format("0000000{}-20261202T06000{}.000Z-DROWSINESS", i, i), "a.mp4",
                 "DROWSINESS", 10.0 * i, "raised", {{"frame-0.jpg", big}, {"frame-1.jpg", big}});
    }
    EvidenceLimits limits;
    limits.maxTotalBytes = 3 * big.size() + 10; // three frames fit
    const Evidence evidence = readEvidence({dir / "evidence"}, limits);
    CHECK(evidence.problems.empty());
    REQUIRE(evidence.snapshots.size() == 3);
    // The earliest raises keep their frames.
    CHECK(evidence.snapshots[0].frames.size() == 2);
    CHECK(evidence.snapshots[1].frames.size() == 1);
    CHECK(evidence.snapshots[2].frames.empty());
    CHECK(evidence.framesLeftOut == 3);
}
