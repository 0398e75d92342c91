// Benchmark: does memory come back after a hostile storm? `dmsd run` on a
// private bus reads a looping 20 s video through the hostile proxy (docs/hostile.md)
// in front of the emulator: a minute of clean answers (the steady state), a
// minute of random faults (every fault class, the 10 MB string included),
// then the server heals and the daemon's RSS is followed for a minute.
// Prints the steady state, the peak, and the RSS a minute after healing, with
// the time it took to come back within 10 MB of the steady state.
//
//   build/test/bench/bench_storm_memory [--phase SECONDS] [--rate P]

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "test/hostile/hostile_client.h"
#include "test/integration/harness.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
    int phaseS = 60;
    double rate = 0.5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--phase") {
            phaseS = std::atoi(argv[i + 1]);
        } else if (arg == "--rate") {
            rate = std::atof(argv[i + 1]);
        }
    }
    Harness h;
    // A moving scene (never skipped as static); in `run` the file plays like
    // a camera and starts again at its end.
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{20.0, {40, 180, 60}, true}}});
    h.startBus();
    h.startEmulator({"--slots", "4", "--preloaded"});
    HostileProxyProcess proxy(h.emulatorPort(), h.dir() / "hostile.jsonl", {});
    std::string yaml = h.baseConfig();
    const std::string url = h.emulatorUrl();
    yaml.replace(yaml.find(url), url.size(), proxy.url());
    yaml += "sampling:\n  interval: 1s\n  frames_per_sequence: 2\n  max_static_skip: 3s\n";
    h.writeConfig(yaml);
    h.startDaemon();
    if (!h.waitReady(30s)) {
        fmt::print(stderr, "bench_storm_memory: the daemon did not become ready\n");
        return 1;
    }

    // One RSS sample per second for a phase; returns the samples (kB).
    auto follow = [&](int seconds) {
        std::vector<std::size_t> samples;
        const Clock::time_point start = Clock::now();
        for (int s = 1; s <= seconds; ++s) {
            std::this_thread::sleep_until(start + std::chrono::seconds(s)); // a sampling period
            samples.push_back(h.daemonRssKb());
        }
        return samples;
    };
    auto max = [](const std::vector<std::size_t>& v) {
        return *std::max_element(v.begin(), v.end());
    };

    const std::vector<std::size_t> steadySamples = follow(phaseS);
    // The steady state: the largest RSS in the phase's second half (warmed up).
    const std::size_t steady =
        *std::max_element(steadySamples.begin() + phaseS / 2, steadySamples.end());
    proxy.configure({{"random_rate", rate}});
    const std::vector<std::size_t> storm = follow(phaseS);
    const boost::json::object injected = proxy.stats();
    proxy.configure({{"heal", true}});
    const std::vector<std::size_t> healed = follow(phaseS);
    const auto back = std::find_if(healed.begin(), healed.end(),
                                   [&](std::size_t kb) { return kb <= steady + 10 * 1024; });
    const boost::json::object status = h.status();
    const auto& counters = status.at("counters").as_object();

    fmt::print("bench_storm_memory ({} build), phases of {} s, random fault rate {} during the "
               "storm, {} faults injected; {} sequences analysed, {} request errors, {} protocol "
               "errors, {} stalled responses\n",
               DMSD_BUILD_TYPE, phaseS, rate, injected.at("faulted").to_number<int>(),
               counters.at("sequences_analysed").to_number<int>(),
               counters.at("request_errors").to_number<int>(),
               counters.at("protocol_errors").to_number<int>(),
               counters.at("stalled_responses").to_number<int>());
    fmt::print("  steady state (clean server, 2nd half): {:.1f} MB\n", steady / 1024.0);
    fmt::print("  peak during the storm:                {:.1f} MB\n", max(storm) / 1024.0);
    fmt::print("  {} s after healing:                   {:.1f} MB ({:+.1f} MB)\n", phaseS,
               healed.back() / 1024.0, (double(healed.back()) - double(steady)) / 1024.0);
    if (back != healed.end()) {
        fmt::print("  back within 10 MB of steady after     {} s\n", back - healed.begin() + 1);
    } else {
        fmt::print("  NOT back within 10 MB of steady in {} s\n", phaseS);
    }
    return 0;
}
