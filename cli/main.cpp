#include <cstdio>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "base/allocator.h"
#include "base/version.h"
#include "cli/commands.h"

namespace {

void printUsage(std::FILE* out) {
    fmt::print(out, "usage: dmsd run     [--config PATH] [--verbose]\n"
                    "       dmsd analyze [--config PATH] [--jobs N] [--output FILE] [--shard I/N]\n"
                    "                    [--realtime] [--quiet] VIDEO...\n"
                    "       dmsd report  [--html FILE] [--csv FILE] [--quiet] IN.jsonl...\n"
                    "       dmsd check-config PATH...\n"
                    "       dmsd probe   [--config PATH] [--write DROPIN]\n"
                    "       dmsd sample  [--config PATH] [--source SOURCE] [--frames N]\n"
                    "       dmsd status  [--json] [--address BUS]\n"
                    "       dmsd version\n");
}

} // namespace

int main(int argc, char** argv) {
    using namespace dmsd::cli;
    dmsd::tuneAllocator(); // large per-sequence buffers reuse heap pages (base/allocator.h)
    if (argc < 2) {
        printUsage(stderr);
        return kExitUsage;
    }
    std::vector<std::string_view> args(argv + 2, argv + argc);
    const std::string_view command = argv[1];
    if (command == "run") {
        return runDaemon(args);
    }
    if (command == "analyze") {
        return runAnalyze(args);
    }
    if (command == "report") {
        return runReport(args);
    }
    if (command == "check-config") {
        return runCheckConfig(args);
    }
    if (command == "probe") {
        return runProbe(args);
    }
    if (command == "sample") {
        return runSample(args);
    }
    if (command == "status") {
        return runStatus(args);
    }
    if (command == "version" || command == "--version") {
        fmt::print("dmsd {}\n", dmsd::kVersion);
        return kExitOk;
    }
    if (command == "help" || command == "--help" || command == "-h") {
        printUsage(stdout);
        return kExitOk;
    }
    fmt::print(stderr, "dmsd: unknown command '{}'\n", command);
    printUsage(stderr);
    return kExitUsage;
}
