// `dmsd analyze` end to end: the built dmsd binary against a spawned Ollama
// emulator, on videos generated at test time (docs/interfaces.md sections 1 and 6).

#include <algorithm>
#include <array>
#include <csignal>
#include <fstream>
#include <map>
#include <netinet/in.h>
#include <set>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "base/base64.h"
#include "base/unique_fd.h"
#include "test/support/child_process.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

namespace json = boost::json;
using dmsd::test::ChildProcess;
using dmsd::test::Rgb;
using dmsd::test::TempDir;
using dmsd::test::VideoSegment;
using dmsd::test::VideoSpec;
using namespace std::chrono_literals;

namespace {

const char* const kModel = "llava:7b-v1.6-mistral-q2_K";

/// A running emulator; its URL comes from its first output line.
class Emulator {
public:
    explicit Emulator(std::vector<std::string> extra) : process_(argv(std::move(extra))) {
        auto line = process_.waitForLine(
            [](const std::string& l) { return l.rfind("listening on ", 0) == 0; }, 15s);
        REQUIRE(line);
        url_ = line->substr(std::string("listening on ").size());
    }
    const std::string& url() const { return url_; }
    /// SIGKILL (no goodbye to its clients), and waits until it is gone.
    void kill() {
        process_.signal(SIGKILL);
        REQUIRE(process_.wait(10s));
    }

private:
    static std::vector<std::string> argv(std::vector<std::string> extra) {
        std::vector<std::string> args{DMSD_OLLAMA_EMULATOR, "--port", "0", "--preloaded"};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    ChildProcess process_;
    std::string url_;
};

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    REQUIRE(out.good());
}

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream buffer;
    buffer << in.rdbuf();
    return buffer.str();
}

std::filesystem::path writeConfig(const TempDir& dir, const std::string& url,
                                  const std::string& name = "dmsd.yaml",
                                  const std::string& mode = "parallel") {
    const auto path = dir / name;
    writeFile(path, "version: \"analyze-test\"\n"
                    "vision: { enabled: false }\n" // test:ball has no face
                    "capture: { source: \"test:ball\", width: 160, height: 120, fps: 10 }\n"
                    "sampling: { interval: 1s, frames_per_sequence: 2, motion_threshold: 0.02, "
                    "max_static_skip: 10s }\n"
                    "encode: { jpeg_quality: 70 }\n"
                    "llm: { url: \"" +
                        url + "\", model: \"" + kModel + "\", mode: " + mode +
                        ", max_in_flight: 4, timeout: 10s }\n"
                        "alerts:\n"
                        "  drowsiness: { raise_after: 2s, clear_after: 4s, critical_after: 6s, "
                        "cooldown: 10s }\n"
                        "notify: { dbus: { enabled: false }, can: { enabled: false }, "
                        "snapshots: { enabled: false } }\n");
    return path;
}

VideoSegment moving(double seconds, Rgb colour) {
    return VideoSegment{seconds, colour, true};
}

/// Videos shared by the tests (generated once per test process).
struct Videos {
    TempDir dir{"dmsd-analyze-videos"};
    std::string shortMp4, longAvi, staticMp4, corrupt, missing;

    Videos() {
        VideoSpec spec;
        spec.width = 160;
        spec.height = 120;
        spec.fps = 10;
        spec.segments = {moving(3.0, {120, 120, 120})};
        shortMp4 = (dir / "short.mp4").string();
        dmsd::test::generateVideo(shortMp4, spec);

        spec.container = dmsd::test::VideoContainer::AviMjpeg;
        spec.segments = {moving(2.0, {30, 160, 30}), moving(3.0, {30, 30, 160})};
        longAvi = (dir / "long.avi").string();
        dmsd::test::generateVideo(longAvi, spec);

        spec.container = dmsd::test::VideoContainer::Mp4H264;
        spec.segments = {VideoSegment{4.0, {90, 90, 90}, false}};
        staticMp4 = (dir / "static.mp4").string();
        dmsd::test::generateVideo(staticMp4, spec);

        corrupt = (dir / "corrupt.mp4").string();
        dmsd::test::writeCorruptVideo(corrupt, dmsd::test::Corruption::Garbage);
        missing = (dir / "missing.mp4").string();
    }
};

const Videos& videos() {
    static Videos instance;
    return instance;
}

struct RunResult {
    int exitCode = -1;
    std::vector<json::object> lines;
    std::string raw;
};

std::vector<json::object> parseLines(const std::string& raw) {
    std::vector<json::object> out;
    std::istringstream in(raw);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty()) {
            continue;
        }
        boost::system::error_code ec;
        json::value value = json::parse(line, ec);
        INFO("line: " << line);
        REQUIRE(!ec);
        REQUIRE(value.is_object());
        out.push_back(value.as_object());
    }
    return out;
}

