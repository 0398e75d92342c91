#pragma once

/// \file
/// Latest wins: the analysis never falls behind the camera. One sequence is
/// at the scheduler, at most one waits behind it; a newer sequence replaces
/// the waiting one (counted as superseded). When the answer of the one in
/// flight arrives, the waiting one goes next. `dmsd run` and
/// `dmsd analyze --realtime` both feed their sequences through a
/// LatestWinsPump.
///
/// Threading: single-threaded; use it on the io_context's thread, where the
/// submit function's callbacks run too.

#include <cstdint>
#include <functional>
#include <memory>

#include "llm/analysis_scheduler.h"
#include "pipeline/sequence.h"

namespace dmsd {

class LatestWinsPump {
public:
    /// Where sequences go: AnalysisScheduler::submit in dmsd, a fake in tests.
    /// Must call its callback exactly once, later, on the same thread (or never,
    /// once the target is replaced or shut down).
    using Submit = std::function<void(EncodedSequencePtr, AnalysisScheduler::Callback)>;
    /// Receives each result of the current target (cancelled ones included).
    using ResultHandler = std::function<void(SequenceResult)>;
    /// Told about each sequence replaced while waiting.
    using SupersededHandler = std::function<void(const EncodedSequencePtr&)>;

    explicit LatestWinsPump(ResultHandler onResult, SupersededHandler onSuperseded = {});
    LatestWinsPump(const LatestWinsPump&) = delete;
    LatestWinsPump& operator=(const LatestWinsPump&) = delete;

    /// A submit function for \a scheduler (kept alive until the target is replaced).
    static Submit submitTo(std::shared_ptr<AnalysisScheduler> scheduler);

    /// Sends the next sequences to \a submit (a new scheduler after a reload).
    /// The result of a sequence in flight at the previous target is ignored;
    /// the waiting one, if any, goes to the new target at once.
    void setTarget(Submit submit);
    /// No target: the result in flight is ignored, the waiting sequence dropped,
    /// and further sequences only wait (shutdown).
    void stop();

    /// A new sequence: submitted if nothing is in flight, else it waits
    /// (replacing, and counting, the one that waited).
    void offer(EncodedSequencePtr sequence);

    /// A sequence is in flight.
    bool inFlight() const { return inFlight_; }
    /// A sequence is in flight or waiting: results are still to come.
    bool busy() const { return inFlight_ || waiting_ != nullptr; }
    /// Sequences replaced while waiting, since construction.
    std::uint64_t superseded() const { return superseded_; }

private:
    void submitNow(EncodedSequencePtr sequence);

    ResultHandler onResult_;
    SupersededHandler onSuperseded_;
    Submit submit_;
    std::uint64_t generation_ = 0;
    bool inFlight_ = false;
    EncodedSequencePtr waiting_;
    std::uint64_t superseded_ = 0;
};

} // namespace dmsd
