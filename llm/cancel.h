#pragma once

/// \file
/// Cancellation shared by the requests of one sequence (or one client call).
/// Single-threaded: use it on the io_context thread only.

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <utility>

namespace dmsd {

/// A one-shot cancellation flag with hooks. Whoever waits on I/O registers a
/// hook that aborts that I/O (closes the socket, cancels the timer), so a
/// cancel takes effect at once and the server sees the connection close.
class CancelSignal {
public:
    using Hook = std::function<void()>;

    /// Deregisters its hook when destroyed (move-only).
    class Registration {
    public:
        Registration() = default;
        Registration(Registration&& other) noexcept { *this = std::move(other); }
        Registration& operator=(Registration&& other) noexcept {
            if (this != &other) {
                reset();
                owner_ = std::exchange(other.owner_, nullptr);
                it_ = other.it_;
            }
            return *this;
        }
        Registration(const Registration&) = delete;
        Registration& operator=(const Registration&) = delete;
        ~Registration() { reset(); }
        void reset() {
            if (owner_ != nullptr) {
                owner_->hooks_.erase(it_);
                owner_ = nullptr;
            }
        }

    private:
        friend class CancelSignal;
        Registration(CancelSignal* owner, std::list<Hook>::iterator it) : owner_(owner), it_(it) {}
        CancelSignal* owner_ = nullptr;
        std::list<Hook>::iterator it_;
    };

    CancelSignal() = default;
    CancelSignal(const CancelSignal&) = delete;
    CancelSignal& operator=(const CancelSignal&) = delete;

    bool cancelled() const { return cancelled_; }

    /// Sets the flag and runs every registered hook once. Idempotent.
    void cancel() {
        if (cancelled_) {
            return;
        }
        cancelled_ = true;
        // A hook may deregister itself (or others) while running: iterate a copy.
        std::list<Hook> hooks = hooks_;
        for (auto& hook : hooks) {
            hook();
        }
    }

    /// Registers \a hook; when already cancelled it runs at once (and is not kept).
    [[nodiscard]] Registration onCancel(Hook hook) {
        if (cancelled_) {
            hook();
            return {};
        }
        hooks_.push_back(std::move(hook));
        return Registration(this, std::prev(hooks_.end()));
    }

private:
    bool cancelled_ = false;
    std::list<Hook> hooks_;
};

using CancelSignalPtr = std::shared_ptr<CancelSignal>;

} // namespace dmsd