RunResult runAnalyze(const std::vector<std::string>& args, bool mergeStderr = false,
                     std::vector<std::pair<std::string, std::string>> env = {}) {
    std::vector<std::string> argv{DMSD_BINARY, "analyze"};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess child(ChildProcess::Options{argv, std::move(env), mergeStderr, false});
    RunResult result;
    result.raw = child.readAll(90s);
    auto code = child.wait(10s);
    REQUIRE(code);
    result.exitCode = *code;
    return result;
}

RunResult runAnalyzeJson(const std::vector<std::string>& args) {
    RunResult result = runAnalyze(args);
    result.lines = parseLines(result.raw);
    return result;
}

bool isNumber(const json::value& v) {
    return v.is_double() || v.is_int64() || v.is_uint64();
}

double number(const json::value& v) {
    return v.to_number<double>();
}

/// Checks one `sequence` line against docs/interfaces.md section 6.
void checkSequenceShape(const json::object& line, std::size_t framesPerSequence) {
    INFO(json::serialize(line));
    REQUIRE(line.at("type") == "sequence");
    REQUIRE(line.at("video").is_string());
    REQUIRE((line.at("sequence_id").is_int64() || line.at("sequence_id").is_uint64()));
    REQUIRE(isNumber(line.at("t_start_s")));
    REQUIRE(isNumber(line.at("t_end_s")));
    CHECK(number(line.at("t_end_s")) > number(line.at("t_start_s")));
    const auto& pts = line.at("frames_pts_s").as_array();
    CHECK(pts.size() == framesPerSequence);
    double previous = -1.0;
    for (const auto& p : pts) {
        REQUIRE(isNumber(p));
        CHECK(number(p) >= previous);
        CHECK(number(p) >= number(line.at("t_start_s")) - 1e-6);
        CHECK(number(p) <= number(line.at("t_end_s")) + 1e-6);
        previous = number(p);
    }
    const std::string mode(line.at("mode").as_string());
    CHECK((mode == "parallel" || mode == "combined" || mode == "sequential"));
    REQUIRE((line.at("latency_ms").is_int64() || line.at("latency_ms").is_uint64()));
    CHECK(line.at("latency_ms").to_number<std::int64_t>() >= 0);

    const auto& analyses = line.at("analyses").as_object();
    for (const char* name :
         {"face_state", "attention", "hand_position", "general_scene", "impaired_driving"}) {
        INFO(name);
        REQUIRE(analyses.contains(name));
        REQUIRE(analyses.at(name).is_object());
    }
    const auto& face = analyses.at("face_state").as_object();
    if (!face.contains("error")) {
        CHECK(face.at("state").is_string());
        CHECK(face.at("eyes_closed").is_bool());
        CHECK(face.at("yawning").is_bool());
        CHECK(isNumber(face.at("confidence")));
    }
    const auto& attention = analyses.at("attention").as_object();
    if (!attention.contains("error")) {
        CHECK(attention.at("looking_at_road").is_bool());
        CHECK(attention.at("gaze").is_string());
    }
    const auto& hands = analyses.at("hand_position").as_object();
    if (!hands.contains("error")) {
        CHECK(isNumber(hands.at("hands_on_wheel")));
        CHECK(hands.at("holding").is_string());
    }
    const auto& scene = analyses.at("general_scene").as_object();
    if (!scene.contains("error")) {
        CHECK(scene.at("description").is_string());
        CHECK(scene.at("driver_visible").is_bool());
    }
    const auto& impaired = analyses.at("impaired_driving").as_object();
    if (!impaired.contains("error")) {
        CHECK(impaired.at("concern").is_string());
        CHECK(impaired.at("indicators").is_array());
    }
    for (const auto& alert : line.at("alerts").as_array()) {
        const auto& a = alert.as_object();
        CHECK(a.at("kind").is_string());
        CHECK(a.at("level").is_string());
        CHECK(isNumber(a.at("confidence")));
    }
}

/// Lines grouped by video, in output order.
std::map<std::string, std::vector<json::object>> byVideo(const std::vector<json::object>& lines) {
    std::map<std::string, std::vector<json::object>> out;
    for (const auto& line : lines) {
        out[std::string(line.at("video").as_string())].push_back(line);
    }
    return out;
}

/// Per video: sequence lines in order (each followed by an alert line per
/// transition it carries), then exactly one summary, last.
void checkPerVideoOrder(const std::map<std::string, std::vector<json::object>>& groups) {
    for (const auto& [video, lines] : groups) {
        INFO("video " << video);
        REQUIRE(!lines.empty());
        CHECK(lines.back().at("type") == "summary");
        std::int64_t lastId = 0;
        double lastStart = -1.0;
        for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
            if (lines[i].at("type") == "alert") {
                continue; // checked by checkAlertLines
            }
            REQUIRE(lines[i].at("type") == "sequence");
            const auto id = lines[i].at("sequence_id").to_number<std::int64_t>();
            CHECK(id > lastId);
            lastId = id;
            const double start = number(lines[i].at("t_start_s"));
            CHECK(start >= lastStart);
            lastStart = start;
        }
    }
}

