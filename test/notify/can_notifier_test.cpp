// CanNotifier against a local stand-in for the CAN socket: one end of an
// AF_UNIX SOCK_SEQPACKET pair (datagram boundaries like CAN_RAW, a bounded
// queue that really fills up, EOF when the far end goes away). The test reads
// the frames from the other end. The live SocketCAN path is can_vcan_test.cpp.

#include <cerrno>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <sys/socket.h>
#include <vector>

#include <linux/can.h>
#include <linux/can/error.h>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "notify/can_notifier.h"
#include "notify/journal.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

struct Captured {
    std::mutex mutex;
    std::vector<JournalEntry> entries;
    std::vector<JournalEntry> withId(std::string_view id) {
        std::lock_guard lock(mutex);
        std::vector<JournalEntry> out;
        for (const auto& entry : entries) {
            if (entry.messageId == id) {
                out.push_back(entry);
            }
        }
        return out;
    }
};

/// Hands the notifier one end of a fresh socketpair per open; keeps the other end.
struct PairOpener {
    std::vector<UniqueFd> peers;
    int failuresLeft = 0;
    int opens = 0;
    int sendBuffer = 0;

    CanNotifier::Opener opener() {
        return [this](const std::string& interface) {
            ++opens;
            if (failuresLeft > 0) {
                --failuresLeft;
                return CanOpenResult{UniqueFd{}, std::make_error_code(std::errc::no_such_device),
                                     "CAN interface " + interface + " not found"};
            }
            int fds[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) ==
                    0);
            if (sendBuffer > 0) {
                ::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &sendBuffer, sizeof sendBuffer);
            }
            peers.emplace_back(fds[1]);
            return CanOpenResult{UniqueFd(fds[0]), {}, {}};
        };
    }
    int peer() const { return peers.back().get(); }
};

struct Received {
    std::vector<can_frame> frames;
    std::vector<AlertFrameFields> alerts;
    std::vector<HeartbeatFrameFields> heartbeats;
};

CanSettings testSettings(std::chrono::milliseconds heartbeat = 1000ms) {
    CanSettings settings;
    settings.enabled = true;
    settings.interface = "vcan-test";
    settings.heartbeat = heartbeat;
    return settings;
}

CanNotifierTiming fastTiming() {
    CanNotifierTiming timing;
    timing.reopenMin = 2ms;
    timing.reopenMax = 10ms;
    timing.congestionRetry = 2ms;
    return timing;
}

/// Reads every frame waiting at \a fd.
void drain(int fd, Received& into, const CanSettings& settings) {
    for (;;) {
        can_frame frame{};
        const ssize_t got = ::recv(fd, &frame, sizeof frame, MSG_DONTWAIT);
        if (got != static_cast<ssize_t>(sizeof frame)) {
            return;
        }
        into.frames.push_back(frame);
        CanPayload payload{};
        std::copy(std::begin(frame.data), std::end(frame.data), payload.begin());
        REQUIRE(frame.len == 8);
        if (frame.can_id == settings.alertId) {
            auto decoded = decodeAlertFrame(payload);
            REQUIRE(decoded.has_value());
            into.alerts.push_back(*decoded);
        } else {
            REQUIRE(frame.can_id == settings.heartbeatId);
            auto decoded = decodeHeartbeatFrame(payload);
            REQUIRE(decoded.has_value());
            into.heartbeats.push_back(*decoded);
        }
    }
}

/// Runs the loop until \a done holds (checked between short slices), at most 5 s.
bool runUntil(boost::asio::io_context& io, const std::function<bool()>& done) {
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        io.restart();
        io.run_for(2ms);
    }
    return true;
}

AlertEvent event(AlertEvent::Type type, AlertKind kind, AlertLevel level, double confidence) {
    AlertEvent e;
    e.type = type;
    e.kind = kind;
    e.level = level;
    e.confidence = confidence;
    return e;
}

} // namespace

