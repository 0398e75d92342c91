#pragma once

/// \file
/// Test helpers for the emulator's tests: a small synchronous HTTP/1.1 client
/// (Boost.Beast), solid-colour JPEGs (TurboJPEG), base64, and a running
/// ollama-emulator child process.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/json/value.hpp>

#include "test/support/child_process.h"

namespace dmsd::emulator::test {

struct HttpResponse {
    int status = 0;
    std::map<std::string, std::string> headers; ///< lower-case names
    std::string body;
    bool complete = false; ///< the whole message arrived (false: connection dropped)
    std::string error;     ///< read error text when incomplete
    std::string header(const std::string& name) const;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

/// One request on a fresh connection to 127.0.0.1:\a port; waits for the whole response.
HttpResponse httpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {}, const Headers& headers = {});

/// A request sent and left waiting: close() cancels it (the client goes away),
/// finish() reads the response.
class PendingRequest {
public:
    PendingRequest(std::uint16_t port, const std::string& method, const std::string& target,
                   const std::string& body);
    ~PendingRequest();
    PendingRequest(PendingRequest&&) noexcept;
    PendingRequest& operator=(PendingRequest&&) noexcept;
    /// Bytes that have arrived and were not read yet.
    std::size_t available();
    HttpResponse finish();
    void close();

private:
    struct State;
    std::unique_ptr<State> state_;
};

/// A width x height JPEG of one colour.
std::string solidJpeg(int width, int height, int r, int g, int b);
std::string base64(std::string_view bytes);

/// Splits NDJSON into parsed lines (throws on a line that is not JSON).
std::vector<boost::json::value> ndjson(const std::string& body);

/// A running emulator; killed (SIGTERM, then SIGKILL) on destruction.
class Emulator {
public:
    explicit Emulator(std::vector<std::string> args);
    ~Emulator();
    std::uint16_t port() const { return port_; }
    dmsd::test::ChildProcess& process() { return *process_; }
    /// GET /_emulator/stats, parsed.
    boost::json::object stats();
    /// POST /_emulator/config; returns the status.
    int configure(const std::string& json);
    /// Waits until stats()[key] == value (integer); false on timeout.
    bool waitForStat(const std::string& key, std::int64_t value,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));
    /// POST /api/chat with \a body.
    HttpResponse chat(const std::string& body);

private:
    std::unique_ptr<dmsd::test::ChildProcess> process_;
    std::uint16_t port_ = 0;
};

/// Reads a JSON Lines file.
std::vector<boost::json::object> readLog(const std::string& path);

} // namespace dmsd::emulator::test