/// Alert lines: one per transition carried by the sequence line (or the
/// summary) they follow, with the same figures, the source named.
std::size_t checkAlertLines(const std::vector<json::object>& lines) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const json::object& line = lines[i];
        if (line.at("type") != "sequence" && line.at("type") != "summary") {
            continue;
        }
        // A summary's alerts come before it; a sequence's after it.
        const auto& carried = line.at("alerts").as_array();
        const bool before = line.at("type") == "summary";
        for (std::size_t k = 0; k < carried.size(); ++k) {
            const std::size_t at = before ? i - carried.size() + k : i + 1 + k;
            INFO(json::serialize(line));
            REQUIRE(at < lines.size());
            const json::object& alert = lines[at];
            const json::object& transition = carried[k].as_object();
            CHECK(alert.at("type") == "alert");
            CHECK(alert.at("video") == line.at("video"));
            CHECK(alert.at("kind") == transition.at("kind"));
            CHECK(alert.at("level") == transition.at("level"));
            CHECK(alert.at("event") == transition.at("transition"));
            CHECK(number(alert.at("t_s")) == number(transition.at("t_s")));
            CHECK(number(alert.at("confidence")) == number(transition.at("confidence")));
            const std::string kind(alert.at("kind").as_string());
            CHECK(alert.at("source") ==
                  (kind == "ANALYZER_FAULT" || kind == "CAMERA_FAULT" ? "health" : "model"));
            ++count;
        }
    }
    std::size_t alertLines = 0;
    for (const auto& line : lines) {
        alertLines += line.at("type") == "alert" ? 1 : 0;
    }
    CHECK(alertLines == count);
    return count;
}

/// The highest `concurrency` the emulator logged for a chat request.
std::int64_t maxLoggedConcurrency(const std::filesystem::path& log) {
    std::int64_t best = 0;
    for (const auto& line : parseLines(readFile(log))) {
        if (line.contains("concurrency") && line.at("concurrency").is_int64()) {
            best = std::max(best, line.at("concurrency").as_int64());
        }
    }
    return best;
}

/// A loopback port nobody listens on (bound, then released).
int freePort() {
    dmsd::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    return ntohs(addr.sin_port);
}

} // namespace

TEST_CASE("analyze: mixed batch keeps the server busy, reports bad inputs, exit 1", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    const auto log = dir / "emulator.jsonl";
    Emulator emulator({"--slots", "4", "--latency-ms", "60", "--log", log.string()});
    const auto config = writeConfig(dir, emulator.url());

    const RunResult run =
        runAnalyzeJson({"--config", config.string(), "--jobs", "3", "--quiet", v.shortMp4,
                        v.longAvi, v.staticMp4, v.corrupt, v.missing});
    INFO(run.raw);
    CHECK(run.exitCode == 1);

    std::size_t sequences = 0;
    for (const auto& line : run.lines) {
        const std::string type(line.at("type").as_string());
        REQUIRE((type == "sequence" || type == "summary" || type == "alert"));
        if (type == "sequence") {
            checkSequenceShape(line, 2);
            ++sequences;
        }
    }
    CHECK(sequences > 0);
    auto groups = byVideo(run.lines);
    REQUIRE(groups.size() == 5);
    checkPerVideoOrder(groups);
    checkAlertLines(run.lines);

    for (const auto& video : {v.shortMp4, v.longAvi, v.staticMp4}) {
        INFO(video);
        const auto& lines = groups.at(video);
        const auto& summary = lines.back();
        CHECK(summary.at("status") == "ok");
        CHECK(!summary.contains("error"));
        CHECK(summary.at("sequences_analysed").to_number<std::size_t>() == lines.size() - 1);
        CHECK(summary.at("failures").to_number<std::size_t>() == 0);
        CHECK(summary.at("alerts_raised").is_object());
        CHECK(isNumber(summary.at("time_analysed_s")));
    }
    CHECK(groups.at(v.shortMp4).size() - 1 >= 2);
    CHECK(groups.at(v.longAvi).size() - 1 >= 4);
    const auto& staticSummary = groups.at(v.staticMp4).back();
    CHECK(staticSummary.at("sequences_skipped_static").to_number<std::size_t>() >= 2);
    CHECK(staticSummary.at("sequences_analysed").to_number<std::size_t>() == 1);

    for (const auto& video : {v.corrupt, v.missing}) {
        INFO(video);
        const auto& lines = groups.at(video);
        REQUIRE(lines.size() == 1);
        CHECK(lines[0].at("status") == "failed");
        CHECK(!lines[0].at("error").as_string().empty());
    }
    CHECK(std::string(groups.at(v.missing)[0].at("error").as_string()).find("missing.mp4") !=
          std::string::npos);

    // Several videos and pipelined sequences: the emulator ran requests at once.
    CHECK(maxLoggedConcurrency(log) > 1);
}

