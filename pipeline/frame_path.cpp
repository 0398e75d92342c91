#include "pipeline/frame_path.h"

#include "base/log.h"

namespace dmsd {

FramePath::FramePath(FrameSource& source, const SamplingSettings& sampling,
                     const EncodeSettings& encode, FramePathCallbacks callbacks)
    : source_(source), sampler_(sampling), encoder_(encode), callbacks_(std::move(callbacks)) {
    lastActivityNs_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count());
}

FramePath::Step FramePath::pumpOnce(std::chrono::milliseconds timeout) {
    if (ended_) {
        return Step::Ended;
    }
    PullResult pulled = source_.nextFrame(timeout);
    Step step = Step::Idle;
    if (pulled.status == PullResult::Status::Frame) {
        framesSampled_.fetch_add(1);
        if (callbacks_.onFrame) {
            callbacks_.onFrame(pulled.frame);
        }
        if (const std::int64_t ms = windowIntervalMs_.load(std::memory_order_acquire);
            ms != appliedIntervalMs_) {
            sampler_.setInterval(ms != 0 ? std::chrono::milliseconds(ms)
                                         : sampler_.settings().interval);
            appliedIntervalMs_ = ms;
        }
        deliver(sampler_.push(std::move(pulled.frame)));
        if (closeRequested_.exchange(false, std::memory_order_acq_rel)) {
            std::vector<SamplerOutput> early = sampler_.closeNow();
            closedEarly_.fetch_add(early.size());
            deliver(std::move(early));
        }
        step = Step::Frame;
    } else if (pulled.status == PullResult::Status::Ended) {
        deliver(sampler_.flush());
        ended_ = true;
        step = Step::Ended;
    }
    lastActivityNs_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count());
    return step;
}

void FramePath::run(const std::atomic<bool>& stop, std::chrono::milliseconds poll) {
    while (!stop.load() && pumpOnce(poll) != Step::Ended) {
    }
}

void FramePath::deliver(std::vector<SamplerOutput>&& outputs) {
    for (SamplerOutput& output : outputs) {
        if (auto* skipped = std::get_if<SkippedWindow>(&output)) {
            windowsSkipped_.fetch_add(1);
            if (callbacks_.onSkipped) {
                callbacks_.onSkipped(*skipped);
            }
            continue;
        }
        auto& sequence = std::get<SampledSequence>(output);
        const std::uint64_t before = encoder_.framesEncoded();
        EncodedSequencePtr encoded = encoder_.encodeSequence(sequence);
        framesEncoded_.fetch_add(encoder_.framesEncoded() - before);
        if (!encoded) {
            encodeErrors_.fetch_add(1);
            log::error("sequence {} dropped: {}", sequence.sequenceId, encoder_.lastError());
            continue;
        }
        sequencesEmitted_.fetch_add(1);
        if (callbacks_.onSequence) {
            callbacks_.onSequence(std::move(encoded));
        }
    }
}

SteadyTime FramePath::lastActivity() const {
    return SteadyTime(std::chrono::nanoseconds(lastActivityNs_.load()));
}

FramePathCounters FramePath::counters() const {
    FramePathCounters c;
    c.framesSampled = framesSampled_.load();
    c.sequencesEmitted = sequencesEmitted_.load();
    c.windowsSkipped = windowsSkipped_.load();
    c.framesEncoded = framesEncoded_.load();
    c.encodeErrors = encodeErrors_.load();
    return c;
}

} // namespace dmsd
