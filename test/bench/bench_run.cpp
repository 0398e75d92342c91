// `dmsd run` as deployed, measured from outside: a 640x480@15 video played
// like a camera, the Ollama emulator at L ms per request with 4 slots, a
// private dbus-daemon, the CAN stand-in socket (dmsd-testbed --can-socket), and
// the shipped defaults except a cooldown short enough for several alerts.
// The video alternates awake and sleepy segments; in a sleepy one the
// emulator also answers "looking at the phone, holding it" and a high
// impairment concern, so each segment raises a burst of alerts at once.
// Prints:
//   - process CPU per second of video (utime + stime from /proc);
//   - RSS over the run (VmRSS samples, VmHWM peak);
//   - alert latency: sleepy segment boundary -> AlertRaised(DROWSINESS) on
//     the bus and its CAN frame, next to the bound interval + critical path
//     (2L in parallel mode) + raise_after;
//   - the daemon's own alert path figures (GetStatus alert_path_us: answers
//     complete -> D-Bus signal and CAN frame sent, over every burst).
// Not a pass/fail test.
// The video is MJPEG in AVI by default, decoded by jpegdec as a USB camera's
// MJPEG stream would be; --h264 uses MP4/H.264 instead, which brings in
// libav (avdec_h264) and its libraries.
//   bench_run [--minutes M] [--latency-ms L] [--segment-s S] [--h264]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "llm/llm_metrics.h"
#include "notify/can_frame.h"
#include "test/integration/harness.h"
#include "test/support/can_listener.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

struct ProcSample {
    double cpuSeconds = 0;
    std::size_t rssKb = 0;
    std::size_t hwmKb = 0;
};

ProcSample sample(pid_t pid) {
    ProcSample s;
    std::ifstream stat(fmt::format("/proc/{}/stat", pid));
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may contain spaces) in parentheses.
    const auto close = text.rfind(')');
    if (close != std::string::npos) {
        std::vector<std::string> fields;
        std::string field;
        for (char c : text.substr(close + 2)) {
            if (c == ' ') {
                fields.push_back(field);
                field.clear();
            } else {
                field += c;
            }
        }
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after ')'.
        if (fields.size() > 13) {
            const double tick = double(::sysconf(_SC_CLK_TCK));
            s.cpuSeconds = (std::stod(fields[11]) + std::stod(fields[12])) / tick;
        }
    }
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            s.rssKb = std::stoul(line.substr(6));
        } else if (line.rfind("VmHWM:", 0) == 0) {
            s.hwmKb = std::stoul(line.substr(6));
        }
    }
    return s;
}

struct Raise {
    std::string member; ///< AlertRaised, AlertCleared
    std::string kind;
    std::string level; ///< AlertRaised: warning or critical (an escalation)
    Clock::time_point at;
};

std::string script(const Harness& h) {
    const auto path = h.dir() / "script.json";
    std::ofstream(path) << R"({"rules":[
 {"analysis":"face_state","color":[220,30,30],"tolerance":90,
  "answer":{"state":"SLEEPY","eyes_closed":true,"yawning":false,"confidence":0.9}},
 {"analysis":"attention","color":[220,30,30],"tolerance":90,
  "answer":{"looking_at_road":false,"gaze":"phone","eyes_open":true,"confidence":0.9}},
 {"analysis":"hand_position","color":[220,30,30],"tolerance":90,
  "answer":{"hands_on_wheel":1,"holding":"phone","confidence":0.9}},
 {"analysis":"impaired_driving","prompt_contains":"SLEEPY",
  "answer":{"concern":"HIGH","indicators":["eyes closed"],"confidence":0.8}}]})";
    return path.string();
}

} // namespace