TEST_CASE("analyze: a FIFO given as a video is refused at once, exit 1", "[analyze]") {
    TempDir dir("dmsd-analyze-hostile");
    Emulator emulator({"--slots", "4", "--latency-ms", "20"});
    const auto config = writeConfig(dir, emulator.url());
    const std::string fifo = (dir / "fifo.mp4").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Before: the FIFO hung analyze in the duration probe until SIGKILL.
    const RunResult run = runAnalyzeJson({"--config", config.string(), "--quiet", fifo});
    INFO(run.raw);
    CHECK(run.exitCode == 1);
    auto groups = byVideo(run.lines);
    REQUIRE(groups.count(fifo) == 1);
    const auto& fifoLines = groups.at(fifo);
    REQUIRE(fifoLines.size() == 1);
    CHECK(fifoLines[0].at("status") == "failed");
    CHECK_THAT(std::string(fifoLines[0].at("error").as_string()),
               Catch::Contains("is a FIFO (named pipe), not a regular file"));
}

TEST_CASE("analyze: a truncated video is partial, not complete, exit 1", "[analyze]") {
    TempDir dir("dmsd-analyze-hostile");
    Emulator emulator({"--slots", "4", "--latency-ms", "20"});
    const auto config = writeConfig(dir, emulator.url());
    // A 9 s MP4 with its index first (faststart, as cameras and phones write
    // them), cut to its first third: the index still announces 9 s, and
    // GStreamer plays what is left to an ordinary end of stream.
    const std::string cut = (dir / "cut.mp4").string();
    {
        ChildProcess make(std::vector<std::string>{
            "gst-launch-1.0", "-q", "videotestsrc", "pattern=ball", "num-buffers=90", "!",
            "video/x-raw,width=160,height=120,framerate=10/1", "!", "x264enc", "!", "mp4mux",
            "faststart=true", "!", "filesink", "location=" + cut});
        REQUIRE(make.wait(60s) == 0);
    }
    std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 3);
    const RunResult run = runAnalyzeJson({"--config", config.string(), "--quiet", cut});
    INFO(run.raw);
    CHECK(run.exitCode == 1);
    REQUIRE(!run.lines.empty());
    const json::object& summary = run.lines.back();
    REQUIRE(summary.at("type") == "summary");
    CHECK(summary.at("status") == "partial");
    CHECK(number(summary.at("expected_duration_s")) == Approx(9.0).margin(0.2));
    CHECK(number(summary.at("position_s")) < 6.0);
    CHECK_THAT(std::string(summary.at("error").as_string()), Catch::Contains("announces"));
}

TEST_CASE("analyze: output is the same for --jobs 1 and --jobs 4 but for timings", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    Emulator emulator({"--slots", "4", "--latency-ms", "20"});
    const auto config = writeConfig(dir, emulator.url());
    const std::vector<std::string> inputs{v.shortMp4, v.longAvi, v.staticMp4};

    auto normalised = [&](const std::string& jobs) {
        std::vector<std::string> args{"--config", config.string(), "--jobs", jobs, "--quiet"};
        args.insert(args.end(), inputs.begin(), inputs.end());
        RunResult run = runAnalyzeJson(args);
        INFO(run.raw);
        CHECK(run.exitCode == 0);
        std::map<std::string, std::vector<std::string>> out;
        for (auto& [video, lines] : byVideo(run.lines)) {
            for (auto& line : lines) {
                line.erase("latency_ms");
                out[video].push_back(json::serialize(line));
            }
        }
        return out;
    };
    const auto one = normalised("1");
    const auto four = normalised("4");
    REQUIRE(one.size() == inputs.size());
    CHECK(one == four);
}

TEST_CASE("analyze: --shard partitions the inputs exactly", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    Emulator emulator({"--slots", "4"});
    const auto config = writeConfig(dir, emulator.url());
    const std::vector<std::string> inputs{v.shortMp4, v.missing, v.staticMp4, v.corrupt, v.longAvi};

    std::vector<std::set<std::string>> shards;
    // "auto" as a Slurm array task (--array=1-2) would see it: the second shard.
    const std::vector<std::pair<std::string, std::string>> slurm{{"SLURM_ARRAY_TASK_ID", "2"},
                                                                 {"SLURM_ARRAY_TASK_COUNT", "2"},
                                                                 {"SLURM_ARRAY_TASK_MIN", "1"}};
    for (const char* shard : {"0/2", "auto"}) {
        std::vector<std::string> args{"--config", config.string(), "--shard", shard, "--quiet"};
        args.insert(args.end(), inputs.begin(), inputs.end());
        RunResult run = runAnalyze(args, false,
                                   shard == std::string("auto")
                                       ? slurm
                                       : std::vector<std::pair<std::string, std::string>>{});
        run.lines = parseLines(run.raw);
        std::set<std::string> seen;
        for (const auto& line : run.lines) {
            if (line.at("type") == "summary") {
                seen.insert(std::string(line.at("video").as_string()));
            }
        }
        shards.push_back(seen);
    }
    const std::set<std::string> expect0{v.shortMp4, v.staticMp4, v.longAvi};
    const std::set<std::string> expect1{v.missing, v.corrupt};
    CHECK(shards[0] == expect0);
    CHECK(shards[1] == expect1);
    std::set<std::string> all(shards[0]);
    all.insert(shards[1].begin(), shards[1].end());
    CHECK(all.size() == inputs.size());

    const RunResult bad =
        runAnalyze({"--config", config.string(), "--shard", "2/2", v.shortMp4}, true);
    CHECK(bad.exitCode == 2);
    CHECK(bad.raw.find("--shard") != std::string::npos);
    // auto outside a job engine: the variables it looked for are named.
    const RunResult noEngine =
        runAnalyze({"--config", config.string(), "--shard", "auto", v.shortMp4}, true,
                   {{"JOB_COMPLETION_INDEX", ""}, {"SLURM_ARRAY_TASK_ID", ""}});
    CHECK(noEngine.exitCode == 2);
    CHECK(noEngine.raw.find("SLURM_ARRAY_TASK_ID") != std::string::npos);
}

