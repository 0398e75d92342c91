#include <cstdlib>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include "daemon/systemd_notify.h"
#include "test/support/notify_socket.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// The shared test NotifySocket, installed as this process's NOTIFY_SOCKET.
class NotifySocket {
public:
    NotifySocket() : socket_(dir_ / "notify") {
        ::setenv("NOTIFY_SOCKET", socket_.path().c_str(), 1);
    }
    ~NotifySocket() { ::unsetenv("NOTIFY_SOCKET"); }
    std::string receive() { return socket_.receive(5000ms).value_or("<timeout>"); }

private:
    test::TempDir dir_;
    test::NotifySocket socket_;
};

} // namespace

TEST_CASE("SystemdNotifier speaks the sd_notify protocol to NOTIFY_SOCKET") {
    NotifySocket socket;
    SystemdNotifier notifier;
    notifier.ready("running: camera ok");
    CHECK(socket.receive() == "READY=1\nSTATUS=running: camera ok");
    notifier.reloading("reloading configuration");
    const std::string reloading = socket.receive();
    CHECK(reloading.rfind("RELOADING=1\nMONOTONIC_USEC=", 0) == 0);
    CHECK(reloading.find("\nSTATUS=reloading configuration") != std::string::npos);
    notifier.watchdogPing();
    CHECK(socket.receive() == "WATCHDOG=1");
    notifier.watchdogTrigger();
    CHECK(socket.receive() == "WATCHDOG=trigger");
    notifier.stopping("stopping");
    CHECK(socket.receive() == "STOPPING=1\nSTATUS=stopping");
}

TEST_CASE("watchdog interval follows WATCHDOG_USEC for this process only") {
    ::setenv("WATCHDOG_USEC", "4000000", 1);
    ::setenv("WATCHDOG_PID", std::to_string(::getpid()).c_str(), 1);
    CHECK(SystemdNotifier::watchdogInterval() == std::chrono::microseconds(4000000));
    ::setenv("WATCHDOG_PID", "1", 1);
    CHECK_FALSE(SystemdNotifier::watchdogInterval().has_value());
    ::unsetenv("WATCHDOG_USEC");
    ::unsetenv("WATCHDOG_PID");
    CHECK_FALSE(SystemdNotifier::watchdogInterval().has_value());
}

TEST_CASE("WorkerWatchdog names exactly the workers that stopped stamping") {
    WorkerWatchdog watchdog;
    const auto t0 = WorkerWatchdog::Clock::now();
    const std::size_t capture = watchdog.addWorker("capture", 1000ms);
    const std::size_t sampler = watchdog.addWorker("sampler", 2000ms);
    watchdog.stamp(capture, t0);
    watchdog.stamp(sampler, t0);
    CHECK(watchdog.stalled(t0 + 900ms).empty());
    CHECK(watchdog.stalled(t0 + 1500ms) == std::vector<std::string>{"capture"});
    watchdog.stamp(capture, t0 + 1500ms);
    CHECK(watchdog.stalled(t0 + 2100ms) == std::vector<std::string>{"sampler"});
    watchdog.setSupervised(sampler, false);
    CHECK(watchdog.stalled(t0 + 2100ms).empty());
}
