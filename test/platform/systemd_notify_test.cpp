#include <cstdlib>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <sys/un.h>

#include <catch2/catch.hpp>

#include "platform/systemd_notify.h"
#include "platform/unique_fd.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

/// A datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifySocket {
public:
    NotifySocket() : path_((dir_ / "notify").string()) {
        fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        path_.copy(addr.sun_path, sizeof addr.sun_path - 1);
        REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        ::setenv("NOTIFY_SOCKET", path_.c_str(), 1);
    }
    ~NotifySocket() { ::unsetenv("NOTIFY_SOCKET"); }

    std::string receive() {
        pollfd pfd{fd_.get(), POLLIN, 0};
        if (::poll(&pfd, 1, 5000) != 1) {
            return "<timeout>";
        }
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
    }

private:
    test::TempDir dir_;
    std::string path_;
    UniqueFd fd_;
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
