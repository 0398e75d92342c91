#include "llm/analysis_scheduler.h"

#include <algorithm>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "base/log.h"

namespace dmsd {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

milliseconds msSince(Clock::time_point t) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - t);
}

std::size_t index(AnalysisKind kind) {
    return static_cast<std::size_t>(kind);
}

/// True when the awaiting coroutine has been asked to stop.
asio::awaitable<bool> stopRequested() {
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

} // namespace

struct AnalysisScheduler::SequenceState {
    Ticket ticket = 0;
    EncodedSequencePtr sequence;
    Callback done;
    /// Submitted sequences run under this signal (cancel(), cancelAll()).
    asio::cancellation_signal cancel;
    bool cancelled = false;
    Clock::time_point submitted;
    SequenceAnswers answers;
    SequenceMetrics metrics;
    bool mosaic = false;                 ///< images below are one mosaic
    std::vector<JpegImage> mosaicImages; ///< built on demand
    const std::vector<JpegImage>& images() const {
        return mosaic && !mosaicImages.empty() ? mosaicImages : sequence->images;
    }
};

std::shared_ptr<AnalysisScheduler> AnalysisScheduler::create(asio::any_io_executor executor,
                                                             ModelClientPtr client,
                                                             SchedulerSettings settings,
                                                             AnalysesSettings analyses,
                                                             SchedulerOptions options) {
    return std::shared_ptr<AnalysisScheduler>(new AnalysisScheduler(
        std::move(executor), std::move(client), settings, std::move(analyses), options));
}

AnalysisScheduler::AnalysisScheduler(asio::any_io_executor executor, ModelClientPtr client,
                                     SchedulerSettings settings, AnalysesSettings analyses,
                                     SchedulerOptions options)
    : executor_(std::move(executor)), client_(std::move(client)), settings_(settings),
      analyses_(std::move(analyses)), asked_(enabledAnalyses(analyses_)),
      combinedSchema_(combinedSchema(asked_)), options_(options),
      cache_(static_cast<std::size_t>(std::max(0, settings_.cache.entries)), settings_.cache.ttl) {
    if (client_->maxInFlight() <= 1) {
        // One request at a time cannot overlap: parallel would cost the sum.
        autoMode_ = LlmMode::Combined;
    }
}

LlmMode AnalysisScheduler::activeMode() const {
    const LlmMode configured = settings_.mode;
    return configured == LlmMode::Auto ? autoMode_ : configured;
}

LlmMode AnalysisScheduler::chooseMode() {
    const LlmMode configured = settings_.mode;
    if (configured != LlmMode::Auto) {
        return configured;
    }
    if (client_->maxInFlight() <= 1) {
        return LlmMode::Combined;
    }
    if (autoMode_ == LlmMode::Combined && Clock::now() - lastProbe_ >= options_.autoProbeInterval) {
        // Probe: the server may have gained slots (OLLAMA_NUM_PARALLEL, another model).
        lastProbe_ = Clock::now();
        return LlmMode::Parallel;
    }
    return autoMode_;
}

AnalysisScheduler::Ticket AnalysisScheduler::submit(EncodedSequencePtr sequence, Callback done) {
    auto state = std::make_shared<SequenceState>();
    state->ticket = nextTicket_++;
    state->sequence = std::move(sequence);
    state->done = std::move(done);
    state->submitted = Clock::now();
    active_.emplace(state->ticket, state);
    auto self = shared_from_this();
    asio::co_spawn(
        executor_, [self, state]() { return self->runState(state); },
        asio::bind_cancellation_slot(state->cancel.slot(), [](const std::exception_ptr& e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    log::error("analysis of a sequence failed unexpectedly: {}", ex.what());
                }
            }
        }));
    return state->ticket;
}

asio::awaitable<SequenceResult> AnalysisScheduler::run(EncodedSequencePtr sequence) {
    auto self = shared_from_this();
    auto state = std::make_shared<SequenceState>();
    state->ticket = nextTicket_++;
    state->sequence = std::move(sequence);
    state->submitted = Clock::now();
    SequenceResult result;
    state->done = [&result](SequenceResult r) {
        result = std::move(r);
    };
    active_.emplace(state->ticket, state);
    co_await runState(state);
    co_return result;
}

