#pragma once

/// \file
/// Several model servers as one ModelClient (`llm.url` a list): each request
/// goes to the server in service with the least expected cost, peak-EWMA as
/// in Finagle and Linkerd (latency estimate × (outstanding + 1)); a server
/// whose request fails with a server or transport fault is set aside (outlier
/// ejection, as in Envoy) and the request retried on another server within
/// its deadline; a set-aside server is probed back with its health check on a
/// back-off. When every server is out, requests still go out (each server
/// once) and fail as a single server's would. docs/llm.md says why and how.
///
/// Each server is a ModelClient of its own (its own transport, connections
/// and `llm.max_in_flight` slots); the pool only chooses among them.
///
/// Threading: on the io_context's thread of its members, like every ModelClient.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "llm/model_client.h"

namespace dmsd {

/// Tuning of a ServerPool (defaults: Finagle's decay, Envoy-like back-off).
struct PoolOptions {
    /// The request's whole deadline across servers (`llm.timeout`).
    std::chrono::milliseconds timeout{20000};
    /// Time constant of the latency estimate's decay (Finagle's and Linkerd's default).
    std::chrono::milliseconds decay{10000};
    /// First wait before probing a set-aside server; doubled after each failed probe.
    std::chrono::milliseconds probeInitial{1000};
    std::chrono::milliseconds probeMax{30000};
};

/// True when \a error is the fault of the server or of the way to it
/// (connection refused or reset, a timeout or stall, 5xx, a broken response,
/// an error reported mid-answer); false for what another server would answer
/// the same (4xx, an unusable answer) and for a cancellation.
bool isServerFault(const AnalysisError& error);

class ServerPool final : public ModelClient, public std::enable_shared_from_this<ServerPool> {
public:
    /// A pool over \a members (at least one), in the order of `llm.url`.
    static std::shared_ptr<ServerPool> create(boost::asio::any_io_executor executor,
                                              std::vector<ModelClientPtr> members,
                                              PoolOptions options = {});
    ~ServerPool() override;
    ServerPool(const ServerPool&) = delete;
    ServerPool& operator=(const ServerPool&) = delete;

    boost::asio::awaitable<ChatOutcome> chat(ChatRequest request) override;
    /// Checks every server; usable when one is (its report), else every
    /// server's problem. A server found unusable is set aside, one found
    /// usable is back in service.
    boost::asio::awaitable<HealthReport> checkHealth() override;
    /// Warms every server in service (all when none is); an error only when none warmed up.
    boost::asio::awaitable<std::optional<AnalysisError>> warmUp() override;
    /// Measured on the first server in service (every server runs the same
    /// model with the same options); the next one when a server fault ends it.
    boost::asio::awaitable<PromptMeasurement> measurePrompt(std::string system, std::string user,
                                                            JpegImage image) override;
    /// Cancels every member's requests and the probes; the next request
    /// starts probing the set-aside servers again.
    void cancelAll() override;
    /// The members' figures summed, and ClientStats::servers.
    ClientStats stats() const override;
    /// The URLs, ", "-separated.
    const std::string& url() const override { return url_; }
    const std::string& model() const override;
    /// The sum over the servers in service (over all when none is).
    int maxInFlight() const override;

    struct Member;

private:
    ServerPool(boost::asio::any_io_executor executor, std::vector<ModelClientPtr> members,
               PoolOptions options);
    std::optional<std::size_t> pick(const std::vector<bool>& tried) const;
    double cost(const Member& member, std::chrono::steady_clock::time_point now) const;
    void observe(Member& member, std::chrono::milliseconds latency);
    void setAside(std::size_t index, const std::string& reason);
    void readmit(std::size_t index);
    void startProbe(std::size_t index);
    static boost::asio::awaitable<void> probe(std::weak_ptr<ServerPool> pool, std::size_t index,
                                              std::uint64_t generation);

    boost::asio::any_io_executor executor_;
    PoolOptions options_;
    std::vector<std::unique_ptr<Member>> members_;
    std::string url_;
};

} // namespace dmsd