TEST_CASE("heartbeat on open, then one alert frame per raise, level change and clear", "[can]") {
    boost::asio::io_context io;
    Captured captured;
    Journal journal([&](const JournalEntry& e) { captured.entries.push_back(e); });
    PairOpener pair;
    const CanSettings settings = testSettings(10s); // no periodic tick during this test
    CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
    notifier.setHealth(true, false, true);
    notifier.start();
    REQUIRE(pair.opens == 1);
    CHECK(notifier.status().state == CanLinkState::Up);

    Received rx;
    drain(pair.peer(), rx, settings);
    REQUIRE(rx.heartbeats.size() == 1);
    CHECK(rx.heartbeats[0] == HeartbeatFrameFields{true, false, true, 0, 0});
    CHECK(rx.alerts.empty());

    std::vector<ActiveAlert> active{{AlertKind::Drowsiness, AlertLevel::Warning, 0.83, 100ms}};
    notifier.onAlertEvent(
        event(AlertEvent::Type::Raised, AlertKind::Drowsiness, AlertLevel::Warning, 0.83), active,
        FaceState::Sleepy);
    active[0].level = AlertLevel::Critical;
    active.push_back({AlertKind::PhoneUse, AlertLevel::Warning, 0.7, 200ms});
    notifier.onAlertEvent(
        event(AlertEvent::Type::LevelChanged, AlertKind::Drowsiness, AlertLevel::Critical, 0.91),
        active, FaceState::Exhausted);
    active.erase(active.begin());
    notifier.onAlertEvent(
        event(AlertEvent::Type::Cleared, AlertKind::Drowsiness, AlertLevel::Cleared, 0.0), active,
        FaceState::Awake);

    drain(pair.peer(), rx, settings);
    REQUIRE(rx.alerts.size() == 3);
    AlertFrameFields expected;
    expected.kind = AlertKind::Drowsiness;
    expected.level = AlertLevel::Warning;
    expected.confidence = 83;
    expected.face = FaceState::Sleepy;
    expected.activeMask = alertBit(AlertKind::Drowsiness);
    expected.counter = 0;
    CHECK(rx.alerts[0] == expected);
    expected.level = AlertLevel::Critical;
    expected.confidence = 91;
    expected.face = FaceState::Exhausted;
    expected.activeMask = alertBit(AlertKind::Drowsiness) | alertBit(AlertKind::PhoneUse);
    expected.counter = 1;
    CHECK(rx.alerts[1] == expected);
    expected.level = AlertLevel::Cleared;
    expected.confidence = 0;
    expected.face = FaceState::Awake;
    expected.activeMask = alertBit(AlertKind::PhoneUse);
    expected.counter = 2;
    CHECK(rx.alerts[2] == expected);

    const CanStatus status = notifier.status();
    CHECK(status.framesSent == 4);
    CHECK(status.framesDropped == 0);
    CHECK(captured.withId(message_id::kCanFault).empty());
}

TEST_CASE("heartbeat is periodic with its own counter, alert repeated only while active", "[can]") {
    boost::asio::io_context io;
    Journal journal([](const JournalEntry&) {});
    PairOpener pair;
    const CanSettings settings = testSettings(5ms);
    CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
    notifier.start();
    const std::vector<ActiveAlert> active{
        {AlertKind::PhoneUse, AlertLevel::Warning, 0.6, 100ms},
        {AlertKind::Distraction, AlertLevel::Critical, 0.9, 50ms},
        {AlertKind::HandsOffWheel, AlertLevel::Critical, 0.5, 20ms},
    };
    notifier.onAlertEvent(
        event(AlertEvent::Type::Raised, AlertKind::PhoneUse, AlertLevel::Warning, 0.6), active,
        FaceState::Neutral);

    Received rx;
    REQUIRE(runUntil(io, [&] {
        drain(pair.peer(), rx, settings);
        return rx.heartbeats.size() >= 20 && rx.alerts.size() >= 10;
    }));
    for (std::size_t i = 0; i < rx.heartbeats.size(); ++i) {
        CHECK(rx.heartbeats[i].counter == (i & 0x0F)); // wraps 15 -> 0
        if (i > 0) { // the first went out on open, before the raise
            CHECK(rx.heartbeats[i].activeMask == activeMask(active));
        }
    }
    for (std::size_t i = 0; i < rx.alerts.size(); ++i) {
        CHECK(rx.alerts[i].counter == (i & 0x0F));
    }
    // Repeats carry the most severe alert: critical, most recently raised.
    for (std::size_t i = 1; i < rx.alerts.size(); ++i) {
        CHECK(rx.alerts[i].kind == AlertKind::Distraction);
        CHECK(rx.alerts[i].level == AlertLevel::Critical);
        CHECK(rx.alerts[i].confidence == 90);
    }

    notifier.onAlertEvent(
        event(AlertEvent::Type::Cleared, AlertKind::PhoneUse, AlertLevel::Cleared, 0.0), {},
        FaceState::Awake);
    drain(pair.peer(), rx, settings);
    const std::size_t alertsAfterClear = rx.alerts.size();
    CHECK(rx.alerts.back().level == AlertLevel::Cleared);
    const std::size_t heartbeatsAfterClear = rx.heartbeats.size();
    REQUIRE(runUntil(io, [&] {
        drain(pair.peer(), rx, settings);
        return rx.heartbeats.size() >= heartbeatsAfterClear + 5;
    }));
    CHECK(rx.alerts.size() == alertsAfterClear);
    CHECK(rx.heartbeats.back().activeMask == 0);
}

