// dmsd analyze: command line (docs/interfaces.md section 1); the work is in batch/analyzer.h.

#include <charconv>
#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "batch/analyzer.h"
#include "batch/shard.h"
#include "cli/commands.h"
#include "config/loader.h"

namespace dmsd::cli {

namespace po = boost::program_options;

namespace {

constexpr const char* kUsage =
    "usage: dmsd analyze [--config PATH] [--jobs N] [--output FILE] [--shard I/N|auto] "
    "[--realtime]\n"
    "                    [--evidence DIR] [--signals] [--quiet] [--no-pipeline]\n"
    "                    [--progress auto|bar|plain|none] VIDEO...\n";

int usageError(const std::string& message) {
    fmt::print(stderr, "dmsd analyze: {}\n{}", message, kUsage);
    return kExitUsage;
}

} // namespace

int runAnalyze(Args args) {
    std::string configPath = "/etc/dmsd/dmsd.yaml";
    std::size_t jobs = std::max(1u, std::thread::hardware_concurrency());
    std::string output;
    std::string evidence;
    std::string shardText;
    std::string progress = "auto";
    std::size_t backlog = 0;
    std::vector<std::string> videos;

    po::options_description visible("Options");
    // clang-format off
    visible.add_options()
        ("help,h", "print this help and exit")
        ("config", po::value(&configPath), "configuration file (default /etc/dmsd/dmsd.yaml, with its conf.d/)")
        ("jobs,j", po::value(&jobs), "videos decoded at once (default: number of cores)")
        ("output,o", po::value(&output), "write the JSON Lines here instead of stdout")
        ("evidence", po::value(&evidence), "DIR: for each raised alert, its frames (JPEG) and a JSON sidecar, as dmsd run's snapshots")
        ("shard", po::value(&shardText), "I/N: only the videos whose 0-based index modulo N is I; auto: I and N from a Kubernetes Indexed Job or a Slurm job array")
        ("signals", "a `signals` line for every frame the per-frame vision analysed (docs/batch.md)")
        ("realtime", "read each video at its own frame rate, latest-wins, as `dmsd run` treats a camera")
        ("quiet,q", "no progress on stderr")
        ("no-pipeline", "each video's sequences strictly one after another (the seed design; for comparison)")
        ("progress", po::value(&progress), "auto (bar on a terminal, else plain lines) | bar | plain | none")
        ("backlog", po::value(&backlog), "sequences per video decoded ahead of the analysis (0: automatic)");
    po::options_description hidden;
    hidden.add_options()("video", po::value(&videos));
    // clang-format on
    po::options_description all;
    all.add(visible).add(hidden);
    po::positional_options_description positional;
    positional.add("video", -1);

    po::variables_map vm;
    try {
        std::vector<std::string> argv(args.begin(), args.end());
        po::store(po::command_line_parser(argv).options(all).positional(positional).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        return usageError(e.what());
    }
    if (vm.count("help") != 0U) {
        std::cout << kUsage << visible << "\nSee docs/batch.md for the output format.\n";
        return kExitOk;
    }
    if (jobs == 0) {
        return usageError("--jobs must be at least 1");
    }
    batch::Shard shard;
    if (!shardText.empty()) {
        auto parsed = batch::parseShard(shardText, batch::processEnvironment());
        if (auto* error = std::get_if<std::string>(&parsed)) {
            return usageError(*error);
        }
        shard = std::get<batch::Shard>(parsed);
    }
    if (videos.empty()) {
        return usageError("no VIDEO given");
    }
    const bool quiet = vm.count("quiet") != 0U;
    batch::BatchOptions options;
    if (quiet || progress == "none") {
        options.progress = batch::BatchOptions::Progress::None;
    } else if (progress == "bar") {
        options.progress = batch::BatchOptions::Progress::Bar;
    } else if (progress == "plain") {
        options.progress = batch::BatchOptions::Progress::Plain;
    } else if (progress == "auto") {
        options.progress = ::isatty(STDERR_FILENO) != 0 ? batch::BatchOptions::Progress::Bar
                                                        : batch::BatchOptions::Progress::Plain;
    } else {
        return usageError(
            fmt::format("--progress \"{}\": expected auto, bar, plain or none", progress));
    }

    // Module messages go to stderr, not the journal, and only when they matter:
    // the results are the JSON Lines.
    log::configure(log::Backend::Stderr, quiet ? log::Priority::Err : log::Priority::Warning);

    std::optional<Config> config = loadConfigOrReport(configPath, "analyze");
    if (!config) {
        return kExitUsage;
    }

    if (!shardText.empty() && !quiet) {
        fmt::print(stderr, "dmsd analyze: shard {}/{} ({}): {} of {} videos\n", shard.index,
                   shard.count, shard.origin,
                   (videos.size() + shard.count - 1 - shard.index) / shard.count, videos.size());
    }
    for (std::size_t i = 0; i < videos.size(); ++i) {
        if (i % shard.count == shard.index) {
            options.videos.push_back(videos[i]);
        }
    }
    options.jobs = jobs;
    options.evidenceDir = evidence;
    options.realtime = vm.count("realtime") != 0U;
    options.signals = vm.count("signals") != 0U;
    options.pipeline = vm.count("no-pipeline") == 0U;
    options.backlogPerVideo = backlog;
    options.outputPath = output;
    batch::BatchAnalyzer analyzer(std::move(*config), std::move(options));
    return analyzer.run();
}

} // namespace dmsd::cli