TEST_CASE("analyze: an unusable model server is exit 3 with a clear message", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");

    SECTION("unreachable") {
        const std::string url = "http://127.0.0.1:" + std::to_string(freePort());
        const auto config = writeConfig(dir, url);
        const RunResult run = runAnalyze({"--config", config.string(), v.shortMp4}, true);
        INFO(run.raw);
        CHECK(run.exitCode == 3);
        CHECK(run.raw.find(url) != std::string::npos);
        CHECK(run.raw.find("\"type\"") == std::string::npos);
    }
    SECTION("model not pulled") {
        Emulator emulator({"--model", "other:latest=completion,vision"});
        const auto config = writeConfig(dir, emulator.url());
        const RunResult run = runAnalyze({"--config", config.string(), v.shortMp4}, true);
        INFO(run.raw);
        CHECK(run.exitCode == 3);
        CHECK(run.raw.find(kModel) != std::string::npos);
    }
}

TEST_CASE("analyze: a scripted sleepy segment raises DROWSINESS at the right video time",
          "[analyze]") {
    TempDir dir("dmsd-analyze");
    const auto script = dir / "script.json";
    writeFile(script, R"({"rules":[{"analysis":"face_state","color":[200,30,30],"tolerance":60,
        "answer":{"state":"SLEEPY","eyes_closed":true,"yawning":false,"confidence":0.9}}]})");
    Emulator emulator({"--slots", "4", "--script", script.string()});
    const auto config = writeConfig(dir, emulator.url());

    VideoSpec spec;
    spec.width = 160;
    spec.height = 120;
    spec.fps = 10;
    spec.segments = {moving(3.0, {30, 200, 30}), moving(6.0, {200, 30, 30})};
    const auto video = (dir / "sleepy.mp4").string();
    dmsd::test::generateVideo(video, spec);

    const auto evidence = dir / "evidence";
    const RunResult run = runAnalyzeJson(
        {"--config", config.string(), "--quiet", "--evidence", evidence.string(), video});
    INFO(run.raw);
    REQUIRE(run.exitCode == 0);
    std::optional<double> raisedAt;
    std::optional<double> lineEnd;
    for (const auto& line : run.lines) {
        if (line.at("type") != "sequence") {
            continue;
        }
        const double tEnd = number(line.at("t_end_s"));
        const auto& face = line.at("analyses").at("face_state").as_object();
        if (tEnd <= 3.0) {
            CHECK(face.at("state") == "AWAKE");
        }
        for (const auto& alert : line.at("alerts").as_array()) {
            if (alert.at("kind") == "DROWSINESS" && alert.at("transition") == "raised" &&
                !raisedAt) {
                raisedAt = number(alert.at("t_s"));
                lineEnd = tEnd;
                CHECK(alert.at("level") == "warning");
            }
        }
    }
    REQUIRE(raisedAt);
    // Red from 3 s; the engine needs the condition sustained for raise_after (2 s).
    CHECK(*raisedAt >= 5.0);
    CHECK(*raisedAt <= 8.0);
    CHECK(*lineEnd >= *raisedAt - 1e-6);
    const auto& summary = run.lines.back();
    REQUIRE(summary.at("type") == "summary");
    CHECK(summary.at("alerts_raised").at("DROWSINESS").to_number<int>() == 1);
    // The same decisions as alert lines of their own.
    CHECK(checkAlertLines(run.lines) >= 1);
    std::size_t raisedLines = 0;
    for (const auto& line : run.lines) {
        if (line.at("type") == "alert" && line.at("event") == "raised") {
            ++raisedLines;
            CHECK(line.at("kind") == "DROWSINESS");
            CHECK(number(line.at("t_s")) == *raisedAt);
            CHECK(line.at("source") == "model");
        }
    }
    CHECK(raisedLines == 1);

    // --evidence: the raise's frames and sidecar, as dmsd run's snapshots.
    std::vector<std::filesystem::path> snapshots;
    for (const auto& entry : std::filesystem::directory_iterator(evidence)) {
        snapshots.push_back(entry.path());
    }
    REQUIRE(snapshots.size() == 1);
    CHECK(snapshots[0].filename().string().ends_with("-DROWSINESS"));
    std::ifstream sidecarFile(snapshots[0] / "alert.json");
    const std::string sidecarText((std::istreambuf_iterator<char>(sidecarFile)),
                                  std::istreambuf_iterator<char>());
    const json::object sidecar = json::parse(sidecarText).as_object();
    CHECK(sidecar.at("video").at("path") == video.c_str());
    CHECK(number(sidecar.at("video").at("t_s")) == Approx(*raisedAt));
    CHECK(sidecar.at("alert").at("kind") == "DROWSINESS");
    CHECK(sidecar.at("analyses").at("face_state").at("state") == "SLEEPY");
    const auto& images = sidecar.at("sequence").at("images").as_array();
    REQUIRE(images.size() == 2);
    for (const auto& image : images) {
        std::ifstream jpeg(snapshots[0] / std::string(image.at("file").as_string()),
                           std::ios::binary);
        std::array<unsigned char, 2> magic{};
        jpeg.read(reinterpret_cast<char*>(magic.data()), 2);
        CHECK(magic == std::array<unsigned char, 2>{0xFF, 0xD8});
    }

    // dmsd report reads the same output back into an interval from that raise.
    const auto jsonl = dir / "out.jsonl";
    writeFile(jsonl, run.raw);
    const auto csv = dir / "intervals.csv";
    ChildProcess report(std::vector<std::string>{DMSD_BINARY, "report", "--quiet", "--csv",
                                                 csv.string(), jsonl.string()});
    const auto reportCode = report.wait(30s);
    REQUIRE(reportCode);
    CHECK(*reportCode == 0);
    std::ifstream rows(csv);
    std::string header;
    std::string row;
    std::getline(rows, header);
    std::getline(rows, row);
    CHECK(header == "video,kind,peak_level,start_s,end_s,duration_s,source,open_at_end\r");
    // video,kind,peak_level,start_s,...: the peak may be critical if it escalated by the end.
    CHECK(row.rfind(fmt::format("{},DROWSINESS,", video), 0) == 0);
    CHECK(row.find(fmt::format(",{:.3f},", *raisedAt)) != std::string::npos);
    CHECK(row.find(",model,") != std::string::npos);

    // ... and its HTML shows the raise's frames, the very files of the evidence.
    const auto html = dir / "report.html";
    ChildProcess htmlReport(std::vector<std::string>{DMSD_BINARY, "report", "--quiet", "--html",
                                                     html.string(), "--evidence", evidence.string(),
                                                     jsonl.string()});
    const auto htmlCode = htmlReport.wait(30s);
    REQUIRE(htmlCode);
    CHECK(*htmlCode == 0);
    const std::string page = readFile(html);
    for (const auto& image : images) {
        const std::string jpeg = readFile(snapshots[0] / std::string(image.at("file").as_string()));
        CHECK(page.find("data:image/jpeg;base64," +
                        dmsd::base64(reinterpret_cast<const unsigned char*>(jpeg.data()),
                                     jpeg.size())) != std::string::npos);
    }
}

