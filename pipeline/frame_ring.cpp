#include "pipeline/frame_ring.h"

#include <algorithm>

namespace dmsd {

namespace {
std::int64_t toNs(SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
} // namespace

FrameRing::FrameRing(std::size_t capacity)
    : capacity_(std::max<std::size_t>(capacity, 1)), queue_(capacity_) {
}

FrameRing::~FrameRing() {
    clear();
}

FrameRing::Slot FrameRing::toSlot(CapturedSample&& sample) {
    return Slot{sample.sample.release(), sample.frameId, sample.ptsS, sample.durationS,
                toNs(sample.capturedAt)};
}

CapturedSample FrameRing::fromSlot(const Slot& slot) {
    CapturedSample sample;
    sample.sample = GstSamplePtr::adopt(slot.sample);
    sample.frameId = slot.frameId;
    sample.ptsS = slot.ptsS;
    sample.durationS = slot.durationS;
    sample.capturedAt = SteadyTime(std::chrono::nanoseconds(slot.capturedAtNs));
    return sample;
}

bool FrameRing::tryPush(CapturedSample&& sample) {
    Slot slot = toSlot(std::move(sample));
    if (!queue_.push(slot)) {
        GstSamplePtr::adopt(slot.sample); // dropped: give the reference back
        return false;
    }
    // The flags are only touched with sequentially consistent read-modify-
    // writes (full barriers on x86 and ARMv8), so either the consumer sees the
    // new entry or we see its waiting flag: no lost wake-up. Waits are bounded
    // anyway. (No atomic_thread_fence: ThreadSanitizer does not model fences.)
    if (consumerWaiting_.exchange(false)) {
        dataReady_.release();
    }
    return true;
}

bool FrameRing::pushWait(CapturedSample&& sample, const std::atomic<bool>& cancel,
                         std::chrono::milliseconds poll) {
    Slot slot = toSlot(std::move(sample));
    for (;;) {
        (void)producerWaiting_.exchange(true);
        if (queue_.push(slot)) {
            (void)producerWaiting_.exchange(false);
            if (consumerWaiting_.exchange(false)) {
                dataReady_.release();
            }
            return true;
        }
        if (cancel.load()) {
            producerWaiting_.store(false);
            GstSamplePtr::adopt(slot.sample);
            return false;
        }
        (void)spaceReady_.try_acquire_for(poll);
    }
}

std::optional<CapturedSample> FrameRing::tryPop() {
    Slot slot{};
    if (!queue_.pop(slot)) {
        return std::nullopt;
    }
    if (producerWaiting_.exchange(false)) {
        spaceReady_.release();
    }
    return fromSlot(slot);
}

std::optional<CapturedSample> FrameRing::pop(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (auto sample = tryPop()) {
            return sample;
        }
        if (wakeRequested_.exchange(false)) {
            return std::nullopt;
        }
        (void)consumerWaiting_.exchange(true);
        if (auto sample = tryPop()) {
            consumerWaiting_.store(false);
            return sample;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            consumerWaiting_.store(false);
            return std::nullopt;
        }
        // A stale token (released after we had already found an entry) only
        // costs one more turn of the loop.
        (void)dataReady_.try_acquire_until(deadline);
        consumerWaiting_.store(false);
    }
}

void FrameRing::clear() {
    while (tryPop()) {
    }
}

void FrameRing::wakeConsumer() {
    (void)wakeRequested_.exchange(true);
    if (consumerWaiting_.exchange(false)) {
        dataReady_.release();
    }
}

void FrameRing::wakeProducer() {
    if (producerWaiting_.exchange(false)) {
        spaceReady_.release();
    }
}

} // namespace dmsd
