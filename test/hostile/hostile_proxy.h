#pragma once

/// \file
/// A fault-injecting reverse proxy in front of the Ollama emulator
/// (docs/hostile.md): every request is forwarded to the emulator, so answers
/// stay scripted by image content, and the emulator's response to a chosen
/// `/api/chat` generation request is mangled on the way back (a second
/// response smuggled behind it, a body cut short or dripped, broken chunks, a
/// redirect, 101, HTTP/1.0 close-delimited, a reset, invalid UTF-8 or control
/// characters in the answer, a 10 MB string, another model's name). A control
/// endpoint (`/_hostile/config`) selects a fault for the next N generation
/// requests, or random faults with a probability; a JSON Lines log records
/// what the emulator answered and which fault each answer met.

#include <array>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json/object.hpp>

namespace dmsd::hostile {

/// The faults, in the order random rolls try them.
inline constexpr std::array<std::string_view, 13> kFaults = {
    "smuggle",  "short_body",    "headers_silence", "drip",     "bad_chunk",
    "bad_utf8", "control_chars", "huge_string",     "redirect", "switching",
    "http10",   "reset",         "wrong_model"};

bool isFault(std::string_view name);

struct ProxyOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::uint16_t upstreamPort = 0; ///< the emulator, on 127.0.0.1
    std::uint32_t seed = 1;
    std::string logPath; ///< JSON Lines, one per /api/chat request; empty: none
    std::string fault;   ///< for the first \a count generation requests
    int count = 0;
    double randomRate = 0; ///< probability that a generation request meets a random fault
    std::size_t hugeBytes = 10 * 1024 * 1024;
};

class HostileProxy {
public:
    HostileProxy(boost::asio::io_context& io, ProxyOptions options);
    /// Binds and listens; returns the port.
    std::uint16_t listen();
    void start();

private:
    boost::asio::awaitable<void> acceptLoop();
    boost::asio::awaitable<void> session(boost::asio::ip::tcp::socket socket);
    /// Applies a /_hostile/config body; returns the error, or nullopt.
    std::optional<std::string> configure(const std::string& body);
    boost::json::object state() const;
    std::string pickFault();

    boost::asio::io_context& io_;
    ProxyOptions options_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::mt19937 rng_;
    std::ofstream log_;
    std::uint64_t chats_ = 0;       ///< /api/chat requests seen
    std::uint64_t generations_ = 0; ///< of them, with messages (faults apply to these)
    std::uint64_t faulted_ = 0;
    std::map<std::string, std::uint64_t> byFault_;
};

} // namespace dmsd::hostile
