#include "llm/server_pool.h"

#include <algorithm>
#include <cmath>
#include <tuple>
#include <utility>
#include <variant>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "base/redact.h"

// GCC 12 reports Asio's recycled coroutine frame (aligned_new, then the frame's
// sized operator delete) as a mismatched pair in this file's coroutines: a known
// false positive (GCC PR middle-end/109224), as in llm/ollama_client.cpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace dmsd {
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

/// The cost of a busy server not measured yet (ms): above any real estimate.
constexpr double kUnmeasuredPenalty = 1e9;

struct ServerPool::Member {
    Member(const asio::any_io_executor& executor, ModelClientPtr c)
        : client(std::move(c)), timer(executor) {}

    ModelClientPtr client;
    bool inService = true;
    std::string reason;
    std::size_t outstanding = 0;
    double ewmaMs = 0; ///< the latency estimate at `stamp`
    Clock::time_point stamp;
    std::uint64_t requests = 0;
    std::uint64_t failures = 0;
    std::uint64_t setAsides = 0;
    /// Waits between probes of a set-aside server.
    asio::steady_timer timer;
    std::chrono::milliseconds backoff{0};
    /// Bumped when a probe loop must end (readmitted, cancelAll, another loop).
    std::uint64_t probeGeneration = 0;
    bool probing = false;
};

bool isServerFault(const AnalysisError& error) {
    switch (error.kind) {
    case AnalysisError::Kind::ConnectionFailed:
    case AnalysisError::Kind::Timeout:
    case AnalysisError::Kind::ServerError:
    case AnalysisError::Kind::MalformedBody:
        return true;
    case AnalysisError::Kind::HttpStatus:
        // A 4xx says the request is wrong (another server would say the same,
        // and "one image per message" must reach the scheduler); a 5xx, or no
        // status at all, is the server's own trouble.
        return error.httpStatus >= 500 || error.httpStatus == 0;
    case AnalysisError::Kind::InvalidAnswer:
    case AnalysisError::Kind::Cancelled:
        return false;
    }
    return false;
}

std::shared_ptr<ServerPool> ServerPool::create(asio::any_io_executor executor,
                                               std::vector<ModelClientPtr> members,
                                               PoolOptions options) {
    return std::shared_ptr<ServerPool>(
        new ServerPool(std::move(executor), std::move(members), options));
}

ServerPool::ServerPool(asio::any_io_executor executor, std::vector<ModelClientPtr> members,
                       PoolOptions options)
    : executor_(std::move(executor)), options_(options) {
    const Clock::time_point now = Clock::now();
    for (ModelClientPtr& client : members) {
        if (!url_.empty()) {
            url_ += ", ";
        }
        url_ += client->url();
        auto member = std::make_unique<Member>(executor_, std::move(client));
        member->stamp = now;
        members_.push_back(std::move(member));
    }
}

ServerPool::~ServerPool() {
    for (auto& member : members_) {
        ++member->probeGeneration;
        member->timer.cancel();
    }
}

double ServerPool::cost(const Member& member, Clock::time_point now) const {
    // Finagle's peak EWMA: the estimate decays towards zero while no answer
    // comes (a server avoided after one slow answer is tried again), and is
    // weighed by the requests already waiting on the server, so one with
    // free slots and short answers wins.
    const double idleMs = std::chrono::duration<double, std::milli>(now - member.stamp).count();
    const double decayMs = static_cast<double>(std::max<long long>(1, options_.decay.count()));
    const double estimate = member.ewmaMs * std::exp(-std::max(0.0, idleMs) / decayMs);
    if (member.ewmaMs == 0 && member.outstanding > 0) {
        // Not measured yet, and busy: dearer than any measured server (Finagle's
        // penalty), so the first requests go to servers that answered or are idle.
        return kUnmeasuredPenalty + static_cast<double>(member.outstanding);
    }
    return estimate * static_cast<double>(member.outstanding + 1);
}

