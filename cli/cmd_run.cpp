#include <cstdlib>
#include <exception>
#include <string>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <gst/gst.h>

#include "base/log.h"
#include "cli/commands.h"
#include "config/loader.h"
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
        "/var/lib/dmsd)")("help,h", "this help");
    po::variables_map vm;
    try {
        std::vector<std::string> argv(args.begin(), args.end());
        po::store(po::command_line_parser(argv).options(desc).run(), vm);
        po::notify(vm);
    } catch (const std::exception& e) {
        fmt::print(stderr, "dmsd run: {}\nusage: dmsd run [--config PATH] [--state-dir DIR]\n",
                   e.what());
        return kExitUsage;
    }
    if (vm.count("help")) {
        fmt::print("usage: dmsd run [--config PATH] [--state-dir DIR]\n");
        return kExitOk;
    }
    options.configPath = configPath;
    options.stateDir = stateDir;
    if (const char* probation = std::getenv("DMSD_TEST_PROBATION_MS")) {
        // Test hook: the contract's 30 s rollback window, shortened for tests.
        options.probation = std::chrono::milliseconds(std::atoll(probation));
    }
    if (const char* can = std::getenv("DMSD_TEST_CAN_SOCKET")) {
        options.canSocketForTest = can;
    }
    if (const char* stall = std::getenv("DMSD_TEST_STALL")) {
        options.stallSamplerForTest = std::string(stall) == "sampler";
    }

    log::configure(log::Backend::Auto);
    std::optional<Config> config = loadConfigOrReport(options.configPath, "run");
    if (!config) {
        return kExitUsage;
    }
    gst_init(nullptr, nullptr);
    try {
        Daemon daemon(std::move(*config), options);
        return daemon.run();
    } catch (const std::exception& e) {
        // Only start-up can throw (a broken installation); the frame, HTTP and
        // notifier paths report errors as values and keep running.
        log::error("dmsd cannot start: {}", e.what());
        return kExitUsage;
    }
}

} // namespace dmsd::cli
