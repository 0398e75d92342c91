// `dmsd run` with the per-frame vision, measured from outside: a 640x480@15
// video of a real face (test/vision/face_video.h) played like a camera, the
// Ollama emulator at 1500 ms per request with one slot (an Orin-class
// server) scripted to answer "awake and visible" whatever it sees, a private
// dbus-daemon, the shipped defaults. The video repeats: attentive 8 s, eyes
// closed 6 s, attentive 24 s (so that the next closure is past DROWSINESS's 30 s
// cooldown), empty seat 6 s. Prints:
//   - process CPU per second of video (utime + stime from /proc), vision on
//     and, in a second run of the same video, off;
//   - RSS with the landmark model loaded (VmRSS at the end, VmHWM peak, and
//     its anonymous and file-backed parts), on the H.264 video, on the same
//     video as MJPEG (what a USB camera sends; CPU too) and, in a fourth run
//     of 20 s, on raw frames as a V4L2 camera delivers them (test:ball);
//   - onset to AlertRaised on the bus, per kind (DROWSINESS from the eyes
//     closing, DRIVER_NOT_VISIBLE from the driver leaving), with READY=1 (the
//     first frame) as video time 0.
// Not a pass/fail test.
//   bench_vision_run [--cycles N]      (default 2: 88 s of video per run)
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "face_video.h"
#include "test/integration/harness.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

struct ProcSample {
    double cpuSeconds = 0;
    std::size_t rssKb = 0;
    std::size_t hwmKb = 0;
    std::size_t anonKb = 0; ///< RssAnon: the heap (the landmark model is here)
    std::size_t fileKb = 0; ///< RssFile: mapped files, the shared libraries
};

/// A /proc stat file (of a process or a thread): its name and its CPU
/// seconds (utime + stime).
struct StatLine {
    std::string name;
    double cpuSeconds = 0;
};

StatLine readStat(const std::filesystem::path& path) {
    std::ifstream stat(path);
    const std::string text((std::istreambuf_iterator<char>(stat)),
                           std::istreambuf_iterator<char>());
    StatLine out;
    const auto open = text.find('(');
    const auto close = text.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 > text.size()) {
        return out;
    }
    out.name = text.substr(open + 1, close - open - 1);
    std::istringstream rest(text.substr(close + 2));
    std::vector<std::string> fields;
    for (std::string field; fields.size() < 13 && rest >> field;) {
        fields.push_back(field);
    }
    if (fields.size() == 13) { // fields 14 and 15 of proc(5): utime, stime
        out.cpuSeconds =
            (std::stod(fields[11]) + std::stod(fields[12])) / double(::sysconf(_SC_CLK_TCK));
    }
    return out;
}

ProcSample sample(pid_t pid) {
    ProcSample s;
    s.cpuSeconds = readStat(fmt::format("/proc/{}/stat", pid)).cpuSeconds;
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            s.rssKb = std::stoul(line.substr(6));
        } else if (line.rfind("VmHWM:", 0) == 0) {
            s.hwmKb = std::stoul(line.substr(6));
        } else if (line.rfind("RssAnon:", 0) == 0) {
            s.anonKb = std::stoul(line.substr(8));
        } else if (line.rfind("RssFile:", 0) == 0) {
            s.fileKb = std::stoul(line.substr(8));
        }
    }
    return s;
}

/// CPU seconds of each thread of \a pid, summed by thread name.
std::map<std::string, double> threadCpu(pid_t pid) {
    std::map<std::string, double> out;
    std::error_code ec;
    for (const auto& task :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/task", pid), ec)) {
        StatLine line = readStat(task.path() / "stat");
        // GStreamer names its threads after elements ("qtdemux0:sink"):
        // the digits go, so that restarts add up under one name.
        std::erase_if(line.name, [](unsigned char c) { return std::isdigit(c) != 0; });
        out[line.name] += line.cpuSeconds;
    }
    return out;
}

struct Result {
    double cpuPerVideoSecondMs = 0;
    ProcSample end;
    std::vector<double> drowsy; ///< onset to raise, s
    std::vector<double> absent;
    std::map<std::string, double> threadMsPerS; ///< CPU per second of video, by thread name
};

