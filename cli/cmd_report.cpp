#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "base/atomic_file.h"
#include "cli/commands.h"
#include "report/evidence.h"
#include "report/intervals.h"
#include "report/render.h"
#include "report/trip_log.h"

namespace dmsd::cli {
namespace {

void printReportUsage(std::FILE* out) {
    fmt::print(out,
               "usage: dmsd report [--html FILE [--evidence DIR]...] [--csv FILE] [--quiet]\n"
               "                   IN.jsonl...\n"
               "  Reads the JSON Lines of one or many 'dmsd analyze' runs (shards too) and\n"
               "  turns their alert decisions into intervals (video, kind, peak level, start,\n"
               "  end, duration, source) with totals per video and per fleet, printed on\n"
               "  stdout.\n"
               "  --html FILE  also write a self-contained HTML trip report (timelines)\n"
               "  --evidence DIR\n"
               "               the --evidence directory of 'dmsd analyze' (repeatable, one\n"
               "               per shard): the HTML report shows each alert's raising frames\n"
               "  --csv FILE   also write the intervals as CSV\n"
               "  --quiet      print nothing on stdout (the files only)\n"
               "  Exit status: 0 done, 1 some input lines or files could not be used (they\n"
               "  are listed on stderr; the report covers the rest), 2 usage error or an\n"
               "  output file that cannot be written.\n");
}

} // namespace

int runReport(Args args) {
    std::vector<std::filesystem::path> inputs;
    std::filesystem::path html;
    std::filesystem::path csv;
    std::vector<std::filesystem::path> evidenceDirs;
    bool quiet = false;
    bool optionsDone = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string_view arg = args[i];
        if (!optionsDone && (arg == "--help" || arg == "-h")) {
            printReportUsage(stdout);
            return kExitOk;
        }
        if (!optionsDone && (arg == "--html" || arg == "--csv")) {
            if (i + 1 >= args.size()) {
                fmt::print(stderr, "dmsd report: {} needs a file name\n", arg);
                return kExitUsage;
            }
            (arg == "--html" ? html : csv) = std::filesystem::path(args[++i]);
        } else if (!optionsDone && arg == "--evidence") {
            if (i + 1 >= args.size()) {
                fmt::print(stderr, "dmsd report: --evidence needs a directory\n");
                return kExitUsage;
            }
            evidenceDirs.emplace_back(args[++i]);
        } else if (!optionsDone && (arg == "--quiet" || arg == "-q")) {
            quiet = true;
        } else if (!optionsDone && arg == "--") {
            optionsDone = true;
        } else if (!optionsDone && arg.starts_with('-') && arg.size() > 1) {
            fmt::print(stderr, "dmsd report: unknown option '{}'\n", arg);
            printReportUsage(stderr);
            return kExitUsage;
        } else {
            inputs.emplace_back(arg);
        }
    }
    if (inputs.empty()) {
        fmt::print(stderr, "dmsd report: no input given (the JSON Lines of 'dmsd analyze')\n");
        printReportUsage(stderr);
        return kExitUsage;
    }

    if (!evidenceDirs.empty() && html.empty()) {
        fmt::print(stderr, "dmsd report: --evidence shows frames in the HTML report: give --html "
                           "FILE too\n");
        return kExitUsage;
    }

    const report::TripLog log = report::readTripLogs(inputs);
    report::FleetReport fleet = report::fleetReport(log);
    const report::Evidence evidence = report::readEvidence(evidenceDirs);
    if (!evidenceDirs.empty()) {
        fleet.problems.insert(fleet.problems.end(), evidence.problems.begin(),
                              evidence.problems.end());
        const std::size_t unmatched = report::attachEvidence(fleet, evidence);
        if (evidence.framesLeftOut > 0) {
            fleet.notes.push_back(fmt::format(
                "{} evidence frame(s) left out: a report embeds at most {} MiB of images",
                evidence.framesLeftOut, report::EvidenceLimits{}.maxTotalBytes >> 20));
        }
        if (unmatched > 0) {
            fleet.notes.push_back(fmt::format(
                "{} evidence snapshot(s) match no alert interval of these inputs", unmatched));
        }
    }
    for (const std::string& problem : fleet.problems) {
        fmt::print(stderr, "dmsd report: {}\n", problem);
    }
    for (const std::string& note : fleet.notes) {
        fmt::print(stderr, "dmsd report: {}\n", note);
    }
    auto write = [](const std::filesystem::path& path, const std::string& content) {
        if (const std::error_code ec = writeFileAtomically(path, content)) {
            fmt::print(stderr, "dmsd report: cannot write {}: {}\n", path.string(), ec.message());
            return false;
        }
        return true;
    };
    if (!html.empty() && !write(html, report::renderHtml(fleet))) {
        return kExitUsage;
    }
    if (!csv.empty() && !write(csv, report::renderCsv(fleet))) {
        return kExitUsage;
    }
    if (!quiet) {
        fmt::print("{}", report::renderText(fleet));
    }
    return fleet.problems.empty() ? kExitOk : kExitInputFailed;
}

} // namespace dmsd::cli
