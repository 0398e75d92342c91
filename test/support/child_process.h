#pragma once

/// \file
/// Real child processes for integration tests (the Ollama emulator, a private
/// dbus-daemon, dmsd itself, busctl, ...): spawn, read stdout lines with a
/// deadline, signal, wait. The child's stderr is inherited unless merged, so
/// that ctest shows it when a test fails.

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <utility>
#include <vector>

#include "base/unique_fd.h"

namespace dmsd::test {

class ChildProcess {
public:
    struct Options {
        std::vector<std::string> argv; ///< argv[0] is the program (PATH is searched)
        /// Variables added to (or replacing in) the parent's environment.
        std::vector<std::pair<std::string, std::string>> env;
        bool mergeStderr = false; ///< also read the child's stderr through the stdout pipe
        bool stdinPipe = false;   ///< give the child a pipe as stdin (see writeStdin)
    };

    /// Starts the process; throws std::runtime_error if it cannot be spawned.
    explicit ChildProcess(Options options);
    /// Starts \a argv with the parent's environment and stderr inherited.
    explicit ChildProcess(std::vector<std::string> argv)
        : ChildProcess(Options{std::move(argv), {}, false, false}) {}
    ChildProcess(ChildProcess&&) = default;
    ChildProcess& operator=(ChildProcess&&) = default;
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;
    /// Kills (SIGKILL) and reaps the child if it still runs.
    ~ChildProcess();

    pid_t pid() const { return pid_; }

    /// Next line of output (without '\n'), or nullopt on timeout or end of output.
    std::optional<std::string> readLine(std::chrono::milliseconds timeout);
    /// Reads lines until one satisfies \a match; returns it, or nullopt on timeout/EOF.
    std::optional<std::string> waitForLine(const std::function<bool(const std::string&)>& match,
                                           std::chrono::milliseconds timeout);
    /// Every line read so far (for failure messages).
    const std::vector<std::string>& lines() const { return lines_; }
    /// Reads everything until EOF or timeout; returns all output read so far joined by '\n'.
    std::string readAll(std::chrono::milliseconds timeout);

    bool writeStdin(const std::string& data);
    void closeStdin();

    void signal(int sig) const;
    /// Waits for exit; returns the exit code (128+signal when killed), nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    /// SIGTERM, wait up to \a grace, then SIGKILL; returns the exit code.
    int terminate(std::chrono::milliseconds grace = std::chrono::seconds(5));
    bool running();

private:
    bool fillBuffer(std::chrono::steady_clock::time_point deadline);

    pid_t pid_ = -1;
    std::optional<int> exitCode_;
    UniqueFd stdout_;
    UniqueFd stdin_;
    std::string buffer_;
    bool eof_ = false;
    std::vector<std::string> lines_;
};

/// Runs a command to completion (bounded by \a timeout, then killed); returns
/// {exit code, stdout+stderr}.
std::pair<int, std::string>
runCommand(const std::vector<std::string>& argv,
           std::chrono::milliseconds timeout = std::chrono::seconds(60),
           const std::vector<std::pair<std::string, std::string>>& env = {});

/// Polls \a condition every few milliseconds until it holds or \a timeout passes.
/// For conditions with no event to wait on (a file appearing, a counter moving).
bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout);

} // namespace dmsd::test