/// What the daemon reads: the face video as H.264 in MP4 (a recording), as
/// MJPEG in AVI (what a USB cabin camera sends), or raw frames from
/// videotestsrc (a V4L2 camera's YUYV; no face, so no alert is awaited).
enum class Source { H264, Mjpeg, RawTest };

/// One run of `dmsd run` on \a source for \a videoS seconds.
Result runOnce(const FaceVideoSpec& spec, double videoS, bool vision, Source source) {
    Harness h;
    std::string camera = "test:ball";
    if (source != Source::RawTest) {
        const auto video = source == Source::H264 ? h.videoPath() : h.dir() / "driver.avi";
        generateFaceVideo(video, spec);
        camera = "file:" + video.string();
    }
    h.startBus();
    const auto script = h.dir() / "awake.json";
    std::ofstream(script) << R"({"rules":[],"defaults":{
      "face_state":{"state":"AWAKE","eyes_closed":false,"yawning":false,"confidence":0.9},
      "attention":{"looking_at_road":true,"gaze":"road","eyes_open":true,"confidence":0.9},
      "general_scene":{"description":"One driver.","driver_visible":true,"occupants":1}}})";
    h.startEmulator({"--slots", "1", "--latency-ms", "1500", "--script", script.string()});
    h.writeConfig(fmt::format(R"(version: "bench-vision"
capture: {{ source: "{}", width: 640, height: 480, fps: 15 }}
llm: {{ url: "{}" }}
notify:
  dbus: {{ enabled: true, bus: "{}" }}
  can: {{ enabled: false }}
  snapshots: {{ enabled: false }}
vision: {{ enabled: {} }}
)",
                              camera, h.emulatorUrl(), h.busAddress(), vision ? "true" : "false"));
    auto monitor = h.monitor();
    h.startDaemon();
    const auto ready = h.waitReady(60s);
    if (!ready) {
        throw std::runtime_error("no READY=1: " + h.daemonLog());
    }
    const ProcSample first = sample(h.daemon().pid());
    const auto firstThreads = threadCpu(h.daemon().pid());
    Result result;
    const std::size_t cycles = spec.segments.size() / 4;
    for (std::size_t c = 0; c < cycles && vision && source != Source::RawTest; ++c) {
        const double closedAt = segmentStart(spec, 4 * c + 1);
        const double emptyAt = segmentStart(spec, 4 * c + 3);
        if (auto s = waitSignal(*monitor, "AlertRaised", "DROWSINESS", 40s)) {
            result.drowsy.push_back(std::chrono::duration<double>(s->at - *ready).count() -
                                    closedAt);
        }
        if (auto s = waitSignal(*monitor, "AlertRaised", "DRIVER_NOT_VISIBLE", 40s)) {
            result.absent.push_back(std::chrono::duration<double>(s->at - *ready).count() -
                                    emptyAt);
        }
    }
    const auto until = *ready + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(videoS - 1.0));
    std::this_thread::sleep_until(until); // the video plays for its length: a measuring window
    const ProcSample last = sample(h.daemon().pid());
    const auto lastThreads = threadCpu(h.daemon().pid());
    const double wall = std::chrono::duration<double>(Clock::now() - *ready).count();
    result.cpuPerVideoSecondMs = (last.cpuSeconds - first.cpuSeconds) * 1000.0 / wall;
    for (const auto& [name, seconds] : lastThreads) {
        const auto before = firstThreads.find(name);
        const double start = before == firstThreads.end() ? 0.0 : before->second;
        result.threadMsPerS[name] = (seconds - start) * 1000.0 / wall;
    }
    result.end = last;
    return result;
}

void printTimes(const char* kind, const std::vector<double>& times) {
    fmt::print("{:26} ", kind);
    for (double t : times) {
        fmt::print(" {:.2f} s", t);
    }
    fmt::print("\n");
}

} // namespace

