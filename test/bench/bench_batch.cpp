// bench_batch: `dmsd analyze` throughput against the Ollama emulator, next to
// the capacity bound and the seed design's approaches (docs/performance.md,
// "Batch analysis"). Prints figures; not a pass/fail test.
//
//   bench_batch [--seconds S] [--latency-ms L] [--slots N] [--videos V] [--fps F]
//               [--width W] [--height H] [--pool-slots 1,3]
//               [--runs seed1,seed4,parallel,combined,auto,pool]
//
// Defaults: 4 generated videos of 60 s at 15 fps, 320x240, against 4 slots
// at 400 ms per request. Each run gets a fresh emulator (fresh model state,
// its own request log); requests are counted from that log. The `pool` run
// has one emulator per --pool-slots entry (same latency) under one llm.url
// list, max_in_flight --slots per server: its bound is the combined capacity
// (requests × latency / the slots of all servers).

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <spawn.h>
#include <sstream>
#include <string>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "test/support/child_process.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

extern char** environ;

namespace json = boost::json;
using namespace std::chrono_literals;
using dmsd::test::ChildProcess;

namespace {

/// The built dmsd and emulator: $DMSD_BINARY / $DMSD_OLLAMA_EMULATOR, else found
/// relative to this program in the build tree (build/test/bench/bench_batch).
std::string builtProgram(const char* env, const std::string& relative) {
    if (const char* value = std::getenv(env); value != nullptr && *value != '\0') {
        return value;
    }
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return (self.parent_path().parent_path().parent_path() / relative).string();
}

struct Settings {
    double seconds = 60;
    int latencyMs = 400;
    int slots = 4;
    int videos = 4;
    int fps = 15;
    int width = 320;
    int height = 240;
    std::vector<std::string> runs{"seed1", "seed4", "parallel", "combined", "auto", "pool"};
    std::vector<int> poolSlots{1, 3};
};

struct RunFigures {
    std::string name;
    std::string command;
    double wallS = 0;
    double cpuS = 0;
    long maxRssKb = 0;
    int exitCode = -1;
    std::size_t requests = 0;
    std::size_t sequences = 0;
    std::int64_t maxConcurrency = 0;
};

/// Spawns \a argv with stdout to \a out, waits with wait4 for its rusage.
RunFigures spawnAndMeasure(const std::vector<std::string>& argv, const std::string& out) {
    RunFigures figures;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<char*> args;
    for (const std::string& a : argv) {
        args.push_back(const_cast<char*>(a.c_str()));
    }
    args.push_back(nullptr);
    const auto start = std::chrono::steady_clock::now();
    pid_t pid = -1;
    if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        throw std::runtime_error("cannot spawn " + argv[0]);
    }
    posix_spawn_file_actions_destroy(&actions);
    int status = 0;
    rusage usage{};
    while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
    }
    figures.wallS = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    figures.cpuS = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                   static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    figures.maxRssKb = usage.ru_maxrss;
    figures.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return figures;
}

std::vector<json::object> readJsonLines(const std::string& path) {
    std::vector<json::object> out;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (!ec && v.is_object()) {
            out.push_back(v.as_object());
        }
    }
    return out;
}

void writeConfig(const std::string& path, const Settings& s, const std::vector<std::string>& urls,
                 const std::string& mode) {
    const std::string url = urls.size() == 1 ? "\"" + urls.front() + "\""
                                             : fmt::format("[\"{}\"]", fmt::join(urls, "\", \""));
    std::ofstream out(path);
    out << "version: \"bench-batch\"\n"
        << "vision: { enabled: false }\n" // test:ball has no face
        << "capture: { source: \"test:ball\", width: " << s.width << ", height: " << s.height
        << ", fps: " << s.fps << " }\n"
        << "sampling: { interval: 2s, frames_per_sequence: 4 }\n"
        << "llm: { url: " << url << ", model: \"llava:7b-v1.6-mistral-q2_K\", mode: " << mode
        << ", max_in_flight: " << s.slots << ", timeout: 60s }\n"
        << "notify: { dbus: { enabled: false }, can: { enabled: false }, snapshots: { "
           "enabled: false } }\n";
}

