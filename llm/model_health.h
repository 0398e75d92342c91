#pragma once

/// \file
/// Is the model server usable? One coroutine, checkModel(), asks the server
/// (`/api/version`, `/api/show`: reachable, model present, vision) and then
/// warms the model up, so that the first real question does not pay the load
/// time. `dmsd analyze` awaits it once before decoding (exit 3 when unusable);
/// `dmsd run` keeps a ModelHealthWatcher, which re-checks while the model is
/// down and reports every outcome.
///
/// Threading: on the io_context's thread of the client, like the ModelClient.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "llm/answers.h"
#include "llm/model_client.h"

namespace dmsd {

/// Outcome of checkModel(): usable, or the step that failed and why.
struct ModelCheck {
    enum class Step {
        None,   ///< usable: healthy and warmed up
        Health, ///< the health check failed (health.problem says why)
        WarmUp, ///< healthy, but loading the model failed (warmUpError)
    };
    Step failed = Step::None;
    HealthReport health;
    std::optional<AnalysisError> warmUpError;
    /// Empty when usable; else one line naming the URL and the model and what
    /// to do: the health report's problem, or "warming up M on URL failed: ...".
    std::string problem;

    bool usable() const { return failed == Step::None; }
};

/// Health check, then (only if healthy) warm-up. Never throws on I/O.
boost::asio::awaitable<ModelCheck> checkModel(ModelClientPtr client);

/// Keeps checking a client's model server while it is not usable: a check at
/// watch(), then one every \a retry until usable. Every outcome of every check
/// goes to the listener (usable or not, with the problem); the listener is
/// never called after stop(), another watch() or destruction.
class ModelHealthWatcher {
public:
    using Listener = std::function<void(const ModelCheck&)>;

    ModelHealthWatcher(boost::asio::any_io_executor executor, std::chrono::milliseconds retry,
                       Listener listener);
    ~ModelHealthWatcher();
    ModelHealthWatcher(const ModelHealthWatcher&) = delete;
    ModelHealthWatcher& operator=(const ModelHealthWatcher&) = delete;

    /// Starts checking \a client now (a new client after a reload); a check of
    /// the previous client still running is abandoned.
    void watch(ModelClientPtr client);
    /// Checks again now (requests stopped connecting): nothing if a check is
    /// running, else at once instead of after the retry delay.
    void recheck();
    /// No more checks, no more reports.
    void stop();

    /// A check is running or the next one is scheduled.
    bool active() const;

private:
    struct State;
    static boost::asio::awaitable<void> loop(std::shared_ptr<State> state,
                                             std::uint64_t generation);
    void startLoop();

    std::shared_ptr<State> state_;
};

} // namespace dmsd