int main(int argc, char** argv) {
    int cycles = 2;
    if (argc == 3 && std::string(argv[1]) == "--cycles") {
        cycles = std::stoi(argv[2]);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: bench_vision_run [--cycles N]\n");
        return 2;
    }
    FaceVideoSpec spec;
    for (int c = 0; c < cycles; ++c) {
        spec.segments.push_back({8.0, DriverScene::Attentive});
        spec.segments.push_back({6.0, DriverScene::EyesClosed});
        spec.segments.push_back({24.0, DriverScene::Attentive}); // past the 30 s cooldown
        spec.segments.push_back({6.0, DriverScene::Empty});
    }
    const double videoS = segmentStart(spec, spec.segments.size());
    fmt::print("bench_vision_run ({} build): {:.0f} s of 640x480@15 video, emulator 1500 ms, "
               "1 slot\n",
               DMSD_BUILD_TYPE, videoS);
    const Result on = runOnce(spec, videoS, true, Source::H264);
    const Result off = runOnce(spec, videoS, false, Source::H264);
    // A camera delivers raw frames (V4L2 YUYV) or MJPEG, not H.264: the same
    // video as MJPEG, and the daemon on raw frames from videotestsrc, to tell
    // the decoder's memory (libav's frame pools and its shared libraries)
    // from the daemon's.
    const Result mjpeg = runOnce(spec, videoS, true, Source::Mjpeg);
    const Result raw = runOnce(spec, 20.0, true, Source::RawTest);
    fmt::print("\n== CPU per second of video ==\n");
    fmt::print("vision on   {:6.1f} ms/s ({:.1f}% of one core)\n", on.cpuPerVideoSecondMs,
               on.cpuPerVideoSecondMs / 10.0);
    fmt::print("vision off  {:6.1f} ms/s ({:.1f}% of one core)\n", off.cpuPerVideoSecondMs,
               off.cpuPerVideoSecondMs / 10.0);
    fmt::print("vision on, the same video as MJPEG (a USB camera's format) {:6.1f} ms/s "
               "(of which dmsd-vision {:.1f})\n",
               mjpeg.cpuPerVideoSecondMs,
               mjpeg.threadMsPerS.count("dmsd-vision") ? mjpeg.threadMsPerS.at("dmsd-vision")
                                                       : 0.0);
    fmt::print("\nby thread (ms per second of video; GStreamer's named after their elements)\n");
    std::map<std::string, std::pair<double, double>> threads;
    for (const auto& [name, ms] : on.threadMsPerS) {
        threads[name].first = ms;
    }
    for (const auto& [name, ms] : off.threadMsPerS) {
        threads[name].second = ms;
    }
    for (const auto& [name, ms] : threads) {
        if (ms.first >= 0.5 || ms.second >= 0.5) {
            fmt::print("  {:20} on {:6.1f}   off {:6.1f}\n", name, ms.first, ms.second);
        }
    }
    fmt::print("\n== Memory ==\n");
    fmt::print("vision on   RSS at the end {} kB, peak (VmHWM) {} kB\n", on.end.rssKb,
               on.end.hwmKb);
    fmt::print("vision off  RSS at the end {} kB, peak (VmHWM) {} kB\n", off.end.rssKb,
               off.end.hwmKb);
    fmt::print("            (RssAnon / RssFile: vision on {} / {} kB, off {} / {} kB)\n",
               on.end.anonKb, on.end.fileKb, off.end.anonKb, off.end.fileKb);
    fmt::print("vision on, MJPEG: RSS {} kB, peak {} kB (RssAnon {} kB, RssFile {} kB)\n",
               mjpeg.end.rssKb, mjpeg.end.hwmKb, mjpeg.end.anonKb, mjpeg.end.fileKb);
    fmt::print("vision on, raw frames (test:ball, 20 s, no H.264 decoder): RSS {} kB, peak {} kB "
               "(RssAnon {} kB, RssFile {} kB)\n",
               raw.end.rssKb, raw.end.hwmKb, raw.end.anonKb, raw.end.fileKb);
    fmt::print("\n== Onset to AlertRaised (video time, READY=1 = 0) ==\n");
    printTimes("DROWSINESS", on.drowsy);
    printTimes("DRIVER_NOT_VISIBLE", on.absent);
    printTimes("MJPEG: DROWSINESS", mjpeg.drowsy);
    printTimes("MJPEG: DRIVER_NOT_VISIBLE", mjpeg.absent);
    return 0;
}
