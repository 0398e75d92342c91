#pragma once

/// \file
/// The receiving end of the daemon's CAN stand-in (dmsd-testbed --can-socket): an
/// AF_UNIX SOCK_SEQPACKET socket that accepts the daemon's connection (again
/// after each reconnect) and keeps every `struct can_frame` it receives, with
/// its arrival time, so tests and benchmarks check what would go on the bus.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "notify/can_frame.h"

namespace dmsd::test {

struct ReceivedCanFrame {
    std::uint32_t id = 0;
    CanPayload data{};
    std::chrono::steady_clock::time_point at;
};

class CanListener {
public:
    /// Listens at \a path (a file name in a test's temporary directory).
    explicit CanListener(std::filesystem::path path);
    ~CanListener();
    CanListener(const CanListener&) = delete;
    CanListener& operator=(const CanListener&) = delete;

    const std::filesystem::path& path() const { return path_; }
    /// The first frame received (from the start) for which \a match holds.
    std::optional<ReceivedCanFrame>
    waitFor(const std::function<bool(const ReceivedCanFrame&)>& match,
            std::chrono::milliseconds timeout);
    std::vector<ReceivedCanFrame> frames() const;

private:
    void loop();

    std::filesystem::path path_;
    UniqueFd listen_;
    int wake_[2] = {-1, -1};
    mutable std::mutex mutex_;
    std::condition_variable arrived_;
    std::vector<ReceivedCanFrame> frames_;
    std::thread thread_;
};

} // namespace dmsd::test