std::vector<std::string> split(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream in(text);
    std::string item;
    while (std::getline(in, item, ',')) {
        out.push_back(item);
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    Settings s;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string key = argv[i];
        const std::string value = argv[i + 1];
        if (key == "--seconds") {
            s.seconds = std::stod(value);
        } else if (key == "--latency-ms") {
            s.latencyMs = std::stoi(value);
        } else if (key == "--slots") {
            s.slots = std::stoi(value);
        } else if (key == "--videos") {
            s.videos = std::stoi(value);
        } else if (key == "--fps") {
            s.fps = std::stoi(value);
        } else if (key == "--width") {
            s.width = std::stoi(value);
        } else if (key == "--height") {
            s.height = std::stoi(value);
        } else if (key == "--pool-slots") {
            s.poolSlots.clear();
            for (const std::string& n : split(value)) {
                s.poolSlots.push_back(std::stoi(n));
            }
        } else if (key == "--runs") {
            s.runs = split(value);
        } else {
            fmt::print(stderr, "bench_batch: unknown option {}\n", key);
            return 2;
        }
    }

    const std::string dmsdBinary = builtProgram("DMSD_BINARY", "cli/dmsd");
    const std::string emulatorBinary =
        builtProgram("DMSD_OLLAMA_EMULATOR", "test/emulator/ollama-emulator");
    dmsd::test::TempDir dir("dmsd-bench-batch");
    fmt::print("bench_batch: {} videos of {} s at {} fps, {}x{}; emulator {} slots, {} ms per "
               "request\n",
               s.videos, s.seconds, s.fps, s.width, s.height, s.slots, s.latencyMs);
    std::vector<std::string> videos;
    const auto genStart = std::chrono::steady_clock::now();
    for (int v = 0; v < s.videos; ++v) {
        dmsd::test::VideoSpec spec;
        spec.width = s.width;
        spec.height = s.height;
        spec.fps = s.fps;
        spec.segments.clear();
        // Moving square in every 2 s window, and a colour of its own per segment and
        // video: every window is analysed and no answer comes from the response cache.
        const int segments = static_cast<int>(s.seconds / 2.0);
        for (int k = 0; k < segments; ++k) {
            dmsd::test::Rgb colour{static_cast<std::uint8_t>(40 + (v * 53 + k * 7) % 180),
                                   static_cast<std::uint8_t>(40 + (v * 29 + k * 13) % 180),
                                   static_cast<std::uint8_t>(40 + (v * 71 + k * 3) % 180)};
            spec.segments.push_back({2.0, colour, true});
        }
        const std::string path = (dir / fmt::format("trip{}.mp4", v)).string();
        dmsd::test::generateVideo(path, spec);
        videos.push_back(path);
    }
    fmt::print("generated in {:.1f} s\n\n",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - genStart).count());

    std::vector<RunFigures> results;
    for (const std::string& run : s.runs) {
        std::string mode = "parallel";
        std::vector<std::string> flags;
        if (run == "seed1") {
            flags = {"--jobs", "1", "--no-pipeline"};
        } else if (run == "seed4") {
            flags = {"--jobs", std::to_string(s.videos), "--no-pipeline"};
        } else if (run == "parallel" || run == "combined" || run == "auto") {
            mode = run;
            flags = {"--jobs", std::to_string(s.videos)};
        } else if (run == "pool") {
            flags = {"--jobs", std::to_string(s.videos)};
        } else {
            fmt::print(stderr, "bench_batch: unknown run {}\n", run);
            return 2;
        }
        const std::vector<int> slots = run == "pool" ? s.poolSlots : std::vector<int>{s.slots};
        std::vector<std::unique_ptr<ChildProcess>> emulators;
        std::vector<std::string> urls;
        std::vector<std::string> logs;
        for (std::size_t i = 0; i < slots.size(); ++i) {
            logs.push_back((dir / fmt::format("{}-emulator{}.jsonl", run, i)).string());
            emulators.push_back(std::make_unique<ChildProcess>(std::vector<std::string>{
                emulatorBinary, "--port", "0", "--preloaded", "--slots", std::to_string(slots[i]),
                "--latency-ms", std::to_string(s.latencyMs), "--log", logs.back()}));
            auto line = emulators.back()->waitForLine(
                [](const std::string& l) { return l.rfind("listening on ", 0) == 0; }, 15s);
            if (!line) {
                fmt::print(stderr, "bench_batch: the emulator did not start\n");
                return 1;
            }
            urls.push_back(line->substr(std::string("listening on ").size()));
        }
        const std::string config = (dir / (run + ".yaml")).string();
        writeConfig(config, s, urls, mode);
        const std::string output = (dir / (run + ".jsonl")).string();

        std::vector<std::string> command{dmsdBinary, "analyze", "--config", config, "--quiet"};
        command.insert(command.end(), flags.begin(), flags.end());
        command.insert(command.end(), videos.begin(), videos.end());
        RunFigures figures = spawnAndMeasure(command, output);
        figures.name = run;
        figures.command =
            fmt::format("dmsd analyze --config <llm.mode: {}, {} server(s) of {} slot(s)> --quiet "
                        "{} <{} videos>",
                        mode, slots.size(), fmt::join(slots, "+"), fmt::join(flags, " "), s.videos);
        for (const auto& l : readJsonLines(output)) {
            if (l.at("type") == "sequence") {
                ++figures.sequences;
            }
        }
        int totalSlots = 0;
        for (std::size_t i = 0; i < emulators.size(); ++i) {
            emulators[i]->terminate(5s);
            totalSlots += slots[i];
            std::size_t served = 0;
            for (const auto& l : readJsonLines(logs[i])) {
                if (l.contains("load_only") && l.at("load_only").is_bool() &&
                    !l.at("load_only").as_bool() && l.at("path") == "/api/chat") {
                    ++served;
                    if (l.at("concurrency").is_int64()) {
                        figures.maxConcurrency =
                            std::max(figures.maxConcurrency, l.at("concurrency").as_int64());
                    }
                }
            }
            figures.requests += served;
            if (emulators.size() > 1) {
                fmt::print("{:<9} server {} ({} slot(s)): {} requests\n", run, i, slots[i], served);
            }
        }
        // The capacity bound: every slot of every server busy all the time.
        const double bound =
            static_cast<double>(figures.requests) * s.latencyMs / 1000.0 / totalSlots;
        fmt::print("{:<9} exit {}  wall {:6.1f} s  capacity bound {:6.1f} s ({:5.1f}%)  "
                   "{} sequences  {} requests  max concurrency {}  peak RSS {:.1f} MB  CPU {:.2f} "
                   "s/video-minute\n",
                   run, figures.exitCode, figures.wallS, bound,
                   bound > 0 ? 100.0 * figures.wallS / bound : 0.0, figures.sequences,
                   figures.requests, figures.maxConcurrency,
                   static_cast<double>(figures.maxRssKb) / 1024.0,
                   figures.cpuS / (s.videos * s.seconds / 60.0));
        std::fflush(stdout);
        results.push_back(figures);
    }

    std::map<std::string, const RunFigures*> byName;
    for (const auto& r : results) {
        byName[r.name] = &r;
    }
    fmt::print("\nspeed-ups (wall time of the seed approach / wall time):\n");
    for (const char* mine : {"parallel", "combined", "auto"}) {
        if (!byName.count(mine)) {
            continue;
        }
        for (const char* seed : {"seed1", "seed4"}) {
            if (byName.count(seed)) {
                fmt::print("  {:<8} vs {}: {:.2f}x\n", mine, seed,
                           byName[seed]->wallS / byName[mine]->wallS);
            }
        }
    }
    fmt::print("\ncommands (videos: {}):\n", fmt::join(videos, " "));
    for (const auto& r : results) {
        fmt::print("  {:<9} {}\n", r.name, r.command);
    }
    return 0;
}