bool AnalysisScheduler::cancel(Ticket ticket) {
    auto it = active_.find(ticket);
    if (it == active_.end()) {
        return false;
    }
    StatePtr state = it->second;
    state->cancelled = true;
    state->cancel.emit(asio::cancellation_type::terminal);
    return true;
}

void AnalysisScheduler::cancelAll() {
    std::vector<StatePtr> states;
    for (auto& [ticket, state] : active_) {
        states.push_back(state);
    }
    for (auto& state : states) {
        state->cancelled = true;
        state->cancel.emit(asio::cancellation_type::terminal);
    }
}

void AnalysisScheduler::shutdown() {
    shutdown_ = true;
    cancelAll();
}

asio::awaitable<void> AnalysisScheduler::runState(StatePtr state) {
    auto self = shared_from_this();
    // A cancellation is a value here (Cancelled answers), never an exception
    // thrown at the next co_await (each of these coroutines may be an entry point).
    co_await asio::this_coro::throw_if_cancelled(false);
    const EncodedSequence& seq = *state->sequence;
    state->mosaic = seq.mosaic;
    if (!seq.mosaic && mosaicFallback_ && seq.images.size() > 1 && seq.makeMosaic) {
        switchToMosaic(*state);
    }
    const LlmMode mode = chooseMode();
    state->metrics.mode = mode;
    switch (mode) {
    case LlmMode::Auto: // resolved by chooseMode()
    case LlmMode::Parallel:
        co_await askChains(state);
        if (settings_.mode == LlmMode::Auto && !(co_await stopRequested())) {
            recordAutoMeasurement(*state);
        }
        break;
    case LlmMode::Combined:
        co_await askCombined(state);
        break;
    case LlmMode::Sequential:
        for (AnalysisKind kind : kAllAnalyses) {
            co_await askOne(state, kind);
        }
        break;
    }
    state->cancelled = state->cancelled || co_await stopRequested();
    finish(*state);
}

asio::awaitable<void> AnalysisScheduler::askChains(StatePtr state) {
    // Every analysis that depends on none starts at once; each is followed by
    // the analyses given its answer (impaired_driving after face_state).
    using Chain =
        decltype(asio::co_spawn(executor_, askChain(state, AnalysisKind{}), asio::deferred));
    std::vector<Chain> chains;
    for (AnalysisKind kind : kAllAnalyses) {
        if (!analysis(kind).dependsOn()) {
            chains.push_back(asio::co_spawn(executor_, askChain(state, kind), asio::deferred));
        }
    }
    // The group passes a cancellation of this sequence on to every chain.
    co_await asio::experimental::make_parallel_group(std::move(chains))
        .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
}

asio::awaitable<void> AnalysisScheduler::askChain(StatePtr state, AnalysisKind root) {
    co_await asio::this_coro::throw_if_cancelled(false);
    co_await askOne(state, root);
    for (AnalysisKind kind : kAllAnalyses) {
        if (analysis(kind).dependsOn() == root) {
            co_await askOne(state, kind);
        }
    }
}

bool AnalysisScheduler::switchToMosaic(SequenceState& state) {
    const EncodedSequence& seq = *state.sequence;
    if (state.mosaic) {
        return !state.mosaicImages.empty() || seq.mosaic;
    }
    if (!seq.makeMosaic) {
        return false;
    }
    std::optional<JpegImage> image = seq.makeMosaic();
    if (!image || !image->bytes) {
        return false;
    }
    state.mosaicImages = {std::move(*image)};
    state.mosaic = true;
    return true;
}