void ServerPool::observe(Member& member, std::chrono::milliseconds latency) {
    // Peak: a slower answer than the estimate replaces it at once (a server
    // getting slow is avoided at once); a faster one pulls it down by the
    // decay over the time since the last answer.
    const Clock::time_point now = Clock::now();
    const double sample = static_cast<double>(latency.count());
    if (sample > member.ewmaMs) {
        member.ewmaMs = sample;
    } else {
        const double idleMs = std::chrono::duration<double, std::milli>(now - member.stamp).count();
        const double decayMs = static_cast<double>(std::max<long long>(1, options_.decay.count()));
        const double w = std::exp(-std::max(0.0, idleMs) / decayMs);
        member.ewmaMs = member.ewmaMs * w + sample * (1.0 - w);
    }
    member.stamp = now;
}

std::optional<std::size_t> ServerPool::pick(const std::vector<bool>& tried) const {
    const bool anyInService =
        std::any_of(members_.begin(), members_.end(), [](const auto& m) { return m->inService; });
    const Clock::time_point now = Clock::now();
    std::optional<std::size_t> best;
    std::tuple<double, std::size_t, std::size_t> bestKey{};
    for (std::size_t i = 0; i < members_.size(); ++i) {
        const Member& m = *members_[i];
        // When every server is out, the request goes to each once anyway: it
        // fails as it would with one server, or finds one that came back.
        if (tried[i] || (anyInService && !m.inService)) {
            continue;
        }
        const std::tuple<double, std::size_t, std::size_t> key{cost(m, now), m.outstanding, i};
        if (!best || key < bestKey) {
            best = i;
            bestKey = key;
        }
    }
    return best;
}

void ServerPool::setAside(std::size_t index, const std::string& reason) {
    Member& m = *members_[index];
    m.reason = reason;
    if (!m.inService) {
        return;
    }
    m.inService = false;
    ++m.setAsides;
    log::warning("model server {} set aside: {}", redactUrl(m.client->url()), publicText(reason));
    startProbe(index);
}

void ServerPool::readmit(std::size_t index) {
    Member& m = *members_[index];
    ++m.probeGeneration;
    m.probing = false;
    m.timer.cancel();
    m.backoff = std::chrono::milliseconds{0};
    if (m.inService) {
        return;
    }
    // Back with the mean estimate of the servers in service: not so low that
    // every request rushes to it, not so high that it waits for a spike.
    double sum = 0;
    int n = 0;
    for (const auto& other : members_) {
        if (other->inService) {
            sum += other->ewmaMs;
            ++n;
        }
    }
    m.ewmaMs = n > 0 ? sum / n : 0.0;
    m.stamp = Clock::now();
    m.inService = true;
    m.reason.clear();
    log::notice("model server {} back in service", redactUrl(m.client->url()));
}

void ServerPool::startProbe(std::size_t index) {
    Member& m = *members_[index];
    if (m.probing) {
        return;
    }
    m.probing = true;
    const std::uint64_t generation = ++m.probeGeneration;
    asio::co_spawn(executor_, probe(weak_from_this(), index, generation), asio::detached);
}

asio::awaitable<void> ServerPool::probe(std::weak_ptr<ServerPool> weak, std::size_t index,
                                        std::uint64_t generation) {
    co_await asio::this_coro::throw_if_cancelled(false);
    while (true) {
        ModelClientPtr client;
        asio::steady_timer* timer = nullptr; // owned by the member; not touched after the wait
        {
            auto pool = weak.lock();
            if (!pool || pool->members_[index]->probeGeneration != generation) {
                co_return;
            }
            Member& m = *pool->members_[index];
            m.backoff = m.backoff.count() == 0 ? pool->options_.probeInitial
                                               : std::min(pool->options_.probeMax, m.backoff * 2);
            m.timer.expires_after(m.backoff);
            client = m.client;
            timer = &m.timer;
        }
        // The pool's destruction or cancelAll() cancels this wait; the
        // generation check after it says which.
        boost::system::error_code ec;
        co_await timer->async_wait(asio::redirect_error(asio::use_awaitable, ec));
        auto pool = weak.lock();
        if (!pool || pool->members_[index]->probeGeneration != generation) {
            co_return;
        }
        pool.reset(); // not kept alive by its own probe
        const HealthReport health = co_await client->checkHealth();
        pool = weak.lock();
        if (!pool || pool->members_[index]->probeGeneration != generation) {
            co_return;
        }
        if (!health.usable()) {
            pool->members_[index]->reason = health.problem;
            continue;
        }
        // Healthy: load the model before taking requests again, so the first
        // one back does not pay the load time (a restarted server starts empty).
        pool.reset();
        const std::optional<AnalysisError> warm = co_await client->warmUp();
        pool = weak.lock();
        if (!pool || pool->members_[index]->probeGeneration != generation) {
            co_return;
        }
        if (warm && isServerFault(*warm)) {
            pool->members_[index]->reason = warm->message;
            continue;
        }
        pool->readmit(index);
        co_return;
    }
}

