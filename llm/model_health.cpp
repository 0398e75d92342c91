#include "llm/model_health.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <fmt/format.h>

namespace dmsd {

namespace asio = boost::asio;

asio::awaitable<ModelCheck> checkModel(ModelClientPtr client) {
    ModelCheck check;
    check.health = co_await client->checkHealth();
    if (!check.health.usable()) {
        check.failed = ModelCheck::Step::Health;
        check.problem = !check.health.problem.empty() ? check.health.problem
                                                      : fmt::format("model {} on {} is not usable",
                                                                    client->model(), client->url());
        co_return check;
    }
    check.warmUpError = co_await client->warmUp();
    if (check.warmUpError) {
        check.failed = ModelCheck::Step::WarmUp;
        check.problem = fmt::format("warming up {} on {} failed: {}", client->model(),
                                    client->url(), check.warmUpError->message);
    }
    co_return check;
}

/// Shared with the running loop, so that a loop suspended in a request or on
/// the timer outlives the watcher safely: it wakes, sees a newer generation
/// and ends without reporting.
struct ModelHealthWatcher::State {
    State(asio::any_io_executor ex, std::chrono::milliseconds retry, Listener listener)
        : executor(std::move(ex)), timer(executor), retry(retry), listener(std::move(listener)) {}

    asio::any_io_executor executor;
    asio::steady_timer timer;
    std::chrono::milliseconds retry;
    Listener listener;
    ModelClientPtr client;
    std::uint64_t generation = 0;
    bool running = false;  ///< the current generation's loop is alive
    bool sleeping = false; ///< ... and waits for the retry delay
};

ModelHealthWatcher::ModelHealthWatcher(asio::any_io_executor executor,
                                       std::chrono::milliseconds retry, Listener listener)
    : state_(std::make_shared<State>(std::move(executor), retry, std::move(listener))) {
}

ModelHealthWatcher::~ModelHealthWatcher() {
    stop();
}

void ModelHealthWatcher::watch(ModelClientPtr client) {
    stop();
    state_->client = std::move(client);
    startLoop();
}

void ModelHealthWatcher::recheck() {
    if (!state_->client) {
        return;
    }
    if (!state_->running) {
        startLoop();
    } else if (state_->sleeping) {
        // Wakes the loop early; it checks again at once.
        state_->timer.cancel();
    }
}

void ModelHealthWatcher::stop() {
    ++state_->generation;
    state_->running = false;
    state_->sleeping = false;
    state_->client.reset();
    state_->timer.cancel();
}

bool ModelHealthWatcher::active() const {
    return state_->running;
}

void ModelHealthWatcher::startLoop() {
    state_->running = true;
    state_->sleeping = false;
    asio::co_spawn(state_->executor, loop(state_, state_->generation), asio::detached);
}

asio::awaitable<void> ModelHealthWatcher::loop(std::shared_ptr<State> state,
                                               std::uint64_t generation) {
    const ModelClientPtr client = state->client;
    for (;;) {
        const ModelCheck check = co_await checkModel(client);
        if (generation != state->generation) {
            co_return;
        }
        if (check.usable()) {
            state->running = false;
            state->listener(check);
            co_return;
        }
        state->listener(check);
        if (generation != state->generation) {
            co_return; // the listener stopped or re-targeted the watcher
        }
        state->sleeping = true;
        state->timer.expires_after(state->retry);
        co_await state->timer.async_wait(asio::as_tuple(asio::use_awaitable));
        if (generation != state->generation) {
            co_return;
        }
        state->sleeping = false;
    }
}

} // namespace dmsd