asio::awaitable<void> AnalysisScheduler::askOne(StatePtr state, AnalysisKind kind) {
    if (!asked_[index(kind)]) {
        co_return;
    }
    auto self = shared_from_this();
    // A cancellation is a value here (Cancelled answers), never an exception
    // thrown at the next co_await (each of these coroutines may be an entry point).
    co_await asio::this_coro::throw_if_cancelled(false);
    AnalysisRunMetrics& m = state->metrics.analyses[index(kind)];
    m.asked = true;
    const Clock::time_point start = Clock::now();
    const std::string& model = client_->model();
    for (int round = 0; round < 2; ++round) {
        if (co_await stopRequested()) {
            state->answers.setError(
                kind, AnalysisError{AnalysisError::Kind::Cancelled, 0,
                                    fmt::format("{}: cancelled", analysisName(kind))});
            m.errorKind = AnalysisError::Kind::Cancelled;
            co_return;
        }
        const std::vector<JpegImage>& images = state->images();
        const std::string frames =
            framesDescription(*state->sequence, state->mosaic, images.size());
        const std::string prompt = buildUserPrompt(kind, analyses_, frames, state->answers);
        const std::string key = ResponseCache::makeKey(model, analysisName(kind), prompt,
                                                       state->mosaic, *state->sequence);
        if (auto cached = cache_.find(key)) {
            if (parseAnswerInto(kind, *cached, state->answers)) {
                m.ok = true;
                m.cacheHit = true;
                m.latency = msSince(start);
                ++state->metrics.cacheHits;
                co_return;
            }
        }
        ChatRequest request;
        request.label = std::string(analysisName(kind));
        request.systemPrompt = std::string(systemPrompt());
        request.userPrompt = prompt;
        request.images = images;
        request.format = &analysis(kind).schema();
        request.stream = options_.stream;
        ChatOutcome outcome = co_await client_->chat(std::move(request));
        const bool cancelled =
            outcome.error && outcome.error->kind == AnalysisError::Kind::Cancelled;
        if (!cancelled) {
            ++requests_;
            ++state->metrics.requests;
            requestLatency_.add(double(outcome.latency.count()));
        }
        m.attempts += outcome.attempts;
        if (outcome.error && isSingleImageError(*outcome.error) && images.size() > 1 &&
            switchToMosaic(*state)) { // (another request of the sequence may have switched)
            if (!mosaicFallback_) {
                mosaicFallback_ = true;
                log::warning("model server {} takes one image per request ({}); sending each "
                             "sequence as one mosaic image from now on (set encode.layout: "
                             "mosaic to make this the default)",
                             client_->url(), outcome.error->message);
            }
            ++requestErrors_;
            continue;
        }
        m.latency = msSince(start);
        if (!outcome.ok()) {
            if (!cancelled) {
                ++requestErrors_;
            }
            m.errorKind = outcome.error->kind;
            state->answers.setError(kind, std::move(*outcome.error));
            co_return;
        }
        const ChatResult& r = *outcome.result;
        m.firstToken = r.firstToken;
        if (r.firstToken) {
            firstToken_.add(double(r.firstToken->count()));
        }
        m.promptTokens = r.promptTokens;
        m.evalTokens = r.evalTokens;
        state->metrics.promptTokens += r.promptTokens;
        state->metrics.evalTokens += r.evalTokens;
        if (parseAnswerInto(kind, r.content, state->answers)) {
            m.ok = true;
            cache_.insert(key, r.content);
        } else {
            ++requestErrors_;
            m.errorKind = AnalysisError::Kind::InvalidAnswer;
        }
        co_return;
    }
}

