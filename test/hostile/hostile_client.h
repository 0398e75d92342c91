#pragma once

/// \file
/// Tests' side of the hostile proxy (docs/hostile.md): a running
/// `hostile-proxy` child in front of an emulator, its control endpoint, and
/// its log of what the emulator answered and which fault each answer met.

#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "test/support/child_process.h"

namespace dmsd::test {

class HostileProxyProcess {
public:
    /// Starts `hostile-proxy` in front of the emulator on \a upstreamPort.
    HostileProxyProcess(int upstreamPort, const std::filesystem::path& log,
                        const std::vector<std::string>& extra = {});
    ~HostileProxyProcess();
    HostileProxyProcess(const HostileProxyProcess&) = delete;
    HostileProxyProcess& operator=(const HostileProxyProcess&) = delete;

    int port() const { return port_; }
    std::string url() const;
    /// POST /_hostile/config; returns the resulting state (throws on 400).
    boost::json::object configure(const boost::json::object& change) const;
    /// GET /_hostile/stats.
    boost::json::object stats() const;
    /// Every line of the log so far.
    std::vector<boost::json::object> log() const;

private:
    std::unique_ptr<ChildProcess> process_;
    std::filesystem::path log_;
    int port_ = 0;
};

/// Every signal `busctl monitor --json=short` shows, kept with the time it
/// was read, so that waiting for one never skips another unseen.
class BusSignals {
public:
    struct Seen {
        std::string member;
        std::string kind; ///< the first argument, when a string
        std::chrono::steady_clock::time_point at;
    };
    explicit BusSignals(ChildProcess& monitor) : monitor_(monitor) {}

    /// Waits for \a member of \a kind not consumed yet (seen before or
    /// arriving within \a timeout); consumes it and what came before it.
    bool waitFor(const std::string& member, const std::string& kind,
                 std::chrono::milliseconds timeout);
    /// Reads what arrives until nothing comes for \a quiet.
    void drain(std::chrono::milliseconds quiet);
    /// Reads what arrives for \a period.
    void readFor(std::chrono::milliseconds period);
    /// Kinds of every AlertRaised seen.
    std::set<std::string> raised() const;
    const std::vector<Seen>& seen() const { return seen_; }

private:
    bool readOne(std::chrono::milliseconds timeout);

    ChildProcess& monitor_;
    std::vector<Seen> seen_;
    std::size_t consumed_ = 0;
};

} // namespace dmsd::test