TEST_CASE("repeatedAlert picks highest level, then latest, then lowest code", "[can]") {
    CHECK_FALSE(CanNotifier::repeatedAlert({}).has_value());
    CHECK(CanNotifier::repeatedAlert({{AlertKind::PhoneUse, AlertLevel::Warning, 0.5, 10ms},
                                      {AlertKind::Drowsiness, AlertLevel::Critical, 0.5, 1ms}})
              ->kind == AlertKind::Drowsiness);
    CHECK(CanNotifier::repeatedAlert({{AlertKind::PhoneUse, AlertLevel::Warning, 0.5, 10ms},
                                      {AlertKind::Drowsiness, AlertLevel::Warning, 0.5, 1ms}})
              ->kind == AlertKind::PhoneUse);
    CHECK(CanNotifier::repeatedAlert({{AlertKind::PhoneUse, AlertLevel::Warning, 0.5, 10ms},
                                      {AlertKind::Distraction, AlertLevel::Warning, 0.5, 10ms}})
              ->kind == AlertKind::Distraction);
}

TEST_CASE("missing interface is reported, retried, and recovers", "[can]") {
    boost::asio::io_context io;
    Captured captured;
    Journal journal([&](const JournalEntry& e) {
        std::lock_guard lock(captured.mutex);
        captured.entries.push_back(e);
    });
    PairOpener pair;
    pair.failuresLeft = 3;
    const CanSettings settings = testSettings(10s);
    CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
    notifier.start(); // must not throw or block
    CanStatus status = notifier.status();
    CHECK(status.state == CanLinkState::Down);
    CHECK(status.lastError.find("vcan-test") != std::string::npos);
    // Events while down are dropped, not queued, and never fail.
    notifier.onAlertEvent(
        event(AlertEvent::Type::Raised, AlertKind::CameraFault, AlertLevel::Warning, 1.0),
        {{AlertKind::CameraFault, AlertLevel::Warning, 1.0, 0ms}}, FaceState::Unknown);
    CHECK(notifier.status().framesDropped >= 1);

    REQUIRE(runUntil(io, [&] { return notifier.status().state == CanLinkState::Up; }));
    status = notifier.status();
    CHECK(pair.opens == 4);
    CHECK(status.openFailures == 3);
    CHECK(status.lastError.empty());
    // Three identical failures, one journal entry (rate-limited), then one recovery.
    const auto faults = captured.withId(message_id::kCanFault);
    REQUIRE(faults.size() == 1);
    CHECK(faults[0].field("DMS_CAN_INTERFACE") == "vcan-test");
    CHECK(faults[0].priority == log::Priority::Err);
    const auto recoveries = captured.withId(message_id::kCanRecovered);
    REQUIRE(recoveries.size() == 1);
    CHECK(recoveries[0].field("DMS_SUPPRESSED_COUNT") == "2");

    // On (re)open the receivers get the current state at once: heartbeat + active alert.
    Received rx;
    drain(pair.peer(), rx, settings);
    REQUIRE(rx.heartbeats.size() == 1);
    CHECK(rx.heartbeats[0].activeMask == alertBit(AlertKind::CameraFault));
    REQUIRE(rx.alerts.size() == 1);
    CHECK(rx.alerts[0].kind == AlertKind::CameraFault);
}

TEST_CASE("full transmit queue: frames wait in a bounded queue and flow when it drains", "[can]") {
    boost::asio::io_context io;
    Journal journal([](const JournalEntry&) {});
    PairOpener pair;
    pair.sendBuffer = 1; // the kernel rounds up to its minimum
    const CanSettings settings = testSettings(10s);
    CanNotifierTiming timing = fastTiming();
    timing.maxQueued = 8;
    CanNotifier notifier(io, settings, journal, timing, pair.opener());
    notifier.start();

    const std::vector<ActiveAlert> active{{AlertKind::PhoneUse, AlertLevel::Warning, 0.5, 0ms}};
    int events = 0;
    // Nobody reads the far end: keep raising until the link reports congestion.
    while (notifier.status().state != CanLinkState::Congested) {
        REQUIRE(events < 100000);
        notifier.onAlertEvent(
            event(AlertEvent::Type::LevelChanged, AlertKind::PhoneUse, AlertLevel::Warning, 0.5),
            active, FaceState::Neutral);
        ++events;
    }
    for (int i = 0; i < 20; ++i) { // overflow the bounded queue
        notifier.onAlertEvent(
            event(AlertEvent::Type::LevelChanged, AlertKind::PhoneUse, AlertLevel::Warning, 0.5),
            active, FaceState::Neutral);
        ++events;
    }
    CanStatus status = notifier.status();
    CHECK(status.queued == 8);
    CHECK(status.framesDropped > 0);
    CHECK(status.sendErrors > 0);
    const std::uint64_t dropped = status.framesDropped;

    Received rx;
    REQUIRE(runUntil(io, [&] {
        drain(pair.peer(), rx, settings);
        return notifier.status().queued == 0 && notifier.status().state == CanLinkState::Up;
    }));
    drain(pair.peer(), rx, settings);
    status = notifier.status();
    // Every frame was either delivered or counted as dropped.
    CHECK(rx.frames.size() + dropped == static_cast<std::size_t>(events) + 1);
    CHECK(status.framesSent == rx.frames.size());
    // The queued tail arrives in order: consecutive rolling counters.
    for (std::size_t i = rx.alerts.size() - 8 + 1; i < rx.alerts.size(); ++i) {
        CHECK(rx.alerts[i].counter == ((rx.alerts[i - 1].counter + 1) & 0x0F));
    }
}

