#include "llm/latest_wins.h"

#include <utility>

namespace dmsd {

LatestWinsPump::LatestWinsPump(ResultHandler onResult, SupersededHandler onSuperseded)
    : onResult_(std::move(onResult)), onSuperseded_(std::move(onSuperseded)) {
}

LatestWinsPump::Submit LatestWinsPump::submitTo(std::shared_ptr<AnalysisScheduler> scheduler) {
    return [scheduler = std::move(scheduler)](EncodedSequencePtr sequence,
                                              AnalysisScheduler::Callback done) {
        scheduler->submit(std::move(sequence), std::move(done));
    };
}

void LatestWinsPump::setTarget(Submit submit) {
    ++generation_;
    inFlight_ = false;
    submit_ = std::move(submit);
    if (submit_ && waiting_) {
        submitNow(std::exchange(waiting_, nullptr));
    }
}

void LatestWinsPump::stop() {
    ++generation_;
    inFlight_ = false;
    submit_ = nullptr;
    waiting_.reset();
}

void LatestWinsPump::offer(EncodedSequencePtr sequence) {
    if (inFlight_ || !submit_) {
        if (waiting_) {
            ++superseded_;
            if (onSuperseded_) {
                onSuperseded_(waiting_);
            }
        }
        waiting_ = std::move(sequence);
        return;
    }
    submitNow(std::move(sequence));
}

void LatestWinsPump::submitNow(EncodedSequencePtr sequence) {
    inFlight_ = true;
    const std::uint64_t generation = generation_;
    // The handler may be a stale one: the target was replaced or stopped while
    // the sequence was in flight, and its successor may already be in flight.
    submit_(std::move(sequence), [this, generation](SequenceResult result) {
        if (generation != generation_) {
            return;
        }
        inFlight_ = false;
        onResult_(std::move(result));
        if (generation == generation_ && !inFlight_ && waiting_ && submit_) {
            submitNow(std::exchange(waiting_, nullptr));
        }
    });
}

} // namespace dmsd
