#include <exception>
#include <filesystem>
#include <vector>

#include <fmt/format.h>

#include "cli/commands.h"
#include "config/loader.h"

namespace dmsd::cli {
namespace {

void printCheckConfigUsage(std::FILE* out) {
    fmt::print(out,
               "usage: dmsd check-config [--print] MAIN.yaml [EXTRA.yaml...]\n"
               "  Validates MAIN.yaml with its conf.d/*.yaml drop-ins, as 'dmsd run --config\n"
               "  MAIN.yaml' would load it, then EXTRA files merged on top in the order given\n"
               "  (to check a new drop-in before renaming it into conf.d).\n"
               "  --print  also print the effective configuration (JSON, itself valid YAML)\n"
               "  Exit status: 0 valid, 1 invalid (every error is listed), 2 usage error.\n");
}

int checkConfig(Args args) {
    bool print = false;
    std::vector<std::filesystem::path> paths;
    bool optionsDone = false;
    for (std::string_view arg : args) {
        if (!optionsDone && (arg == "--help" || arg == "-h")) {
            printCheckConfigUsage(stdout);
            return kExitOk;
        }
        if (!optionsDone && arg == "--print") {
            print = true;
        } else if (!optionsDone && arg == "--") {
            optionsDone = true;
        } else if (!optionsDone && arg.starts_with('-') && arg.size() > 1) {
            fmt::print(stderr, "dmsd check-config: unknown option '{}'\n", arg);
            printCheckConfigUsage(stderr);
            return kExitUsage;
        } else {
            paths.emplace_back(arg);
        }
    }
    if (paths.empty()) {
        fmt::print(stderr, "dmsd check-config: no configuration file given\n");
        printCheckConfigUsage(stderr);
        return kExitUsage;
    }

    const std::vector<std::filesystem::path> extra(paths.begin() + 1, paths.end());
    const ConfigLoad load = loadConfig(paths.front(), extra);
    if (!load.config) {
        for (const ConfigError& error : load.errors) {
            fmt::print(stderr, "{}\n", error.format());
        }
        fmt::print(stderr, "dmsd check-config: configuration invalid ({} error{} in {} file{})\n",
                   load.errors.size(), load.errors.size() == 1 ? "" : "s", load.files.size(),
                   load.files.size() == 1 ? "" : "s");
        return kExitInputFailed;
    }
    std::vector<std::string> names;
    for (const auto& file : load.files) {
        names.push_back(file.string());
    }
    fmt::print("configuration valid: {}; files: {}\n", summary(*load.config),
               fmt::join(names, ", "));
    if (print) {
        fmt::print("{}", effectiveConfigJson(*load.config));
    }
    return kExitOk;
}

} // namespace

int runCheckConfig(Args args) {
    // Never a stack trace: whatever escapes is reported as one line.
    try {
        return checkConfig(args);
    } catch (const std::exception& e) {
        fmt::print(stderr, "dmsd check-config: could not check the configuration: {}\n", e.what());
    } catch (...) {
        fmt::print(stderr, "dmsd check-config: could not check the configuration\n");
    }
    return kExitInputFailed;
}

} // namespace dmsd::cli