TEST_CASE("far end gone: socket reopened, frames flow again", "[can]") {
    boost::asio::io_context io;
    Journal journal([](const JournalEntry&) {});
    PairOpener pair;
    const CanSettings settings = testSettings(5ms);
    CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
    notifier.start();
    REQUIRE(pair.opens == 1);
    pair.peers.back().reset(); // close the far end
    REQUIRE(runUntil(io, [&] { return pair.opens >= 2; }));
    Received rx;
    REQUIRE(runUntil(io, [&] {
        drain(pair.peer(), rx, settings);
        return rx.heartbeats.size() >= 2;
    }));
    CHECK(notifier.status().state == CanLinkState::Up);
}

TEST_CASE("controller bus-off and restart error frames change the state", "[can]") {
    boost::asio::io_context io;
    Captured captured;
    Journal journal([&](const JournalEntry& e) { captured.entries.push_back(e); });
    PairOpener pair;
    const CanSettings settings = testSettings(10s);
    CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
    notifier.start();

    can_frame busOff{};
    busOff.can_id = CAN_ERR_FLAG | CAN_ERR_BUSOFF;
    busOff.len = CAN_ERR_DLC;
    REQUIRE(::send(pair.peer(), &busOff, sizeof busOff, 0) == sizeof busOff);
    REQUIRE(runUntil(io, [&] { return notifier.status().state == CanLinkState::BusOff; }));
    CHECK(notifier.status().errorFrames == 1);
    const auto faults = captured.withId(message_id::kCanFault);
    REQUIRE(faults.size() == 1);
    CHECK(faults[0].message.find("bus-off") != std::string::npos);

    can_frame restarted{};
    restarted.can_id = CAN_ERR_FLAG | CAN_ERR_RESTARTED;
    restarted.len = CAN_ERR_DLC;
    REQUIRE(::send(pair.peer(), &restarted, sizeof restarted, 0) == sizeof restarted);
    REQUIRE(runUntil(io, [&] { return notifier.status().state == CanLinkState::Up; }));
    CHECK(captured.withId(message_id::kCanRecovered).size() == 1);
}

TEST_CASE("disabled or invalid ids: nothing is opened", "[can]") {
    boost::asio::io_context io;
    Captured captured;
    Journal journal([&](const JournalEntry& e) { captured.entries.push_back(e); });
    PairOpener pair;
    CanSettings settings = testSettings();
    settings.enabled = false;
    {
        CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
        notifier.start();
        notifier.onAlertEvent(
            event(AlertEvent::Type::Raised, AlertKind::PhoneUse, AlertLevel::Warning, 0.5), {},
            FaceState::Neutral);
        CHECK(notifier.status().state == CanLinkState::Disabled);
    }
    settings.enabled = true;
    settings.alertId = 0x1ABCDEF; // extended ids are not used
    {
        CanNotifier notifier(io, settings, journal, fastTiming(), pair.opener());
        notifier.start();
        CHECK(notifier.status().state == CanLinkState::Down);
        CHECK(notifier.status().lastError.find("alert_id") != std::string::npos);
    }
    CHECK(pair.opens == 0);
    CHECK(captured.withId(message_id::kCanFault).size() == 1);
}

TEST_CASE("destroying the notifier with operations pending is safe", "[can]") {
    boost::asio::io_context io;
    Journal journal([](const JournalEntry&) {});
    PairOpener pair;
    pair.failuresLeft = 1;
    {
        CanNotifier notifier(io, testSettings(1ms), journal, fastTiming(), pair.opener());
        notifier.start();
    }
    io.restart();
    io.run_for(20ms); // handlers of the dead notifier run and must do nothing
    CHECK(pair.opens == 1);
}
