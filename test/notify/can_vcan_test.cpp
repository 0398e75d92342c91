// Live SocketCAN test: creates its own vcan interface, sends through CanNotifier
// with the real openSocketCan(), reads the frames back with a raw CAN socket,
// checks bus-down handling, and deletes the interface. Exits 77 (CTest: skipped)
// with the reason where the kernel offers no vcan or no AF_CAN, or we are not root.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <net/if.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <linux/can.h>
#include <linux/can/raw.h>

#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "base/unique_fd.h"
#include "notify/can_notifier.h"
#include "notify/journal.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

constexpr int kSkip = 77;

int run(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str());
}

/// Deletes the interface however the test ends.
struct VcanInterface {
    std::string name;
    bool created = false;
    ~VcanInterface() {
        if (created) {
            run("ip link delete " + name);
        }
    }
};

int fail(const std::string& what) {
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    return 1;
}

bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        io.restart();
        io.run_for(5ms);
    }
    return true;
}

} // namespace

int main() {
    if (::geteuid() != 0) {
        std::printf("SKIP: creating a vcan interface needs root\n");
        return kSkip;
    }
    {
        UniqueFd probe(::socket(PF_CAN, SOCK_RAW | SOCK_CLOEXEC, CAN_RAW));
        if (!probe) {
            std::printf("SKIP: kernel offers no SocketCAN (socket(PF_CAN): %s)\n",
                        std::strerror(errno));
            return kSkip;
        }
    }
    // Unique per process so parallel runs do not clash (IFNAMSIZ is 16).
    VcanInterface vcan{fmt::format("dmsdv{}", ::getpid() % 1000000000)};
    if (run("ip link add dev " + vcan.name + " type vcan") != 0) {
        std::printf("SKIP: `ip link add %s type vcan` failed: kernel without the vcan module?\n",
                    vcan.name.c_str());
        return kSkip;
    }
    vcan.created = true;
    if (run("ip link set " + vcan.name + " up") != 0) {
        return fail("cannot set " + vcan.name + " up");
    }

    // The listener: a plain raw socket on the same interface sees our frames
    // through the kernel's local loopback of CAN frames.
    UniqueFd reader(::socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW));
    sockaddr_can address{};
    address.can_family = AF_CAN;
    address.can_ifindex = static_cast<int>(::if_nametoindex(vcan.name.c_str()));
    if (!reader ||
        ::bind(reader.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        return fail("cannot bind a reader to " + vcan.name);
    }

    boost::asio::io_context io;
    std::vector<JournalEntry> entries;
    Journal journal([&](const JournalEntry& e) { entries.push_back(e); });
    CanSettings settings;
    settings.enabled = true;
    settings.interface = vcan.name;
    settings.heartbeat = 20ms;
    CanNotifierTiming timing;
    timing.reopenMin = 5ms;
    CanNotifier notifier(io, settings, journal, timing);
    notifier.setHealth(true, true, false);
    notifier.start();
    if (notifier.status().state != CanLinkState::Up) {
        return fail("notifier not up: " + notifier.status().lastError);
    }
    AlertEvent raised;
    raised.type = AlertEvent::Type::Raised;
    raised.kind = AlertKind::Drowsiness;
    raised.level = AlertLevel::Warning;
    raised.confidence = 0.8;
    notifier.onAlertEvent(raised, {{AlertKind::Drowsiness, AlertLevel::Warning, 0.8, 0ms}},
                          FaceState::Sleepy);

    int heartbeats = 0;
    int alerts = 0;
    auto readFrames = [&] {
        can_frame frame{};
        while (::recv(reader.get(), &frame, sizeof frame, MSG_DONTWAIT) ==
               static_cast<ssize_t>(sizeof frame)) {
            CanPayload payload{};
            std::copy(std::begin(frame.data), std::end(frame.data), payload.begin());
            if (frame.len != 8) {
                return false;
            }
            if (frame.can_id == settings.alertId) {
                auto decoded = decodeAlertFrame(payload);
                if (!decoded || decoded->kind != AlertKind::Drowsiness ||
                    decoded->face != FaceState::Sleepy || decoded->confidence != 80) {
                    return false;
                }
                ++alerts;
            } else if (frame.can_id == settings.heartbeatId) {
                auto decoded = decodeHeartbeatFrame(payload);
                if (!decoded || !decoded->cameraOk || !decoded->modelServerOk) {
                    return false;
                }
                ++heartbeats;
            } else {
                return false;
            }
        }
        return true;
    };
    bool framesOk = true;
    if (!runUntil(io,
                  [&] {
                      framesOk = framesOk && readFrames();
                      return !framesOk || (heartbeats >= 3 && alerts >= 3);
                  }) ||
        !framesOk) {
        return fail(fmt::format("frames on {}: ok={} heartbeats={} alerts={}", vcan.name, framesOk,
                                heartbeats, alerts));
    }

    // Link down: reported as a fault, never blocking; back up: frames flow again.
    run("ip link set " + vcan.name + " down");
    if (!runUntil(io, [&] { return notifier.status().state == CanLinkState::BusOff; })) {
        return fail("link down not detected, state " +
                    std::string(canLinkStateName(notifier.status().state)));
    }
    run("ip link set " + vcan.name + " up");
    if (!runUntil(io, [&] { return notifier.status().state == CanLinkState::Up; })) {
        return fail("link up not detected");
    }
    // Interface removed entirely: the notifier reopens once it is back.
    run("ip link delete " + vcan.name);
    vcan.created = false;
    if (!runUntil(io, [&] { return notifier.status().state == CanLinkState::Down; })) {
        return fail("interface removal not detected");
    }
    if (run("ip link add dev " + vcan.name + " type vcan") != 0 ||
        run("ip link set " + vcan.name + " up") != 0) {
        return fail("cannot re-create " + vcan.name);
    }
    vcan.created = true;
    if (!runUntil(io, [&] { return notifier.status().state == CanLinkState::Up; })) {
        return fail("no reopen after the interface came back: " + notifier.status().lastError);
    }
    notifier.stop();
    std::printf("PASS: %d heartbeats, %d alert frames on %s; down/up and removal handled\n",
                heartbeats, alerts, vcan.name.c_str());
    return 0;
}
