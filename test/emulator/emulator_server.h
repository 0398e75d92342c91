#pragma once

/// \file
/// The Ollama emulator's HTTP server: Ollama's routes and wire format on
/// Boost.Beast, its scheduler (cold loads, reloads, FIFO slots, the pending-load
/// queue), scripted answers, injected faults, a JSON Lines request log and the
/// /_emulator/stats and /_emulator/config endpoints. Single-threaded: every
/// connection is a coroutine on one io_context.

#include <cstdint>
#include <memory>

#include <boost/asio/io_context.hpp>

#include "test/emulator/answer_script.h"
#include "test/emulator/emulator_config.h"

namespace dmsd::emulator {

class EmulatorServer {
public:
    /// Opens the log file if configured; throws std::runtime_error naming it.
    EmulatorServer(boost::asio::io_context& io, EmulatorConfig config, AnswerScript script);
    ~EmulatorServer();
    EmulatorServer(const EmulatorServer&) = delete;
    EmulatorServer& operator=(const EmulatorServer&) = delete;

    /// Binds and listens on config.host:config.port; returns the bound port.
    /// Throws std::runtime_error naming the address on failure.
    std::uint16_t listen();
    /// Starts accepting connections (after listen()).
    void start();
    /// Stops accepting and closes every connection, which cancels every
    /// request; io_context::run() returns once they have unwound.
    void shutdown();

private:
    class Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace dmsd::emulator
