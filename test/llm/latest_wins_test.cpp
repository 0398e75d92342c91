// LatestWinsPump against a fake scheduler that holds each submitted sequence
// until the test answers it.
#include <deque>
#include <vector>

#include <catch2/catch.hpp>

#include "llm/latest_wins.h"

using namespace dmsd;

namespace {

/// Keeps what was submitted; answer() completes the oldest.
struct FakeScheduler {
    struct Submitted {
        EncodedSequencePtr sequence;
        AnalysisScheduler::Callback done;
    };
    std::deque<Submitted> pending;
    std::vector<std::uint64_t> submittedIds;

    LatestWinsPump::Submit submit() {
        return [this](EncodedSequencePtr sequence, AnalysisScheduler::Callback done) {
            submittedIds.push_back(sequence->sequenceId);
            pending.push_back({std::move(sequence), std::move(done)});
        };
    }
    void answer(bool cancelled = false) {
        REQUIRE_FALSE(pending.empty());
        Submitted s = std::move(pending.front());
        pending.pop_front();
        SequenceResult result;
        result.sequence = s.sequence;
        result.metrics.cancelled = cancelled;
        s.done(std::move(result));
    }
};

EncodedSequencePtr sequence(std::uint64_t id) {
    auto s = std::make_shared<EncodedSequence>();
    s->sequenceId = id;
    return s;
}

struct Fixture {
    FakeScheduler scheduler;
    std::vector<std::uint64_t> results;
    std::vector<std::uint64_t> superseded;
    LatestWinsPump pump{[this](SequenceResult r) { results.push_back(r.sequence->sequenceId); },
                        [this](const EncodedSequencePtr& s) {
                            superseded.push_back(s->sequenceId);
                        }};
    Fixture() { pump.setTarget(scheduler.submit()); }
};

} // namespace

TEST_CASE("one in flight, one waiting, a newer one replaces the waiting one", "[latest_wins]") {
    Fixture f;
    f.pump.offer(sequence(1));
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1});
    CHECK(f.pump.inFlight());
    f.pump.offer(sequence(2));
    f.pump.offer(sequence(3));
    f.pump.offer(sequence(4));
    // Only 1 is at the scheduler; 2 and 3 were replaced while waiting.
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1});
    CHECK(f.pump.superseded() == 2);
    CHECK(f.superseded == std::vector<std::uint64_t>{2, 3});

    f.scheduler.answer();
    CHECK(f.results == std::vector<std::uint64_t>{1});
    // The waiting one went next, at once.
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1, 4});
    CHECK(f.pump.busy());
    f.scheduler.answer();
    CHECK(f.results == std::vector<std::uint64_t>{1, 4});
    CHECK_FALSE(f.pump.busy());
    CHECK(f.scheduler.pending.empty());

    // Idle again: the next sequence goes straight to the scheduler.
    f.pump.offer(sequence(5));
    CHECK(f.scheduler.submittedIds.back() == 5);
    CHECK(f.pump.superseded() == 2);
}

TEST_CASE("the result handler sees the pump idle only when nothing waits", "[latest_wins]") {
    FakeScheduler scheduler;
    std::vector<bool> busyAtResult;
    LatestWinsPump* self = nullptr;
    LatestWinsPump pump([&](SequenceResult) { busyAtResult.push_back(self->busy()); });
    self = &pump;
    pump.setTarget(scheduler.submit());
    pump.offer(sequence(1));
    pump.offer(sequence(2));
    scheduler.answer();
    scheduler.answer();
    // After 1, sequence 2 still waited (an end of video must wait for it); after 2, idle.
    CHECK(busyAtResult == std::vector<bool>{true, false});
}

TEST_CASE("a cancelled result is handed on and the waiting sequence still goes", "[latest_wins]") {
    Fixture f;
    f.pump.offer(sequence(1));
    f.pump.offer(sequence(2));
    f.scheduler.answer(true);
    CHECK(f.results == std::vector<std::uint64_t>{1});
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("a new target ignores the old one's answer and takes the waiting sequence",
          "[latest_wins]") {
    Fixture f;
    FakeScheduler next;
    f.pump.offer(sequence(1));
    f.pump.offer(sequence(2));
    f.pump.setTarget(next.submit());
    CHECK(next.submittedIds == std::vector<std::uint64_t>{2});
    // The old scheduler answering late changes nothing.
    f.scheduler.answer();
    CHECK(f.results.empty());
    CHECK(f.pump.inFlight());
    f.pump.offer(sequence(3));
    CHECK(next.submittedIds == std::vector<std::uint64_t>{2});
    next.answer();
    CHECK(f.results == std::vector<std::uint64_t>{2});
    CHECK(next.submittedIds == std::vector<std::uint64_t>{2, 3});
}

TEST_CASE("stop drops the waiting sequence and ignores the answer in flight", "[latest_wins]") {
    Fixture f;
    f.pump.offer(sequence(1));
    f.pump.offer(sequence(2));
    f.pump.stop();
    CHECK_FALSE(f.pump.busy());
    f.scheduler.answer();
    CHECK(f.results.empty());
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1});
    // Without a target, sequences only wait until one is set.
    f.pump.offer(sequence(3));
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1});
    f.pump.setTarget(f.scheduler.submit());
    CHECK(f.scheduler.submittedIds == std::vector<std::uint64_t>{1, 3});
}
