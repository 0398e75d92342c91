#pragma once

/// \file
/// The consumer side of the frame path: frame source (ring) -> motion sampler
/// -> JPEG encoder -> callback. One FramePath runs on one thread (the
/// daemon's sampler thread, or a batch analyzer's worker); counters and the
/// activity stamp may be read from any thread.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

#include "pipeline/capture.h"
#include "pipeline/jpeg_encoder.h"
#include "pipeline/motion_sampler.h"
#include "pipeline/sequence.h"
#include "pipeline/settings.h"

namespace dmsd {

struct FramePathCallbacks {
    /// A sequence to analyse (called on the FramePath's thread).
    std::function<void(EncodedSequencePtr)> onSequence;
    /// A static window that was skipped: carry the last answers forward.
    std::function<void(const SkippedWindow&)> onSkipped;
    /// Every frame, before the sampler sees it (the per-frame vision takes a
    /// reference here; it must not block). Called on the FramePath's thread.
    std::function<void(const FramePtr&)> onFrame;
};

struct FramePathCounters {
    std::uint64_t framesSampled = 0;    ///< frames seen by the sampler
    std::uint64_t sequencesEmitted = 0; ///< sequences handed to onSequence
    std::uint64_t windowsSkipped = 0;   ///< static windows (sequences_skipped_static)
    std::uint64_t framesEncoded = 0;    ///< JPEG encodes (frames and mosaics)
    std::uint64_t encodeErrors = 0;
};

class FramePath {
public:
    FramePath(FrameSource& source, const SamplingSettings& sampling, const EncodeSettings& encode,
              FramePathCallbacks callbacks);

    enum class Step {
        Frame, ///< one frame was processed (callbacks may have run)
        Idle,  ///< no frame within the timeout
        Ended, ///< the source ended; the last partial window was flushed
    };
    /// Waits up to \a timeout for one frame and processes it. A batch
    /// analyzer paces decoding by how often it calls this (offline capture
    /// blocks while the ring is full), so memory stays bounded.
    Step pumpOnce(std::chrono::milliseconds timeout);
    /// Processes frames until the source ends or \a stop becomes true.
    void run(const std::atomic<bool>& stop,
             std::chrono::milliseconds poll = std::chrono::milliseconds(200));

    /// Asks for the window in progress to be closed and analysed at the next
    /// frame (MotionSampler::closeNow): an event worth asking the model about
    /// at once. Any thread; requests before that frame count once.
    void requestCloseWindow() { closeRequested_.store(true, std::memory_order_release); }
    /// The sampling window from the next frame on (MotionSampler::setInterval);
    /// 0: `sampling.interval` again. Any thread (vision's quiet scenes).
    void setWindowInterval(std::chrono::milliseconds interval) {
        windowIntervalMs_.store(interval.count(), std::memory_order_release);
    }
    /// Windows closed early by requestCloseWindow().
    std::uint64_t windowsClosedEarly() const { return closedEarly_.load(); }

    /// Stamped on every pumpOnce() return: the thread is alive (watchdog).
    SteadyTime lastActivity() const;
    FramePathCounters counters() const;
    bool ended() const { return ended_; }

private:
    void deliver(std::vector<SamplerOutput>&& outputs);

    FrameSource& source_;
    MotionSampler sampler_;
    JpegEncoder encoder_;
    FramePathCallbacks callbacks_;
    bool ended_ = false;

    std::atomic<std::int64_t> lastActivityNs_{0};
    std::atomic<std::uint64_t> framesSampled_{0};
    std::atomic<std::uint64_t> sequencesEmitted_{0};
    std::atomic<std::uint64_t> windowsSkipped_{0};
    std::atomic<std::uint64_t> framesEncoded_{0};
    std::atomic<std::uint64_t> encodeErrors_{0};
    std::atomic<bool> closeRequested_{false};
    std::atomic<std::int64_t> windowIntervalMs_{0}; ///< setWindowInterval(); 0: configured
    std::int64_t appliedIntervalMs_ = 0;            ///< what the sampler has (frame thread)
    std::atomic<std::uint64_t> closedEarly_{0};
};

} // namespace dmsd