TEST_CASE("analyze: SIGINT stops cleanly with complete lines and exit 130", "[analyze]") {
    TempDir dir("dmsd-analyze");
    Emulator emulator({"--slots", "1", "--latency-ms", "150"});
    const auto config = writeConfig(dir, emulator.url());
    VideoSpec spec;
    spec.width = 160;
    spec.height = 120;
    spec.fps = 10;
    // A new colour every second: every window differs, none is skipped as static.
    spec.segments.clear();
    for (int k = 0; k < 10; ++k) {
        spec.segments.push_back(moving(1.0, {static_cast<std::uint8_t>(40 + 20 * k), 120,
                                             static_cast<std::uint8_t>(220 - 15 * k)}));
    }
    const auto video = (dir / "long.mp4").string();
    dmsd::test::generateVideo(video, spec);
    const auto output = dir / "out.jsonl";

    ChildProcess child(std::vector<std::string>{DMSD_BINARY, "analyze", "--config", config.string(),
                                                "--quiet", "--output", output.string(), video});
    REQUIRE(dmsd::test::waitUntil([&] { return readFile(output).find('\n') != std::string::npos; },
                                  30s));
    child.signal(SIGINT);
    auto code = child.wait(15s);
    REQUIRE(code);
    CHECK(*code == 130);

    const std::string raw = readFile(output);
    REQUIRE(!raw.empty());
    CHECK(raw.back() == '\n');
    const auto lines = parseLines(raw);
    REQUIRE(lines.size() >= 2);
    for (std::size_t i = 0; i + 1 < lines.size(); ++i) {
        checkSequenceShape(lines[i], 2);
    }
    CHECK(lines.back().at("type") == "summary");
    CHECK(lines.back().at("status") == "interrupted");
    // Interrupted well before the end: 10 sequences take ~10 s on one slot.
    CHECK(lines.size() - 1 < 10);
}

