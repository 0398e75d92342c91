// The HTML trip report as a browser shows it: rendered by Debian's headless
// Chromium (--dump-dom and --screenshot), nothing fetched. Skips, saying so,
// where Chromium is not installed (scripts/install-deps installs it).

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "report/render.h"
#include "test/report/trip_lines.h"
#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

using namespace dmsd::report;
using namespace std::chrono_literals;
using dmsd::test::alertLine;
using dmsd::test::ChildProcess;
using dmsd::test::sequenceLine;
using dmsd::test::summaryLine;
using dmsd::test::TempDir;
using dmsd::test::writeLines;

namespace {

/// Debian's Chromium; nullopt, with a warning that nothing was rendered, where
/// it is not installed.
std::optional<std::filesystem::path> findChromium() {
    for (const char* candidate : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
        if (std::filesystem::exists(candidate)) {
            return std::filesystem::path(candidate);
        }
    }
    WARN("SKIPPED: Chromium is not installed (apt-get install chromium); the HTML report was "
         "not rendered");
    return std::nullopt;
}

/// Headless Chromium with a private profile and nothing that phones home.
std::vector<std::string> chromiumArgs(const std::filesystem::path& chromium, const TempDir& dir) {
    return {chromium.string(),
            "--headless",
            "--no-sandbox", // tests run as root in CI
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            "--disable-extensions",
            "--hide-scrollbars",
            "--user-data-dir=" + (dir / "profile").string()};
}

struct Rgb {
    int r, g, b;
};

/// Pixels of \a png (decoded by GStreamer's pngdec) within \a tolerance of each colour.
std::vector<std::size_t> countColours(const std::filesystem::path& png,
                                      const std::vector<Rgb>& colours, int tolerance) {
    gst_init(nullptr, nullptr);
    GError* error = nullptr;
    const std::string description =
        "filesrc location=\"" + png.string() +
        "\" ! pngdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink";
    GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
    REQUIRE(pipeline != nullptr);
    REQUIRE(error == nullptr);
    GstElement* sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 20 * GST_SECOND);
    std::vector<std::size_t> counts(colours.size(), 0);
    if (sample != nullptr) {
        GstVideoInfo info;
        REQUIRE(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
        GstMapInfo map;
        GstBuffer* buffer = gst_sample_get_buffer(sample);
        REQUIRE(gst_buffer_map(buffer, &map, GST_MAP_READ));
        const int stride = GST_VIDEO_INFO_PLANE_STRIDE(&info, 0);
        for (int y = 0; y < GST_VIDEO_INFO_HEIGHT(&info); ++y) {
            const guint8* row = map.data + static_cast<std::ptrdiff_t>(y) * stride;
            for (int x = 0; x < GST_VIDEO_INFO_WIDTH(&info); ++x) {
                const guint8* p = row + 3 * x;
                for (std::size_t c = 0; c < colours.size(); ++c) {
                    if (std::abs(p[0] - colours[c].r) <= tolerance &&
                        std::abs(p[1] - colours[c].g) <= tolerance &&
                        std::abs(p[2] - colours[c].b) <= tolerance) {
                        ++counts[c];
                    }
                }
            }
        }
        gst_buffer_unmap(buffer, &map);
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(pipeline);
    REQUIRE(sample != nullptr);
    return counts;
}

/// Chromium's screenshot of \a url in a window of \a size ("W,H"), as a PNG in \a dir.
std::filesystem::path screenshot(const std::filesystem::path& chromium, const TempDir& dir,
                                 const std::string& url, const std::string& size) {
    const auto png = dir / "report.png";
    std::vector<std::string> argv = chromiumArgs(chromium, dir);
    argv.push_back("--window-size=" + size);
    argv.push_back("--screenshot=" + png.string());
    argv.push_back(url);
    ChildProcess child(ChildProcess::Options{argv, {}, true, false});
    const std::string output = child.readAll(120s);
    const auto code = child.wait(30s);
    INFO(output);
    REQUIRE(code);
    REQUIRE(*code == 0);
    REQUIRE(std::filesystem::exists(png));
    return png;
}

} // namespace

TEST_CASE("the HTML report in headless Chromium: a lane per kind raised, not blank",
          "[report][browser]") {
    const auto chromium = findChromium();
    if (!chromium) {
        return;
    }
    TempDir dir("dmsd-report-browser");
    const auto input = writeLines(
        dir / "run.jsonl",
        {sequenceLine("a.mp4", 1, 0, 10, "AWAKE", 300),
         sequenceLine("a.mp4", 2, 10, 20, "SLEEPY", 900),
         alertLine("a.mp4", 12, "raised", "DROWSINESS", "warning"),
         alertLine("a.mp4", 14, "level_changed", "DROWSINESS", "critical"),
         alertLine("a.mp4", 19, "cleared", "DROWSINESS", "cleared"),
         alertLine("a.mp4", 2, "raised", "PHONE_USE", "warning"),
         alertLine("a.mp4", 9, "cleared", "PHONE_USE", "cleared"), summaryLine("a.mp4", 20),
         sequenceLine("b.mp4", 1, 0, 10, "AWAKE", 300), summaryLine("b.mp4", 10)});
    const auto html = dir / "report.html";
    {
        std::ofstream out(html);
        out << renderHtml(fleetReport(readTripLogs({input})));
    }
    const std::string url = "file://" + html.string();

    SECTION("the DOM holds a lane per kind raised, and only those") {
        std::vector<std::string> argv = chromiumArgs(*chromium, dir);
        argv.push_back("--dump-dom");
        argv.push_back(url);
        ChildProcess child(ChildProcess::Options{argv, {}, false, false});
        const std::string dom = child.readAll(120s);
        const auto code = child.wait(30s);
        REQUIRE(code);
        REQUIRE(*code == 0);
        CHECK(dom.find(R"(<g class="lane" data-kind="DROWSINESS">)") != std::string::npos);
        CHECK(dom.find(R"(<g class="lane" data-kind="PHONE_USE">)") != std::string::npos);
        CHECK(dom.find(R"(data-kind="DISTRACTION")") == std::string::npos);
        CHECK(dom.find(R"(<section class="video" data-video="b.mp4">)") != std::string::npos);
    }

    SECTION("the picture shows the levels and the driver state") {
        const auto png = screenshot(*chromium, dir, url, "1000,700");
        // critical, warning, driver awake, driver drowsy (render_html.cpp's palette)
        const std::vector<std::size_t> counts = countColours(
            png, {{0xd6, 0x27, 0x28}, {0xff, 0x9f, 0x1c}, {0x2c, 0xa0, 0x2c}, {0x94, 0x67, 0xbd}},
            6);
        INFO("critical " << counts[0] << ", warning " << counts[1] << ", awake " << counts[2]
                         << ", drowsy " << counts[3]);
        // Each is a bar of at least 18 px by tens of px on the first video's timeline.
        for (std::size_t count : counts) {
            CHECK(count > 300);
        }
    }
}

TEST_CASE("the HTML report in headless Chromium: evidence thumbnails are pictures",
          "[report][browser]") {
    const auto chromium = findChromium();
    if (!chromium) {
        return;
    }
    TempDir dir("dmsd-report-browser");
    // A real JPEG (GStreamer's jpegenc) of one colour found nowhere else in the report.
    const auto snapshot = dir / "evidence" / "00000001-20261202T060000.000Z-DROWSINESS";
    std::filesystem::create_directories(snapshot);
    {
        gst_init(nullptr, nullptr);
        GError* error = nullptr;
        const std::string description =
            "videotestsrc pattern=solid-color foreground-color=0xff00c8c8 num-buffers=1 ! "
            "video/x-raw,width=320,height=240 ! jpegenc ! filesink location=\"" +
            (snapshot / "frame-0.jpg").string() + "\"";
        GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
        REQUIRE(pipeline != nullptr);
        REQUIRE(error == nullptr);
        gst_element_set_state(pipeline, GST_STATE_PLAYING);
        GstBus* bus = gst_element_get_bus(pipeline);
        GstMessage* done = gst_bus_timed_pop_filtered(
            bus, 20 * GST_SECOND, static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR));
        REQUIRE(done != nullptr);
        CHECK(GST_MESSAGE_TYPE(done) == GST_MESSAGE_EOS);
        gst_message_unref(done);
        gst_object_unref(bus);
        gst_element_set_state(pipeline, GST_STATE_NULL);
        gst_object_unref(pipeline);
    }
    {
        std::ofstream sidecar(snapshot / "alert.json");
        sidecar
            << R"({"format":"dmsd-snapshot-1","alert":{"kind":"DROWSINESS","event":"raised"},)"
               R"("video":{"path":"a.mp4","t_s":2},"sequence":{"images":[{"file":"frame-0.jpg"}]}})";
    }
    const auto input =
        writeLines(dir / "run.jsonl", {sequenceLine("a.mp4", 1, 0, 10, "SLEEPY", 300),
                                       alertLine("a.mp4", 2, "raised", "DROWSINESS", "warning"),
                                       alertLine("a.mp4", 9, "cleared", "DROWSINESS", "cleared"),
                                       summaryLine("a.mp4", 10)});
    const auto html = dir / "report.html";
    ChildProcess report(std::vector<std::string>{DMSD_BINARY, "report", "--quiet", "--html",
                                                 html.string(), "--evidence",
                                                 (dir / "evidence").string(), input.string()});
    const auto reportCode = report.wait(30s);
    REQUIRE(reportCode);
    REQUIRE(*reportCode == 0);

    const auto png = screenshot(*chromium, dir, "file://" + html.string(), "1000,900");
    // The thumbnail is drawn 160 px wide (120 high): some 19,000 pixels of its
    // colour (RGB 0,200,200) when the browser decoded the embedded JPEG.
    // (JPEG's chroma subsampling shifts it by some steps, hence the tolerance.)
    const std::vector<std::size_t> counts = countColours(png, {{0x00, 0xc8, 0xc8}}, 24);
    INFO("thumbnail pixels " << counts[0]);
    CHECK(counts[0] > 10000);
}