asio::awaitable<void> AnalysisScheduler::askCombined(StatePtr state) {
    auto self = shared_from_this();
    // A cancellation is a value here (Cancelled answers), never an exception
    // thrown at the next co_await (each of these coroutines may be an entry point).
    co_await asio::this_coro::throw_if_cancelled(false);
    const Clock::time_point start = Clock::now();
    const std::string& model = client_->model();
    auto markAll = [&](auto&& fn) {
        for (AnalysisKind kind : kAllAnalyses) {
            if (asked_[index(kind)]) {
                fn(kind, state->metrics.analyses[index(kind)]);
            }
        }
    };
    auto failAll = [&](const AnalysisError& error) {
        markAll([&](AnalysisKind kind, AnalysisRunMetrics& m) {
            AnalysisError e = error;
            e.message = fmt::format("{} (combined): {}", analysisName(kind), error.message);
            m.errorKind = e.kind;
            m.latency = msSince(start);
            state->answers.setError(kind, std::move(e));
        });
    };
    markAll([](AnalysisKind, AnalysisRunMetrics& m) { m.asked = true; });
    if (std::none_of(asked_.begin(), asked_.end(), [](bool b) { return b; })) {
        co_return;
    }
    for (int round = 0; round < 2; ++round) {
        if (co_await stopRequested()) {
            failAll(AnalysisError{AnalysisError::Kind::Cancelled, 0, "cancelled"});
            co_return;
        }
        const std::vector<JpegImage>& images = state->images();
        const std::string frames =
            framesDescription(*state->sequence, state->mosaic, images.size());
        const std::string prompt = buildCombinedPrompt(asked_, analyses_, frames);
        const std::string key =
            ResponseCache::makeKey(model, "combined", prompt, state->mosaic, *state->sequence);
        if (auto cached = cache_.find(key)) {
            SequenceAnswers answers;
            if (parseCombinedInto(*cached, asked_, answers) > 0) {
                state->answers = std::move(answers);
                markAll([&](AnalysisKind kind, AnalysisRunMetrics& m) {
                    m.cacheHit = true;
                    m.ok = state->answers.error(kind) == nullptr;
                    m.latency = msSince(start);
                });
                ++state->metrics.cacheHits;
                co_return;
            }
        }
        ChatRequest request;
        request.label = "combined";
        request.systemPrompt = std::string(systemPrompt());
        request.userPrompt = prompt;
        request.images = images;
        request.format = &combinedSchema_;
        request.stream = options_.stream;
        ChatOutcome outcome = co_await client_->chat(std::move(request));
        const bool cancelled =
            outcome.error && outcome.error->kind == AnalysisError::Kind::Cancelled;
        if (!cancelled) {
            ++requests_;
            ++state->metrics.requests;
            requestLatency_.add(double(outcome.latency.count()));
        }
        if (outcome.error && isSingleImageError(*outcome.error) && images.size() > 1 &&
            switchToMosaic(*state)) { // (another request of the sequence may have switched)
            if (!mosaicFallback_) {
                mosaicFallback_ = true;
                log::warning("model server {} takes one image per request ({}); sending each "
                             "sequence as one mosaic image from now on",
                             client_->url(), outcome.error->message);
            }
            ++requestErrors_;
            continue;
        }
        if (!outcome.ok()) {
            if (!cancelled) {
                ++requestErrors_;
            }
            markAll([&](AnalysisKind, AnalysisRunMetrics& m) { m.attempts = outcome.attempts; });
            failAll(*outcome.error);
            co_return;
        }
        const ChatResult& r = *outcome.result;
        state->metrics.promptTokens += r.promptTokens;
        state->metrics.evalTokens += r.evalTokens;
        if (r.firstToken) {
            firstToken_.add(double(r.firstToken->count()));
        }
        const int answered = parseCombinedInto(r.content, asked_, state->answers);
        const int askedCount = static_cast<int>(std::count(asked_.begin(), asked_.end(), true));
        if (answered == askedCount) {
            cache_.insert(key, r.content);
        } else {
            ++requestErrors_;
        }
        markAll([&](AnalysisKind kind, AnalysisRunMetrics& m) {
            m.attempts = outcome.attempts;
            m.latency = msSince(start);
            m.firstToken = r.firstToken;
            const AnalysisError* e = state->answers.error(kind);
            m.ok = e == nullptr;
            if (e != nullptr) {
                m.errorKind = e->kind;
            }
        });
        co_return;
    }
}