TEST_CASE("analyze: the first progress line names the real total", "[analyze][progress]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    Emulator emulator({"--slots", "2", "--latency-ms", "20"});
    const auto config = writeConfig(dir, emulator.url());
    const auto output = dir / "out.jsonl";
    // Plain lines every 5 s (the default): these videos are done sooner, so
    // only the line printed at the start and the final one can appear.
    const RunResult run = runAnalyze({"--config", config.string(), "--jobs", "2", "--progress",
                                      "plain", "-o", output.string(), v.shortMp4, v.longAvi},
                                     /*mergeStderr=*/true);
    INFO(run.raw);
    REQUIRE(run.exitCode == 0);
    std::vector<std::string> lines;
    std::istringstream in(run.raw);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("dmsd analyze: ", 0) == 0 && line.find(" sequences") != std::string::npos) {
            lines.push_back(line);
        }
    }
    REQUIRE(lines.size() >= 2);
    CHECK(lines.front().find("(done)") == std::string::npos);
    CHECK(lines.back().find("(done)") != std::string::npos);
    // "D/~T sequences": T of the first line is the count the run really made.
    auto figures = [](const std::string& line) {
        const auto slash = line.find("/~");
        const auto space = line.rfind(' ', slash);
        return std::pair<std::uint64_t, std::uint64_t>(
            std::stoull(line.substr(space + 1, slash - space - 1)),
            std::stoull(line.substr(slash + 2)));
    };
    const auto [firstDone, firstTotal] = figures(lines.front());
    const auto [lastDone, lastTotal] = figures(lines.back());
    CHECK(lastDone == lastTotal);
    CHECK(firstTotal == lastDone);
    CHECK(firstDone < firstTotal);
    // 3 s and 5 s at a 1 s interval.
    CHECK(lastDone >= 7);
}

TEST_CASE("analyze: --realtime replays at the video's frame rate", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    Emulator emulator({"--slots", "4", "--latency-ms", "50"});
    const auto config = writeConfig(dir, emulator.url());
    const auto started = std::chrono::steady_clock::now();
    const RunResult run =
        runAnalyzeJson({"--config", config.string(), "--realtime", "--quiet", v.shortMp4});
    const auto elapsed = std::chrono::steady_clock::now() - started;
    INFO(run.raw);
    CHECK(run.exitCode == 0);
    REQUIRE(!run.lines.empty());
    const auto& summary = run.lines.back();
    CHECK(summary.at("type") == "summary");
    CHECK(summary.at("status") == "ok");
    CHECK(summary.at("sequences_superseded").is_number());
    CHECK(summary.at("sequences_analysed").to_number<std::size_t>() >= 1);
    for (std::size_t i = 0; i + 1 < run.lines.size(); ++i) {
        checkSequenceShape(run.lines[i], 2);
    }
    // Played at its own rate: a 3 s video cannot be done in much less than 3 s.
    CHECK(elapsed >= 2s);
}

TEST_CASE("analyze: usage and configuration errors are exit 2", "[analyze]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    const auto config = writeConfig(dir, "http://127.0.0.1:9");

    auto noVideo = runAnalyze({"--config", config.string()}, true);
    CHECK(noVideo.exitCode == 2);
    CHECK(noVideo.raw.find("VIDEO") != std::string::npos);

    auto jobs = runAnalyze({"--config", config.string(), "--jobs", "0", v.shortMp4}, true);
    CHECK(jobs.exitCode == 2);
    CHECK(jobs.raw.find("--jobs") != std::string::npos);

    auto shard = runAnalyze({"--config", config.string(), "--shard", "x", v.shortMp4}, true);
    CHECK(shard.exitCode == 2);

    // --evidence under a regular file: refused before anything is analysed.
    writeFile(dir / "plain-file", "x");
    auto evidence = runAnalyze({"--config", config.string(), "--evidence",
                                (dir / "plain-file" / "evidence").string(), v.shortMp4},
                               true);
    CHECK(evidence.exitCode == 2);
    CHECK(evidence.raw.find("--evidence") != std::string::npos);

    const auto bad = dir / "bad.yaml";
    writeFile(bad, "sampling: { intervall: 2s }\n");
    auto invalid = runAnalyze({"--config", bad.string(), v.shortMp4}, true);
    CHECK(invalid.exitCode == 2);
    CHECK(invalid.raw.find("intervall") != std::string::npos);
}

