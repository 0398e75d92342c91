#pragma once

/// \file
/// A whole dmsd installation in a temporary directory, made of real processes:
/// the Ollama emulator, a private dbus-daemon, `dmsd run` with its config and a
/// generated video, NOTIFY_SOCKET as a datagram socket, busctl as the client.

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "test/support/child_process.h"
#include "test/support/notify_socket.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

namespace dmsd::test {

/// Seams of the test-only `dmsd-testbed` (test/integration/dmsd_testbed_main.cpp,
/// daemon/daemon.h DaemonSeams). When one is set, Harness::startDaemon runs
/// dmsd-testbed instead of the shipped dmsd, which has no test hook.
struct TestSeams {
    /// The rollback window, shortened (30 s in dmsd).
    std::optional<std::chrono::milliseconds> probation;
    /// CAN frames go to the AF_UNIX SOCK_SEQPACKET socket listening here
    /// (test/support/can_listener.h) instead of CAN_RAW.
    std::filesystem::path canSocket;
    /// The sampler thread stalls after this many frames.
    std::optional<int> stallSamplerAfter;

    bool any() const { return probation || !canSocket.empty() || stallSamplerAfter; }
    /// The testbed's command-line flags for these seams.
    std::vector<std::string> flags() const;
};

class Harness {
public:
    Harness();
    ~Harness();

    const TempDir& dir() const { return dir_; }
    std::filesystem::path configPath() const { return dir_ / "etc" / "dmsd.yaml"; }
    std::filesystem::path confDir() const { return dir_ / "etc" / "conf.d"; }
    std::filesystem::path videoPath() const { return dir_ / "driver.mp4"; }
    std::filesystem::path snapshotDir() const { return dir_ / "snapshots"; }

    void makeVideo(const VideoSpec& spec);

    /// Starts the emulator (args appended to --port/--seed/--log); \a port 0 picks one.
    void startEmulator(const std::vector<std::string>& args, int port = 0);
    void stopEmulator();
    int emulatorPort() const { return emulatorPort_; }
    std::string emulatorUrl() const;
    /// GET /_emulator/stats as JSON.
    boost::json::object emulatorStats() const;
    std::filesystem::path emulatorLog() const { return dir_ / "emulator.jsonl"; }

    void startBus();
    const std::string& busAddress() const { return busAddress_; }

    /// Writes dmsd.yaml: \a extraYaml is appended after the harness's base keys
    /// (capture of the video, the emulator URL, the private bus, snapshots).
    void writeConfig(const std::string& yaml);
    /// The base configuration for this harness as YAML (capture, llm.url, notify).
    std::string baseConfig(const std::string& version = "it-1") const;

    /// Starts `dmsd run` (or `dmsd-testbed run` when \a seams asks for any);
    /// \a env adds variables (WATCHDOG_USEC, ...), \a runArgs options of `run` (--verbose). Its
    /// stderr (the journal's text form) is inherited, and also kept in daemonLog().
    void startDaemon(const std::vector<std::pair<std::string, std::string>>& env = {},
                     const TestSeams& seams = {}, const std::vector<std::string>& runArgs = {});
    std::filesystem::path daemonLogPath() const { return dir_ / "dmsd.log"; }
    /// Everything the daemon wrote to stderr so far.
    std::string daemonLog() const;
    ChildProcess& daemon() { return *dmsd_; }
    NotifySocket& notify() { return *notify_; }
    /// Waits for READY=1; returns when it came.
    std::optional<std::chrono::steady_clock::time_point>
    waitReady(std::chrono::milliseconds timeout);

    /// Runs busctl against the private bus; returns {exit code, output}.
    std::pair<int, std::string> busctl(const std::vector<std::string>& args) const;
    /// A D-Bus property of the service, decoded from busctl's JSON ("data").
    boost::json::value property(const std::string& name) const;
    /// GetStatus, parsed.
    boost::json::object status() const;
    /// Runs `dmsd ARGS...` (the shipped binary, e.g. `status --address ...`);
    /// returns {exit code, stdout and stderr}.
    std::pair<int, std::string> dmsd(const std::vector<std::string>& args) const;
    /// `busctl monitor` on the service with JSON output; read with readLine.
    std::unique_ptr<ChildProcess> monitor() const;

    /// Number of open file descriptors of the daemon (from /proc).
    std::size_t daemonFdCount() const;
    /// Resident set size of the daemon, kB (from /proc).
    std::size_t daemonRssKb() const;

private:
    TempDir dir_{"dmsd-it"};
    std::unique_ptr<ChildProcess> emulator_;
    int emulatorPort_ = 0;
    std::unique_ptr<ChildProcess> bus_;
    std::string busAddress_;
    std::unique_ptr<NotifySocket> notify_;
    std::unique_ptr<ChildProcess> dmsd_;
};

/// A signal caught by `busctl monitor --json=short`: member and arguments.
struct BusSignal {
    std::string member;
    boost::json::array args;
    std::chrono::steady_clock::time_point at;
};

/// Reads monitor lines until a signal \a member (with first argument \a firstArg
/// when not empty) arrives; nullopt on timeout.
std::optional<BusSignal> waitSignal(ChildProcess& monitor, const std::string& member,
                                    const std::string& firstArg, std::chrono::milliseconds timeout);

} // namespace dmsd::test
