#include "test/support/child_process.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdexcept>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace dmsd::test {
namespace {

using Clock = std::chrono::steady_clock;

int exitCodeOf(int status) {
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    if (WIFSIGNALED(status)) {
        return 128 + WTERMSIG(status);
    }
    return -1;
}

} // namespace

ChildProcess::ChildProcess(Options options) {
    if (options.argv.empty()) {
        throw std::runtime_error("ChildProcess: empty argv");
    }
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
        throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    }
    UniqueFd outRead(out[0]);
    UniqueFd outWrite(out[1]);
    UniqueFd inRead;
    if (options.stdinPipe) {
        int in[2];
        if (::pipe2(in, O_CLOEXEC) != 0) {
            throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
        }
        inRead.reset(in[0]);
        stdin_.reset(in[1]);
    }

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, outWrite.get(), STDOUT_FILENO);
    if (options.mergeStderr) {
        posix_spawn_file_actions_adddup2(&actions, outWrite.get(), STDERR_FILENO);
    }
    if (inRead) {
        posix_spawn_file_actions_adddup2(&actions, inRead.get(), STDIN_FILENO);
    } else {
        posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    }

    std::map<std::string, std::string> envMap;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string entry(*e);
        auto eq = entry.find('=');
        if (eq != std::string::npos) {
            envMap[entry.substr(0, eq)] = entry.substr(eq + 1);
        }
    }
    for (const auto& [key, value] : options.env) {
        envMap[key] = value;
    }
    std::vector<std::string> envStrings;
    for (const auto& [key, value] : envMap) {
        envStrings.push_back(key + "=" + value);
    }
    std::vector<char*> envp;
    for (std::string& s : envStrings) {
        envp.push_back(s.data());
    }
    envp.push_back(nullptr);
    std::vector<char*> argv;
    for (std::string& s : options.argv) {
        argv.push_back(s.data());
    }
    argv.push_back(nullptr);

    const int rc = ::posix_spawnp(&pid_, argv[0], &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        throw std::runtime_error("cannot start " + options.argv[0] + ": " + std::strerror(rc));
    }
    stdout_ = std::move(outRead);
    ::fcntl(stdout_.get(), F_SETFL, O_NONBLOCK);
}

ChildProcess::~ChildProcess() {
    if (pid_ > 0 && !exitCode_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
}

bool ChildProcess::fillBuffer(Clock::time_point deadline) {
    if (eof_) {
        return false;
    }
    for (;;) {
        char chunk[4096];
        const ssize_t n = ::read(stdout_.get(), chunk, sizeof chunk);
        if (n > 0) {
            buffer_.append(chunk, static_cast<std::size_t>(n));
            return true;
        }
        if (n == 0) {
            eof_ = true;
            return false;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno != EAGAIN) {
            eof_ = true;
            return false;
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            return false;
        }
        pollfd pfd{stdout_.get(), POLLIN, 0};
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
        ::poll(&pfd, 1, static_cast<int>(ms.count()) + 1);
    }
}

std::optional<std::string> ChildProcess::readLine(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto nl = buffer_.find('\n');
        if (nl != std::string::npos) {
            std::string line = buffer_.substr(0, nl);
            buffer_.erase(0, nl + 1);
            lines_.push_back(line);
            return line;
        }
        if (!fillBuffer(deadline)) {
            if (eof_ && !buffer_.empty()) {
                std::string line = std::move(buffer_);
                buffer_.clear();
                lines_.push_back(line);
                return line;
            }
            return std::nullopt;
        }
    }
}

std::optional<std::string>
ChildProcess::waitForLine(const std::function<bool(const std::string&)>& match,
                          std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        auto line = readLine(left);
        if (!line) {
            return std::nullopt;
        }
        if (match(*line)) {
            return line;
        }
    }
}

std::string ChildProcess::readAll(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (readLine(std::chrono::duration_cast<std::chrono::milliseconds>(
        std::max(deadline - Clock::now(), Clock::duration::zero())))) {
    }
    std::string all;
    for (const std::string& line : lines_) {
        all += line;
        all += '\n';
    }
    return all;
}

bool ChildProcess::writeStdin(const std::string& data) {
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(stdin_.get(), data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return true;
}

void ChildProcess::closeStdin() {
    stdin_.reset();
}

void ChildProcess::signal(int sig) const {
    if (pid_ > 0 && !exitCode_) {
        ::kill(pid_, sig);
    }
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
    if (exitCode_) {
        return exitCode_;
    }
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        int status = 0;
        const pid_t r = ::waitpid(pid_, &status, WNOHANG);
        if (r == pid_) {
            exitCode_ = exitCodeOf(status);
            return exitCode_;
        }
        if (r < 0 && errno != EINTR) {
            return std::nullopt;
        }
        if (Clock::now() >= deadline) {
            return std::nullopt;
        }
        // No portable fd to await a child's exit on; a short poll interval is the event source.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

int ChildProcess::terminate(std::chrono::milliseconds grace) {
    signal(SIGTERM);
    if (auto code = wait(grace)) {
        return *code;
    }
    signal(SIGKILL);
    return wait(std::chrono::seconds(10)).value_or(-1);
}

bool ChildProcess::running() {
    return !wait(std::chrono::milliseconds(0)).has_value();
}

std::pair<int, std::string>
runCommand(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
           const std::vector<std::pair<std::string, std::string>>& env) {
    ChildProcess child({argv, env, true, false});
    std::string output = child.readAll(timeout);
    auto code = child.wait(std::chrono::milliseconds(100));
    if (!code) {
        code = child.terminate(std::chrono::seconds(1));
    }
    return {*code, output};
}

bool waitUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

} // namespace dmsd::test