namespace {

/// True when \a timer expired; false when its wait was cancelled (never throws).
asio::awaitable<bool> expires(asio::steady_timer& timer) {
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    co_return !ec;
}

} // namespace

asio::awaitable<ChatOutcome> ServerPool::chat(ChatRequest request) {
    // Cancellation ends the members' calls with Cancelled values, never as a throw.
    co_await asio::this_coro::throw_if_cancelled(false);
    using namespace asio::experimental::awaitable_operators;
    auto self = shared_from_this(); // members_ outlive every await below
    const Clock::time_point start = Clock::now();
    const Clock::time_point deadline = start + options_.timeout;
    const auto since = [&start] {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    };
    std::vector<bool> tried(members_.size(), false);
    std::optional<ChatOutcome> failed;
    int attempts = 0;
    for (std::size_t idle = 0; idle < members_.size(); ++idle) {
        if (!members_[idle]->inService) {
            startProbe(idle); // after cancelAll() the probes start again here
        }
    }
    while (const std::optional<std::size_t> index = pick(tried)) {
        const Clock::time_point now = Clock::now();
        if (now >= deadline) {
            break;
        }
        tried[*index] = true;
        Member& m = *members_[*index];
        ++m.outstanding;
        ++m.requests;
        // The member's own deadline is llm.timeout from now; the request's is
        // llm.timeout from its start: the timer keeps a retry on a second
        // server within the first.
        asio::steady_timer timer(executor_, deadline - now);
        std::variant<ChatOutcome, bool> raced =
            co_await (m.client->chat(request) || expires(timer));
        --m.outstanding;
        if (raced.index() == 1 && !std::get<1>(raced)) {
            // The request itself was cancelled (superseded, shutdown).
            ChatOutcome out;
            out.error = AnalysisError{AnalysisError::Kind::Cancelled, 0,
                                      fmt::format("{}: cancelled", request.label)};
            out.attempts = attempts + 1;
            out.latency = since();
            co_return out;
        }
        if (raced.index() == 1) {
            ChatOutcome out;
            out.error =
                AnalysisError{AnalysisError::Kind::Timeout, 0,
                              fmt::format("{}: no answer from the model servers {} within {} ms",
                                          request.label, url_, options_.timeout.count())};
            out.attempts = attempts + 1;
            out.latency = since();
            ++m.failures;
            setAside(*index, out.error->message);
            co_return out;
        }
        ChatOutcome out = std::move(std::get<0>(raced));
        attempts += out.attempts;
        out.attempts = attempts;
        if (out.ok() || !isServerFault(*out.error)) {
            // An answer, or what any server would have answered: its time
            // measures the server (a cancellation says nothing about it).
            if (out.ok() || out.error->kind != AnalysisError::Kind::Cancelled) {
                observe(m, out.latency);
            }
            out.latency = since();
            if (out.result) {
                out.result->attempts = attempts;
                out.result->latency = out.latency;
            }
            co_return out;
        }
        ++m.failures;
        setAside(*index, out.error->message);
        failed = std::move(out);
    }
    ChatOutcome out;
    if (failed) {
        out = std::move(*failed);
    } else {
        out.error =
            AnalysisError{AnalysisError::Kind::Timeout, 0,
                          fmt::format("{}: no answer from the model servers {} within {} ms",
                                      request.label, url_, options_.timeout.count())};
    }
    out.attempts = attempts;
    out.latency = since();
    co_return out;
}

