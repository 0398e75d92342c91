#pragma once

/// \file
/// Move-only owner of a file descriptor (after libcamera's UniqueFD).

#include <unistd.h>
#include <utility>

namespace dmsd {

class UniqueFd final {
public:
    UniqueFd() = default;
    explicit UniqueFd(int fd) : fd_(fd) {}
    UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
    UniqueFd& operator=(UniqueFd&& other) noexcept {
        reset(other.release());
        return *this;
    }
    UniqueFd(const UniqueFd&) = delete;
    UniqueFd& operator=(const UniqueFd&) = delete;
    ~UniqueFd() { reset(); }

    /// Gives up ownership without closing.
    [[nodiscard]] int release() { return std::exchange(fd_, -1); }
    /// Closes the current descriptor (if any) and takes \a fd.
    void reset(int fd = -1) {
        if (fd_ >= 0 && fd_ != fd) {
            ::close(fd_);
        }
        fd_ = fd;
    }
    int get() const { return fd_; }
    bool isValid() const { return fd_ >= 0; }
    explicit operator bool() const { return isValid(); }

private:
    int fd_ = -1;
};

} // namespace dmsd