namespace {

/// writeConfig() with `llm.url` a list of \a urls.
std::filesystem::path writePoolConfig(const TempDir& dir, const std::vector<std::string>& urls) {
    const auto path = writeConfig(dir, urls.front());
    std::string text = readFile(path);
    const std::string one = "url: \"" + urls.front() + "\"";
    const auto at = text.find(one);
    REQUIRE(at != std::string::npos);
    text.replace(at, one.size(), fmt::format("url: [\"{}\"]", fmt::join(urls, "\", \"")));
    writeFile(path, text);
    return path;
}

/// Chat requests in an emulator's request log (the warm-up's load aside).
std::size_t loggedChats(const std::filesystem::path& log) {
    std::size_t chats = 0;
    for (const auto& line : parseLines(readFile(log))) {
        if (line.contains("path") && line.at("path") == "/api/chat" &&
            !(line.contains("load_only") && line.at("load_only") == true)) {
            ++chats;
        }
    }
    return chats;
}

/// Every sequence line has every analysis answered; the number of them.
std::size_t checkAllAnswered(const std::vector<json::object>& lines) {
    std::size_t sequences = 0;
    for (const auto& line : lines) {
        if (line.at("type") != "sequence") {
            continue;
        }
        ++sequences;
        INFO(json::serialize(line));
        for (const auto& analysis : line.at("analyses").as_object()) {
            CHECK_FALSE(analysis.value().as_object().contains("error"));
        }
    }
    return sequences;
}

/// A video of \a seconds with a new colour every second: no window is static.
std::string changingVideo(const TempDir& dir, int seconds) {
    VideoSpec spec;
    spec.width = 160;
    spec.height = 120;
    spec.fps = 10;
    spec.segments.clear();
    for (int k = 0; k < seconds; ++k) {
        spec.segments.push_back(moving(1.0, {static_cast<std::uint8_t>(40 + (20 * k) % 180), 120,
                                             static_cast<std::uint8_t>(220 - (15 * k) % 180)}));
    }
    const auto video = (dir / fmt::format("changing{}.mp4", seconds)).string();
    dmsd::test::generateVideo(video, spec);
    return video;
}

} // namespace

TEST_CASE("analyze: two model servers of 1 and 3 slots answer every sequence", "[analyze][pool]") {
    const Videos& v = videos();
    TempDir dir("dmsd-analyze");
    const auto logOne = dir / "one.jsonl";
    const auto logThree = dir / "three.jsonl";
    Emulator one({"--slots", "1", "--latency-ms", "60", "--log", logOne.string()});
    Emulator three({"--slots", "3", "--latency-ms", "60", "--log", logThree.string()});
    const auto config = writePoolConfig(dir, {one.url(), three.url()});
    const auto video = changingVideo(dir, 8);

    const RunResult run = runAnalyzeJson(
        {"--config", config.string(), "--jobs", "3", "--quiet", v.shortMp4, v.longAvi, video});
    INFO(run.raw);
    CHECK(run.exitCode == 0);
    const std::size_t sequences = checkAllAnswered(run.lines);
    CHECK(sequences >= 10);
    for (const auto& [name, lines] : byVideo(run.lines)) {
        INFO(name);
        CHECK(lines.back().at("status") == "ok");
        CHECK(lines.back().at("failures").to_number<std::size_t>() == 0);
    }
    // Both servers were asked, and every request was answered by one of them.
    const std::size_t chatsOne = loggedChats(logOne);
    const std::size_t chatsThree = loggedChats(logThree);
    INFO("1 slot: " << chatsOne << " requests; 3 slots: " << chatsThree);
    CHECK(chatsOne > 0);
    CHECK(chatsThree > 0);
    CHECK(chatsOne + chatsThree >= sequences);
}

TEST_CASE("analyze: a model server killed mid-batch loses nothing while the other answers",
          "[analyze][pool]") {
    TempDir dir("dmsd-analyze");
    const auto logDoomed = dir / "doomed.jsonl";
    const auto logSurvivor = dir / "survivor.jsonl";
    Emulator doomed({"--slots", "2", "--latency-ms", "150", "--log", logDoomed.string()});
    Emulator survivor({"--slots", "2", "--latency-ms", "150", "--log", logSurvivor.string()});
    const std::string doomedUrl = doomed.url();
    const auto config = writePoolConfig(dir, {doomedUrl, survivor.url()});
    const auto video = changingVideo(dir, 12);
    const auto output = dir / "out.jsonl";

    ChildProcess child(
        ChildProcess::Options{{DMSD_BINARY, "analyze", "--config", config.string(), "--progress",
                               "none", "--output", output.string(), video},
                              {},
                              true,
                              false});
    // Killed once it has answered a few requests of the batch.
    REQUIRE(dmsd::test::waitUntil([&] { return loggedChats(logDoomed) >= 3; }, 60s));
    const std::size_t beforeKill = loggedChats(logDoomed);
    doomed.kill();
    const std::string stderrText = child.readAll(90s);
    auto code = child.wait(10s);
    REQUIRE(code);
    INFO(stderrText);
    CHECK(*code == 0);
    const auto lines = parseLines(readFile(output));
    const std::size_t sequences = checkAllAnswered(lines);
    CHECK(sequences >= 10);
    REQUIRE_FALSE(lines.empty());
    CHECK(lines.back().at("type") == "summary");
    CHECK(lines.back().at("status") == "ok");
    CHECK(lines.back().at("failures").to_number<std::size_t>() == 0);
    // The kill is reported on stderr (warnings show unless --quiet): the
    // server set aside, with the reason.
    CHECK_THAT(stderrText, Catch::Contains("model server " + doomedUrl + " set aside"));
    // Killed mid-batch: the survivor answered the rest.
    INFO("the killed server had " << beforeKill << " requests");
    CHECK(loggedChats(logSurvivor) > 0);
    CHECK(beforeKill < sequences * 3);
}
