#include "test/support/notify_socket.h"

#include <cstring>
#include <poll.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>

namespace dmsd::test {

NotifySocket::NotifySocket(std::filesystem::path path) : path_(std::move(path)) {
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string p = path_.string();
    if (p.size() >= sizeof addr.sun_path) {
        throw std::runtime_error("notify socket path too long: " + p);
    }
    p.copy(addr.sun_path, sizeof addr.sun_path - 1);
    if (::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("bind " + p + ": " + std::strerror(errno));
    }
    reader_ = std::thread([this] { readLoop(); });
}

NotifySocket::~NotifySocket() {
    stop_ = true;
    reader_.join();
}

void NotifySocket::readLoop() {
    while (!stop_) {
        pollfd pfd{fd_.get(), POLLIN, 0};
        // The poll timeout only bounds how long destruction waits for this thread.
        if (::poll(&pfd, 1, 50) != 1) {
            continue;
        }
        char buf[4096];
        const ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
        if (n > 0) {
            std::lock_guard lock(mutex_);
            queue_.emplace_back(buf, static_cast<std::size_t>(n));
            arrived_.notify_all();
        }
    }
}

std::optional<std::string> NotifySocket::receive(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    if (!arrived_.wait_for(lock, timeout, [this] { return !queue_.empty(); })) {
        return std::nullopt;
    }
    received_.push_back(std::move(queue_.front()));
    queue_.pop_front();
    return received_.back();
}

std::optional<std::string>
NotifySocket::waitFor(const std::function<bool(const std::string&)>& match,
                      std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        auto message = receive(left);
        if (!message) {
            return std::nullopt;
        }
        if (match(*message)) {
            return message;
        }
    }
}

bool hasLine(const std::string& message, const std::string& line) {
    std::istringstream in(message);
    std::string l;
    while (std::getline(in, l)) {
        if (l == line) {
            return true;
        }
    }
    return false;
}

} // namespace dmsd::test
