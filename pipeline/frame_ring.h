#pragma once

/// \file
/// Bounded lock-free single-producer/single-consumer ring of frame references
/// between GStreamer's streaming thread (producer) and the sampler thread
/// (consumer). Only a reference to the captured sample travels; its pixels
/// are never copied.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <semaphore>

#include <boost/lockfree/spsc_queue.hpp>

#include "pipeline/gst_handles.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// One captured frame in flight: the sample reference plus its identity.
struct CapturedSample {
    GstSamplePtr sample; ///< may be empty in tests of the ring itself
    std::uint64_t frameId = 0;
    double ptsS = 0.0;
    double durationS = 0.0;
    SteadyTime capturedAt{};
};

/// SPSC ring. Exactly one thread may call the producer functions and exactly
/// one (other) thread the consumer functions; wake functions are free-threaded.
class FrameRing {
public:
    explicit FrameRing(std::size_t capacity);
    FrameRing(const FrameRing&) = delete;
    FrameRing& operator=(const FrameRing&) = delete;
    /// Releases the references still queued.
    ~FrameRing();

    // --- producer side ---
    /// Never blocks. When the ring is full the sample is released (dropped)
    /// and false is returned; the caller counts the drop.
    bool tryPush(CapturedSample&& sample);
    /// Back-pressure for offline decoding: waits until there is room or
    /// \a cancel becomes true (checked at least every \a poll). On cancel the
    /// sample is released and false returned.
    bool pushWait(CapturedSample&& sample, const std::atomic<bool>& cancel,
                  std::chrono::milliseconds poll = std::chrono::milliseconds(50));

    // --- consumer side ---
    /// Takes the oldest entry, if any, without waiting.
    std::optional<CapturedSample> tryPop();
    /// Takes the oldest entry, waiting up to \a timeout for one. Returns early
    /// with nothing when wakeConsumer() was called since the last such return
    /// (the wake is latched, so a wake before the wait is not lost).
    std::optional<CapturedSample> pop(std::chrono::milliseconds timeout);
    /// Releases every queued entry (consumer side).
    void clear();

    /// Makes a consumer blocked in pop() return (end of stream, stop).
    void wakeConsumer();
    /// Makes a producer blocked in pushWait() re-check its cancel flag.
    void wakeProducer();

    std::size_t capacity() const { return capacity_; }

private:
    // What the lock-free queue holds: trivially copyable, the sample pointer
    // carries one owned reference.
    struct Slot {
        GstSample* sample;
        std::uint64_t frameId;
        double ptsS;
        double durationS;
        std::int64_t capturedAtNs;
    };
    static Slot toSlot(CapturedSample&& sample);
    static CapturedSample fromSlot(const Slot& slot);

    std::size_t capacity_;
    boost::lockfree::spsc_queue<Slot> queue_;
    // A side waiting sets its flag and sleeps on its semaphore; the other side
    // releases the semaphore only when it sees the flag, so the common path is
    // a few atomic operations and no system call.
    std::atomic<bool> consumerWaiting_{false};
    std::atomic<bool> producerWaiting_{false};
    std::atomic<bool> wakeRequested_{false};
    std::counting_semaphore<> dataReady_{0};
    std::counting_semaphore<> spaceReady_{0};
};

} // namespace dmsd