asio::awaitable<HealthReport> ServerPool::checkHealth() {
    // Cancellation ends the members' calls with Cancelled values, never as a throw.
    co_await asio::this_coro::throw_if_cancelled(false);
    auto self = shared_from_this();
    std::optional<HealthReport> usable;
    std::optional<HealthReport> first;
    std::string problems;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        ModelClientPtr client = members_[i]->client;
        HealthReport report = co_await client->checkHealth();
        if (report.usable()) {
            readmit(i);
            if (!usable) {
                usable = std::move(report);
            }
            continue;
        }
        setAside(i, report.problem);
        problems += problems.empty() ? report.problem : "; " + report.problem;
        if (!first) {
            first = std::move(report);
        }
    }
    if (usable) {
        co_return *usable;
    }
    // None usable: the first server's figures, every server's problem.
    first->problem = problems;
    co_return *first;
}

asio::awaitable<PromptMeasurement> ServerPool::measurePrompt(std::string system, std::string user,
                                                             JpegImage image) {
    // Cancellation ends the members' calls with Cancelled values, never as a throw.
    co_await asio::this_coro::throw_if_cancelled(false);
    auto self = shared_from_this();
    const bool anyInService =
        std::any_of(members_.begin(), members_.end(), [](const auto& m) { return m->inService; });
    PromptMeasurement last;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (anyInService && !members_[i]->inService) {
            continue;
        }
        ModelClientPtr client = members_[i]->client;
        last = co_await client->measurePrompt(system, user, image);
        if (last.ok() || !isServerFault(*last.error)) {
            co_return last; // a figure, or an answer about the model, not the server
        }
        setAside(i, last.error->message);
    }
    co_return last;
}

asio::awaitable<std::optional<AnalysisError>> ServerPool::warmUp() {
    // Cancellation ends the members' calls with Cancelled values, never as a throw.
    co_await asio::this_coro::throw_if_cancelled(false);
    auto self = shared_from_this();
    const bool anyInService =
        std::any_of(members_.begin(), members_.end(), [](const auto& m) { return m->inService; });
    std::optional<AnalysisError> firstError;
    bool warmed = false;
    for (std::size_t i = 0; i < members_.size(); ++i) {
        if (anyInService && !members_[i]->inService) {
            continue;
        }
        ModelClientPtr client = members_[i]->client;
        std::optional<AnalysisError> error = co_await client->warmUp();
        if (!error) {
            warmed = true;
            continue;
        }
        if (isServerFault(*error)) {
            setAside(i, error->message);
        }
        if (!firstError) {
            firstError = std::move(error);
        }
    }
    if (warmed) {
        co_return std::nullopt;
    }
    co_return firstError;
}

void ServerPool::cancelAll() {
    for (auto& member : members_) {
        member->client->cancelAll();
        ++member->probeGeneration;
        member->probing = false;
        member->timer.cancel();
    }
}

ClientStats ServerPool::stats() const {
    ClientStats sum;
    for (const auto& member : members_) {
        const ClientStats one = member->client->stats();
        sum.openConnections += one.openConnections;
        sum.idleConnections += one.idleConnections;
        sum.inFlight += one.inFlight;
        sum.queued += one.queued;
        sum.attempts += one.attempts;
        sum.retries += one.retries;
        sum.connectionsOpened += one.connectionsOpened;
        sum.protocolErrors += one.protocolErrors;
        sum.stalledResponses += one.stalledResponses;
        sum.truncatedAnswers += one.truncatedAnswers;
        if (!sum.placement) {
            sum.placement = one.placement;
        }
        ServerStatus status;
        status.url = member->client->url();
        status.inService = member->inService;
        status.reason = member->reason;
        status.outstanding = member->outstanding;
        status.latencyEwmaMs = member->ewmaMs;
        status.requests = member->requests;
        status.failures = member->failures;
        status.setAsides = member->setAsides;
        sum.servers.push_back(std::move(status));
    }
    return sum;
}

const std::string& ServerPool::model() const {
    return members_.front()->client->model();
}

int ServerPool::maxInFlight() const {
    int inService = 0;
    int all = 0;
    for (const auto& member : members_) {
        all += member->client->maxInFlight();
        if (member->inService) {
            inService += member->client->maxInFlight();
        }
    }
    return inService > 0 ? inService : all;
}

} // namespace dmsd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
