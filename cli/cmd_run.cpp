#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>

#include "cli/commands.h"
#include "daemon/daemon.h"

namespace dmsd::cli {

namespace po = boost::program_options;

int runDaemon(Args args) {
    DaemonOptions options;
    if (const char* stateDir = std::getenv("STATE_DIRECTORY")) {
        // systemd may pass several, colon-separated; the first is ours.
        std::string dir(stateDir);
        options.stateDir = dir.substr(0, dir.find(':'));
    }
    std::string configPath = options.configPath.string();
    std::string stateDir = options.stateDir.string();
    po::options_description desc("dmsd run");
    desc.add_options()("config", po::value(&configPath),
                       "configuration file (default /etc/dmsd/dmsd.yaml)")(
        "state-dir", po::value(&stateDir),
        "where the last known good configuration is kept (default $STATE_DIRECTORY or "
        "/var/lib/dmsd)")("verbose,v",
                          "log at debug priority, over log.level, with the code position of "
                          "each entry on stderr")("help,h", "this help");
    po::variables_map vm;
    try {
        std::vector<std::string> argv(args.begin(), args.end());
        po::store(po::command_line_parser(argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        fmt::print(stderr,
                   "dmsd run: {}\nusage: dmsd run [--config PATH] [--state-dir DIR] [--verbose]\n",
                   e.what());
        return kExitUsage;
    }
    if (vm.count("help")) {
        fmt::print("usage: dmsd run [--config PATH] [--state-dir DIR] [--verbose]\n");
        return kExitOk;
    }
    options.configPath = configPath;
    options.stateDir = stateDir;
    options.verbose = vm.count("verbose") > 0;
    return runService(options);
}

} // namespace dmsd::cli