int main(int argc, char** argv) {
    double minutes = 10;
    int latencyMs = 400;
    double segment = 20;
    bool h264 = false;
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--h264") {
            h264 = true;
            --i;
        } else if (i + 1 >= argc) {
            std::fprintf(stderr, "bench_run: %s needs a value\n", arg.c_str());
            return 2;
        } else if (arg == "--minutes") {
            minutes = std::stod(argv[i + 1]);
        } else if (arg == "--latency-ms") {
            latencyMs = std::stoi(argv[i + 1]);
        } else if (arg == "--segment-s") {
            segment = std::stod(argv[i + 1]);
        } else {
            std::fprintf(stderr,
                         "usage: bench_run [--minutes M] [--latency-ms L] [--segment-s S]\n");
            return 2;
        }
    }
    const double runSeconds = minutes * 60;
    Harness h;
    VideoSpec spec{640, 480, 15, h264 ? VideoContainer::Mp4H264 : VideoContainer::AviMjpeg, {}};
    for (double t = 0; t < runSeconds + 30; t += 2 * segment) {
        spec.segments.push_back({segment, Rgb{40, 180, 60}, true});
        spec.segments.push_back({segment, Rgb{220, 30, 30}, true});
    }
    const auto made = Clock::now();
    h.makeVideo(spec);
    std::fprintf(stderr, "bench_run: %.0f s test video generated in %.1f s\n", runSeconds + 30,
                 std::chrono::duration<double>(Clock::now() - made).count());
    h.startBus();
    h.startEmulator({"--slots", "4", "--latency-ms", std::to_string(latencyMs), "--script",
                     script(h), "--preloaded"});
    CanListener bus(h.dir() / "can.sock");
    // The contract's defaults (interval 2 s, 4 frames, mode auto, drowsiness
    // raise_after 3 s ...) except a cooldown that lets every segment alert.
    h.writeConfig(fmt::format(R"(version: "bench-run"
capture:
  source: "file:{}"
  width: 640
  height: 480
  fps: 15
llm:
  url: "{}"
alerts:
  drowsiness: {{ cooldown: 10s }}
  distraction: {{ cooldown: 10s }}
  phone_use: {{ cooldown: 10s }}
  impaired_driving: {{ cooldown: 10s }}
notify:
  dbus: {{ enabled: true, bus: "{}" }}
  can: {{ enabled: true, interface: vcan0 }}
  snapshots: {{ enabled: true, dir: "{}", max_files: 50 }}
vision: {{ enabled: false }}  # colour scenes, no face
)",
                              h.videoPath().string(), h.emulatorUrl(), h.busAddress(),
                              h.snapshotDir().string()));
    auto monitor = h.monitor();
    TestSeams seams;
    seams.canSocket = bus.path();
    h.startDaemon({}, seams);
    const auto ready = h.waitReady(60s);
    if (!ready) {
        std::fprintf(stderr, "bench_run: dmsd did not become ready\n");
        return 1;
    }
    const pid_t pid = h.daemon().pid();

    std::mutex mutex;
    std::vector<Raise> raises;
    std::atomic<bool> stop{false};
    std::thread reader([&] {
        while (!stop) {
            auto line = monitor->readLine(200ms);
            if (!line) {
                continue;
            }
            const auto at = Clock::now();
            boost::system::error_code ec;
            const json::value message = json::parse(*line, ec);
            if (ec || !message.is_object()) {
                continue;
            }
            const json::value* member = message.as_object().if_contains("member");
            if (member == nullptr || !member->is_string() ||
                (member->as_string() != "AlertRaised" && member->as_string() != "AlertCleared")) {
                continue;
            }
            const json::value* payload = message.as_object().if_contains("payload");
            if (payload == nullptr) {
                continue;
            }
            const json::value* data = payload->as_object().if_contains("data");
            if (data == nullptr || !data->is_array() || data->as_array().empty()) {
                continue;
            }
            const json::array& args = data->as_array();
            std::lock_guard lock(mutex);
            raises.push_back({std::string(member->as_string()), std::string(args[0].as_string()),
                              args.size() > 1 && args[1].is_string()
                                  ? std::string(args[1].as_string())
                                  : std::string(),
                              at});
        }
    });

    const ProcSample first = sample(pid);
    const auto start = Clock::now();
    std::vector<std::pair<double, ProcSample>> series;
    while (Clock::now() - start < std::chrono::duration<double>(runSeconds)) {
        std::this_thread::sleep_for(10s); // sampling period of /proc, not synchronisation
        series.emplace_back(std::chrono::duration<double>(Clock::now() - start).count(),
                            sample(pid));
    }
    const ProcSample last = sample(pid);
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const json::object status = h.status();
    stop = true;
    reader.join();

    fmt::print("bench_run ({} build): dmsd run, 640x480@15 {} file played in real time, "
               "emulator L={} ms, 4 slots, mode auto, {:.1f} min, {} cores\n",
               DMSD_BUILD_TYPE, h264 ? "MP4/H.264" : "AVI/MJPEG", latencyMs, wall / 60,
               std::thread::hardware_concurrency());
    fmt::print("\n== CPU ==\nprocess CPU {:.1f} s over {:.1f} s of video: {:.1f} ms CPU per "
               "second of video ({:.1f}% of one core)\n",
               last.cpuSeconds - first.cpuSeconds, wall,
               (last.cpuSeconds - first.cpuSeconds) * 1000 / wall,
               (last.cpuSeconds - first.cpuSeconds) * 100 / wall);
    fmt::print("\n== Memory ==\nRSS at READY {} kB\n", first.rssKb);
    for (const auto& [t, s] : series) {
        if (static_cast<int>(t) % 60 < 10 || &s == &series.back().second) {
            fmt::print("  t={:5.0f} s  RSS {:6} kB\n", t, s.rssKb);
        }
    }
    std::size_t lowAfterWarmup = SIZE_MAX;
    std::size_t highAfterWarmup = 0;
    for (const auto& [t, s] : series) {
        if (t >= 60) {
            lowAfterWarmup = std::min(lowAfterWarmup, s.rssKb);
            highAfterWarmup = std::max(highAfterWarmup, s.rssKb);
        }
    }
    fmt::print("peak RSS (VmHWM) {} kB = {:.1f} MB; after the first minute RSS stayed within "
               "{}..{} kB\n",
               last.hwmKb, last.hwmKb / 1024.0, lowAfterWarmup == SIZE_MAX ? 0 : lowAfterWarmup,
               highAfterWarmup);

    // Sleepy segments start at (2k+1)*segment seconds of video; READY=1 is the
    // first frame, i.e. video time 0.
    const json::object& counters = status.at("counters").as_object();
    const json::object& latency = status.at("latency_ms").as_object();
    const std::string mode(status.at("mode").as_string());
    const double criticalPath = (mode == "parallel"     ? 2
                                 : mode == "sequential" ? 5
                                                        : 1) *
                                latencyMs / 1000.0;
    const double bound = 2.0 + criticalPath + 3.0;
    // Nearest-rank percentiles, as GetStatus computes them.
    dmsd::LatencyWindow dbusLatency;
    dmsd::LatencyWindow canLatency;
    dmsd::LatencyWindow burst;
    {
        std::lock_guard lock(mutex);
        const auto frames = bus.frames();
        std::string timeline;
        for (const Raise& r : raises) {
            if (r.kind == "DROWSINESS") {
                timeline += fmt::format(" {}@{:.1f}",
                                        r.member == "AlertCleared" ? "-"
                                        : r.level == "critical"    ? "!"
                                                                   : "+",
                                        std::chrono::duration<double>(r.at - *ready).count());
            }
            if (r.kind != "DROWSINESS" || r.member != "AlertRaised" || r.level != "warning") {
                continue;
            }
            const double t = std::chrono::duration<double>(r.at - *ready).count();
            const double k = std::floor((t - segment) / (2 * segment));
            const double boundary = (2 * k + 1) * segment;
            dbusLatency.add(t - boundary);
            for (const ReceivedCanFrame& f : frames) {
                const auto fields = dmsd::decodeAlertFrame(f.data);
                const double ft = std::chrono::duration<double>(f.at - *ready).count();
                if (f.id == 0x6D0 && fields && fields->kind == dmsd::AlertKind::Drowsiness &&
                    fields->level == dmsd::AlertLevel::Warning && ft >= boundary &&
                    ft < boundary + 2 * segment) {
                    canLatency.add(ft - boundary);
                    break;
                }
            }
            int together = 0;
            for (const Raise& other : raises) {
                together +=
                    other.member == "AlertRaised" && std::chrono::abs(other.at - r.at) < 100ms ? 1
                                                                                               : 0;
            }
            burst.add(together);
        }
        fmt::print("\nDROWSINESS raised (+), escalated to critical (!) and cleared (-), seconds "
                   "after READY:{}\n",
                   timeline);
    }
    fmt::print("\n== Alert latency (sleepy segment boundary -> DROWSINESS raised) ==\n");
    fmt::print("mode {}; bound = interval 2 s + critical path {:.1f} s + raise_after 3 s = {:.1f} "
               "s\n",
               mode, criticalPath, bound);
    fmt::print("AlertRaised on the bus (busctl monitor): n={} p50 {:.2f} s  max {:.2f} s\n",
               dbusLatency.size(), dbusLatency.percentile(50), dbusLatency.percentile(100));
    fmt::print("alert frame 0x6D0 on the CAN stand-in:    n={} p50 {:.2f} s  max {:.2f} s\n",
               canLatency.size(), canLatency.percentile(50), canLatency.percentile(100));
    fmt::print("alerts raised within 100 ms of each DROWSINESS raise (burst size): p50 {:.0f}\n",
               burst.percentile(50));
    const json::object& path = status.at("alert_path_us").as_object();
    fmt::print("\n== Alert path inside the daemon (GetStatus alert_path_us) ==\n"
               "answers complete -> D-Bus signal and CAN frame sent: events {}  p50 {:.0f} us  "
               "p99 {:.0f} us  max {:.0f} us\n",
               path.at("events").to_number<std::uint64_t>(), path.at("p50").to_number<double>(),
               path.at("p99").to_number<double>(), path.at("max").to_number<double>());
    fmt::print("\n== Analysis ==\nsequences analysed {}, superseded {}, skipped static {}, "
               "requests {}, errors {}; sequence latency p50 {:.0f} ms p95 {:.0f} ms; CAN frames "
               "sent {}\n",
               counters.at("sequences_analysed").to_number<std::uint64_t>(),
               counters.at("sequences_superseded").to_number<std::uint64_t>(),
               counters.at("sequences_skipped_static").to_number<std::uint64_t>(),
               counters.at("requests").to_number<std::uint64_t>(),
               counters.at("request_errors").to_number<std::uint64_t>(),
               latency.at("sequence_p50").to_number<double>(),
               latency.at("sequence_p95").to_number<double>(),
               status.at("can").at("frames_sent").to_number<std::uint64_t>());
    return 0;
}
