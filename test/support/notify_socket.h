#pragma once

/// \file
/// A datagram socket standing in for systemd's NOTIFY_SOCKET: tests read the
/// READY=1 / STATUS= / WATCHDOG= / STOPPING=1 messages a process sends.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/unique_fd.h"

namespace dmsd::test {

/// A reader thread drains the socket at once, as systemd does: sd_notify()
/// blocks the sender when a datagram socket's queue (net.unix.max_dgram_qlen,
/// often 10) is full, which would stall the process under test.
class NotifySocket {
public:
    /// Binds a socket at \a path (a file name in a test's temporary directory).
    explicit NotifySocket(std::filesystem::path path);
    ~NotifySocket();
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    const std::filesystem::path& path() const { return path_; }
    /// Next datagram, or nullopt after \a timeout.
    std::optional<std::string> receive(std::chrono::milliseconds timeout);
    /// Receives until a datagram for which \a match holds; nullopt on timeout.
    std::optional<std::string> waitFor(const std::function<bool(const std::string&)>& match,
                                       std::chrono::milliseconds timeout);
    /// Every datagram received so far.
    const std::vector<std::string>& received() const { return received_; }

private:
    void readLoop();

    std::filesystem::path path_;
    UniqueFd fd_;
    std::vector<std::string> received_;
    std::mutex mutex_;
    std::condition_variable arrived_;
    std::deque<std::string> queue_;
    std::atomic<bool> stop_{false};
    std::thread reader_;
};

/// True when the notify message \a message has the line \a line ("READY=1").
bool hasLine(const std::string& message, const std::string& line);

} // namespace dmsd::test