void AnalysisScheduler::recordAutoMeasurement(const SequenceState& state) {
    // The four independent questions start together. Where the server runs
    // them at once they all take about one request time; where it queues them
    // (one slot) they finish one request time apart. gain = n * fastest /
    // slowest is then ~n with n slots and ~1 with one.
    double fastest = 0, slowest = 0;
    int n = 0;
    for (AnalysisKind kind : kAllAnalyses) {
        const AnalysisRunMetrics& m = state.metrics.analyses[index(kind)];
        if (analysis(kind).dependsOn() || !m.asked || m.cacheHit || !m.ok) {
            continue;
        }
        const double ms = std::max(1.0, double(m.latency.count()));
        fastest = n == 0 ? ms : std::min(fastest, ms);
        slowest = n == 0 ? ms : std::max(slowest, ms);
        ++n;
    }
    if (n < 2) {
        return;
    }
    const double gain = double(n) * fastest / slowest;
    gain_ = gain_ == 0.0 ? gain : 0.5 * gain_ + 0.5 * gain;
    const LlmMode before = autoMode_;
    autoMode_ = gain_ >= options_.autoMinGain ? LlmMode::Parallel : LlmMode::Combined;
    lastProbe_ = Clock::now();
    if (autoMode_ != before) {
        log::notice("llm.mode auto: {} concurrent requests gave a speed-up of {:.2f} (threshold "
                    "{:.2f}): using {} mode",
                    n, gain_, options_.autoMinGain, llmModeName(autoMode_));
    }
}

void AnalysisScheduler::finish(SequenceState& state) {
    active_.erase(state.ticket);
    SequenceMetrics& m = state.metrics;
    m.cancelled = state.cancelled;
    m.mosaic = state.mosaic;
    m.elapsed = msSince(state.submitted);
    const SteadyTime from =
        state.sequence->lastFrameAt != SteadyTime{} ? state.sequence->lastFrameAt : state.submitted;
    m.latency = msSince(from);
    bool anyAnswer = false;
    bool anyAsked = false;
    for (AnalysisKind kind : kAllAnalyses) {
        const AnalysisRunMetrics& a = m.analyses[index(kind)];
        if (!a.asked) {
            continue;
        }
        anyAsked = true;
        anyAnswer = anyAnswer || a.ok;
        if (m.cancelled) {
            continue;
        }
        auto& p = perAnalysis_[index(kind)];
        ++p.asked;
        p.answered += a.ok ? 1 : 0;
        p.errors += a.ok ? 0 : 1;
        p.cacheHits += a.cacheHit ? 1 : 0;
        p.promptTokens += a.promptTokens;
        p.evalTokens += a.evalTokens;
        if (!a.cacheHit) {
            analysisLatency_[index(kind)].add(double(a.latency.count()));
        }
    }
    if (m.cancelled) {
        ++sequencesCancelled_;
    } else {
        ++sequences_;
        sequencesFailed_ += anyAsked && !anyAnswer ? 1 : 0;
        sequenceLatency_.add(double(m.latency.count()));
    }
    if (shutdown_ || !state.done) {
        return;
    }
    Callback done = std::move(state.done);
    done(SequenceResult{state.sequence, std::move(state.answers), m});
}

LlmMetricsSnapshot AnalysisScheduler::metrics() const {
    LlmMetricsSnapshot s;
    s.configuredMode = settings_.mode;
    s.activeMode = activeMode();
    s.concurrencyGain = gain_;
    s.sequences = sequences_;
    s.sequencesCancelled = sequencesCancelled_;
    s.sequencesFailed = sequencesFailed_;
    s.requests = requests_;
    s.requestErrors = requestErrors_;
    s.cacheHits = cache_.hits();
    s.cacheMisses = cache_.misses();
    s.client = client_->stats();
    s.retries = s.client.retries;
    s.mosaicFallback = mosaicFallback_;
    s.sequenceP50Ms = sequenceLatency_.percentile(50);
    s.sequenceP95Ms = sequenceLatency_.percentile(95);
    s.requestP50Ms = requestLatency_.percentile(50);
    s.requestP95Ms = requestLatency_.percentile(95);
    s.firstTokenP50Ms = firstToken_.percentile(50);
    s.analyses = perAnalysis_;
    for (AnalysisKind kind : kAllAnalyses) {
        s.analyses[index(kind)].latencyP50Ms = analysisLatency_[index(kind)].percentile(50);
        s.analyses[index(kind)].latencyP95Ms = analysisLatency_[index(kind)].percentile(95);
    }
    return s;
}

} // namespace dmsd
