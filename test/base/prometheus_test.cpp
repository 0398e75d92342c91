// base/prometheus.h: the text exposition, checked by promtool (Debian's
// prometheus package) where installed and always by the test's own checker
// (test/support/prometheus_text.h); histograms; the metrics file's atomic write.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "base/atomic_file.h"
#include "base/prometheus.h"
#include "test/support/child_process.h"
#include "test/support/prometheus_text.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// promtool check metrics on \a text: {exit code, output}; nullopt without promtool.
std::optional<std::pair<int, std::string>> promtool(const std::string& text) {
    const std::string tool = test::promtoolPath();
    if (tool.empty()) {
        return std::nullopt;
    }
    test::TempDir dir("dmsd-prom");
    const auto file = dir / "metrics.prom";
    std::ofstream(file) << text;
    return test::runCommand({"sh", "-c", "'" + tool + "' check metrics < '" + file.string() + "'"},
                            30s);
}

Exposition sample() {
    Exposition out;
    out.gauge("dmsd_camera_up", "1 while frames arrive", 1);
    out.counter("dmsd_frames_captured_total", "Frames \\ captured\nin all", 1234);
    out.family("dmsd_alert_level", "gauge", "Level per kind");
    out.sample("dmsd_alert_level", {{"kind", "DROWSINESS"}}, 2);
    out.sample("dmsd_alert_level", {{"kind", "we\"ird\\kind\n"}}, 0);
    Histogram latency({0.25, 0.5, 1});
    for (double v : {0.1, 0.25, 0.3, 0.9, 7.5}) {
        latency.observe(v);
    }
    out.histogram("dmsd_sequence_latency_seconds", "Sequence latency", latency);
    return out;
}

} // namespace

TEST_CASE("histogram: cumulative le buckets, +Inf, sum and count", "[prometheus]") {
    Histogram h({0.25, 0.5, 1});
    for (double v : {0.1, 0.25, 0.3, 0.9, 7.5}) {
        h.observe(v);
    }
    CHECK(h.cumulative() == std::vector<std::uint64_t>{2, 3, 4, 5});
    CHECK(h.count() == 5);
    CHECK(h.sum() == Approx(9.05));
}

TEST_CASE("numbers are plain decimals", "[prometheus]") {
    CHECK(formatMetricValue(1234) == "1234");
    CHECK(formatMetricValue(0.25) == "0.25");
    CHECK(formatMetricValue(0.00001) == "0.00001");
    CHECK(formatMetricValue(1e20) == "100000000000000000000");
    CHECK(formatMetricValue(INFINITY) == "+Inf");
    CHECK(formatMetricValue(-INFINITY) == "-Inf");
    CHECK(formatMetricValue(NAN) == "NaN");
}

TEST_CASE("the exposition is valid text format, with escapes", "[prometheus]") {
    const std::string text = sample().text();
    const test::PromText parsed = test::parsePromText(text);
    INFO(text);
    CHECK(parsed.errors.empty());
    CHECK(parsed.types.at("dmsd_sequence_latency_seconds") == "histogram");
    CHECK(parsed.value("dmsd_frames_captured_total") == 1234);
    CHECK(parsed.value("dmsd_alert_level", {{"kind", "we\"ird\\kind\n"}}) == 0);
    CHECK(parsed.value("dmsd_sequence_latency_seconds_bucket", {{"le", "0.25"}}) == 2);
    CHECK(parsed.value("dmsd_sequence_latency_seconds_bucket", {{"le", "+Inf"}}) == 5);
    CHECK(text.find("# HELP dmsd_frames_captured_total Frames \\\\ captured\\nin all\n") !=
          std::string::npos);
    if (auto result = promtool(text)) {
        INFO(result->second);
        CHECK(result->first == 0);
    } else {
        WARN("promtool not installed (scripts/install-deps installs prometheus): checked by the "
             "test's own parser only");
    }
}

TEST_CASE("the checkers fail on broken exposition (the checks can fail)", "[prometheus]") {
    const char* broken[] = {
        "dmsd_x_total 1\n",                                                       // no TYPE
        "# HELP dmsd_x_total x\n# TYPE dmsd_x_total counter\ndmsd_x_total one\n", // bad value
        "# HELP dmsd_x x\n# TYPE dmsd_x counter\ndmsd_x 1\n", // counter without _total
        // decreasing buckets (one string, split over two lines)
        ("# HELP dmsd_h h\n# TYPE dmsd_h histogram\ndmsd_h_bucket{le=\"1\"} 2\n"
         "dmsd_h_bucket{le=\"+Inf\"} 1\ndmsd_h_sum 1\ndmsd_h_count 1\n"),
    };
    for (const char* text : broken) {
        INFO(text);
        CHECK_FALSE(test::parsePromText(text).errors.empty());
    }
    if (auto result = promtool(broken[1])) {
        CHECK(result->first != 0);
    }
}

TEST_CASE("metrics.textfile: empty or an absolute *.prom path", "[prometheus]") {
    CHECK_FALSE(textfileProblem(""));
    CHECK_FALSE(textfileProblem("/var/lib/prometheus/node-exporter/dmsd.prom"));
    CHECK(textfileProblem("dmsd.prom"));
    CHECK(textfileProblem("/var/lib/x/dmsd.txt"));
    CHECK(textfileProblem("/var/lib/x/.prom"));
}

TEST_CASE("an atomic, unsynced write with an exact mode, whatever the umask", "[prometheus]") {
    test::TempDir dir("dmsd-prom");
    const auto path = dir / "dmsd.prom";
    const mode_t old = ::umask(0077);
    const auto error =
        writeFileAtomically(path, "a 1\n", AtomicWrite{0644, Durability::Atomic, true});
    const auto masked = writeFileAtomically(dir / "masked.prom", "a 1\n");
    ::umask(old);
    REQUIRE_FALSE(error);
    REQUIRE_FALSE(masked);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    REQUIRE(::stat((dir / "masked.prom").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str() == "a 1\n");
    CHECK_FALSE(std::filesystem::exists(dir / ".dmsd.prom.tmp"));
}
