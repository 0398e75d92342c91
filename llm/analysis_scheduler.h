#pragma once

/// \file
/// Asks the analyses about an encoded sequence and hands back the typed
/// answers and their figures: parallel (the independent questions at once, a
/// dependent one as soon as its dependency is answered), combined (one question),
/// sequential (baseline) or auto (parallel while the server really runs
/// requests concurrently, combined when it serialises them). Response cache,
/// automatic mosaic fallback, cancellation per sequence and of everything.
/// See docs/llm.md.
///
/// Cancellation is Asio's: each submitted sequence runs under its own
/// cancellation signal (cancel(), cancelAll()); run() under the awaiting
/// coroutine's. Cancelled requests close their connections at once.
///
/// Threading: call every member on the io_context's thread; callbacks run there.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "llm/analysis.h"
#include "llm/answers.h"
#include "llm/llm_metrics.h"
#include "llm/model_client.h"
#include "llm/response_cache.h"
#include "llm/settings.h"
#include "pipeline/sequence.h"
#include "pipeline/settings.h"

namespace dmsd {

/// Tuning beyond the contract's settings.
struct SchedulerOptions {
    /// Ask with `stream: true` (gives time to first token; docs/interfaces.md section 7: false).
    bool stream = false;
    /// Auto mode: while on combined, run one sequence in parallel this often
    /// to re-measure what the server sustains.
    std::chrono::milliseconds autoProbeInterval{30000};
    /// Auto mode: parallel is kept while the measured concurrency gain is at
    /// least this (1 = the server serialises, N = N requests truly at once).
    double autoMinGain = 1.5;
};

/// The answers of one sequence and how they were obtained.
struct SequenceResult {
    EncodedSequencePtr sequence;
    SequenceAnswers answers;
    SequenceMetrics metrics;
};

class AnalysisScheduler : public std::enable_shared_from_this<AnalysisScheduler> {
public:
    using Ticket = std::uint64_t;
    using Callback = std::function<void(SequenceResult)>;

    /// \a client asks the model server; \a settings are the mode and the cache
    /// (`llm.mode`, `llm.cache`); \a analyses which analyses are asked and
    /// their prompts. Whether frames go as a mosaic is each sequence's own
    /// (EncodedSequence::mosaic, from encode.layout).
    static std::shared_ptr<AnalysisScheduler>
    create(boost::asio::any_io_executor executor, ModelClientPtr client, SchedulerSettings settings,
           AnalysesSettings analyses, SchedulerOptions options = {});
    AnalysisScheduler(const AnalysisScheduler&) = delete;
    AnalysisScheduler& operator=(const AnalysisScheduler&) = delete;

    /// Starts asking about \a sequence; \a done runs exactly once on the
    /// io_context with every asked analysis answered or holding its error
    /// (cancelled sequences included, with metrics.cancelled set), unless
    /// shutdown() was called first.
    Ticket submit(EncodedSequencePtr sequence, Callback done);

    /// Awaitable form of submit(), cancelled with the awaiting coroutine.
    boost::asio::awaitable<SequenceResult> run(EncodedSequencePtr sequence);

    /// Cancels one sequence (latest-wins supersession): its requests are
    /// aborted, their connections closed. False if it already finished.
    bool cancel(Ticket ticket);
    /// Cancels every sequence in progress (their callbacks still run).
    void cancelAll();
    /// cancelAll() and drops the pending callbacks (owner going away).
    void shutdown();

    /// Sequences in progress.
    std::size_t pending() const { return active_.size(); }
    /// The mode the next sequence would use (auto resolved).
    LlmMode activeMode() const;
    LlmMetricsSnapshot metrics() const;
    const ModelClientPtr& client() const { return client_; }
    const SchedulerSettings& settings() const { return settings_; }

private:
    struct SequenceState;
    using StatePtr = std::shared_ptr<SequenceState>;

    AnalysisScheduler(boost::asio::any_io_executor executor, ModelClientPtr client,
                      SchedulerSettings settings, AnalysesSettings analyses,
                      SchedulerOptions options);

    LlmMode chooseMode();
    boost::asio::awaitable<void> runState(StatePtr state);
    boost::asio::awaitable<void> askOne(StatePtr state, AnalysisKind kind);
    boost::asio::awaitable<void> askChains(StatePtr state);
    boost::asio::awaitable<void> askChain(StatePtr state, AnalysisKind root);
    boost::asio::awaitable<void> askCombined(StatePtr state);
    bool switchToMosaic(SequenceState& state);
    void recordAutoMeasurement(const SequenceState& state);
    void finish(SequenceState& state);

    boost::asio::any_io_executor executor_;
    ModelClientPtr client_;
    SchedulerSettings settings_;
    AnalysesSettings analyses_;
    AnalysisSet asked_{};
    boost::json::value combinedSchema_;
    SchedulerOptions options_;
    ResponseCache cache_;

    Ticket nextTicket_ = 1;
    std::map<Ticket, StatePtr> active_;
    bool shutdown_ = false;

    // auto mode
    LlmMode autoMode_ = LlmMode::Parallel;
    double gain_ = 0.0;
    std::chrono::steady_clock::time_point lastProbe_{};

    bool mosaicFallback_ = false;

    // aggregate figures
    std::uint64_t sequences_ = 0, sequencesCancelled_ = 0, sequencesFailed_ = 0;
    std::uint64_t requests_ = 0, requestErrors_ = 0;
    LatencyWindow sequenceLatency_, requestLatency_, firstToken_;
    std::array<LlmMetricsSnapshot::PerAnalysis, kAnalysisCount> perAnalysis_{};
    std::array<LatencyWindow, kAnalysisCount> analysisLatency_{};
};

using AnalysisSchedulerPtr = std::shared_ptr<AnalysisScheduler>;

} // namespace dmsd
