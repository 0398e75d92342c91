#include "test/support/can_listener.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <linux/can.h>

namespace dmsd::test {

CanListener::CanListener(std::filesystem::path path) : path_(std::move(path)) {
    listen_ = UniqueFd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = path_.string();
    if (!listen_ || name.size() >= sizeof address.sun_path) {
        throw std::runtime_error("CanListener: cannot create a socket for " + name);
    }
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
    std::filesystem::remove(path_);
    if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_.get(), 4) != 0 || ::pipe2(wake_, O_CLOEXEC) != 0) {
        throw std::runtime_error("CanListener: cannot listen at " + name + ": " +
                                 std::strerror(errno));
    }
    thread_ = std::thread([this] { loop(); });
}

CanListener::~CanListener() {
    const char stop = 1;
    (void)!::write(wake_[1], &stop, 1);
    thread_.join();
    ::close(wake_[0]);
    ::close(wake_[1]);
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

void CanListener::loop() {
    std::vector<UniqueFd> peers;
    for (;;) {
        std::vector<pollfd> fds{{wake_[0], POLLIN, 0}, {listen_.get(), POLLIN, 0}};
        for (const UniqueFd& peer : peers) {
            fds.push_back({peer.get(), POLLIN, 0});
        }
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            return;
        }
        if (fds[0].revents != 0) {
            return;
        }
        if (fds[1].revents & POLLIN) {
            UniqueFd peer(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (peer) {
                peers.push_back(std::move(peer));
            }
        }
        for (std::size_t i = 2; i < fds.size(); ++i) {
            if (fds[i].revents == 0) {
                continue;
            }
            can_frame frame{};
            const ssize_t n = ::recv(fds[i].fd, &frame, sizeof frame, 0);
            const auto at = std::chrono::steady_clock::now();
            if (n == static_cast<ssize_t>(sizeof frame)) {
                ReceivedCanFrame received;
                received.id = frame.can_id & CAN_SFF_MASK;
                std::memcpy(received.data.data(), frame.data, received.data.size());
                received.at = at;
                {
                    std::lock_guard lock(mutex_);
                    frames_.push_back(received);
                }
                arrived_.notify_all();
            } else if (n <= 0) {
                fds[i].fd = -1; // closed: dropped below
            }
        }
        for (std::size_t i = fds.size(); i-- > 2;) {
            if (fds[i].fd == -1) {
                peers.erase(peers.begin() + static_cast<std::ptrdiff_t>(i - 2));
            }
        }
    }
}

std::optional<ReceivedCanFrame>
CanListener::waitFor(const std::function<bool(const ReceivedCanFrame&)>& match,
                     std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::size_t seen = 0;
    std::optional<ReceivedCanFrame> found;
    arrived_.wait_for(lock, timeout, [&] {
        for (; seen < frames_.size(); ++seen) {
            if (match(frames_[seen])) {
                found = frames_[seen];
                return true;
            }
        }
        return false;
    });
    return found;
}

std::vector<ReceivedCanFrame> CanListener::frames() const {
    std::lock_guard lock(mutex_);
    return frames_;
}

} // namespace dmsd::test
