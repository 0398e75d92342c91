// AlertDispatcher with fake sinks: the vehicle-facing sinks get the whole burst
// first, the alert path is stamped after them, every sink gets the one context;
// the journal and snapshot sinks behind it.
#include <chrono>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "notify/alert_dispatcher.h"
#include "notify/alert_sinks.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// A clock that moves only when told to.
struct FakeClock {
    Clock::time_point now{std::chrono::seconds(1000)};
};

/// Records every call in a shared log, and may advance the fake clock (the time
/// a real send would take).
class FakeSink final : public AlertSink {
public:
    FakeSink(std::string name, Timing timing, std::vector<std::string>& log, FakeClock& clock,
             std::chrono::microseconds cost)
        : name_(std::move(name)), timing_(timing), log_(log), clock_(clock), cost_(cost) {}
    Timing timing() const override { return timing_; }
    void onAlert(const AlertEvent& event, const AlertContext& context) override {
        clock_.now += cost_;
        log_.push_back(name_ + ":" + std::string(alertKindName(event.kind)));
        contexts.push_back(&context);
        versions.emplace_back(context.configVersion);
        actives.push_back(context.active.size());
    }
    void onBurstEnd(const AlertContext&) override { log_.push_back(name_ + ":end"); }

    std::vector<const AlertContext*> contexts;
    std::vector<std::string> versions;
    std::vector<std::size_t> actives;

private:
    std::string name_;
    Timing timing_;
    std::vector<std::string>& log_;
    FakeClock& clock_;
    std::chrono::microseconds cost_;
};

AlertEvent event(AlertKind kind, AlertEvent::Type type = AlertEvent::Type::Raised,
                 std::uint64_t sequenceId = 7) {
    AlertEvent e;
    e.type = type;
    e.kind = kind;
    e.level = type == AlertEvent::Type::Cleared ? AlertLevel::Cleared : AlertLevel::Warning;
    e.confidence = 0.8;
    e.sequenceId = sequenceId;
    return e;
}

struct Fixture {
    FakeClock clock;
    std::vector<std::string> log;
    AlertDispatcher dispatcher{[this] {
        return clock.now;
    }};
    FakeSink* can = nullptr;
    FakeSink* dbus = nullptr;
    FakeSink* journal = nullptr;
    FakeSink* snapshots = nullptr;

    Fixture() {
        // Registered interleaved on purpose: the timing decides, not the order of add().
        journal = add("journal", AlertSink::Timing::Deferred, 1000us);
        can = add("can", AlertSink::Timing::Immediate, 10us);
        snapshots = add("snapshots", AlertSink::Timing::Deferred, 5000us);
        dbus = add("dbus", AlertSink::Timing::Immediate, 20us);
    }
    FakeSink* add(std::string name, AlertSink::Timing timing, std::chrono::microseconds cost) {
        auto sink = std::make_unique<FakeSink>(std::move(name), timing, log, clock, cost);
        FakeSink* raw = sink.get();
        dispatcher.add(std::move(sink));
        return raw;
    }
};

} // namespace

TEST_CASE("the vehicle first: every immediate sink has the whole burst before any deferred one",
          "[dispatcher]") {
    Fixture f;
    AlertContext context;
    context.configVersion = "v7";
    context.active = {ActiveAlert{AlertKind::Drowsiness, AlertLevel::Warning, 0.8, 0ms},
                      ActiveAlert{AlertKind::PhoneUse, AlertLevel::Warning, 0.7, 0ms}};
    f.dispatcher.dispatch({event(AlertKind::Drowsiness), event(AlertKind::PhoneUse)}, context);
    CHECK(f.log == std::vector<std::string>{
                       "can:DROWSINESS", "dbus:DROWSINESS", "can:PHONE_USE", "dbus:PHONE_USE",
                       "can:end", "dbus:end", "journal:DROWSINESS", "snapshots:DROWSINESS",
                       "journal:PHONE_USE", "snapshots:PHONE_USE", "journal:end", "snapshots:end"});
    // Every sink saw the one context of the burst (not a copy per sink or event).
    for (FakeSink* sink : {f.can, f.dbus, f.journal, f.snapshots}) {
        REQUIRE(sink->contexts.size() == 2);
        CHECK(sink->contexts[0] == &context);
        CHECK(sink->contexts[1] == &context);
        CHECK(sink->versions == std::vector<std::string>{"v7", "v7"});
        CHECK(sink->actives == std::vector<std::size_t>{2, 2});
    }
    // Without answersAt nothing is timed (engine ticks, camera faults).
    CHECK(f.dispatcher.alertPath().events == 0);
}

TEST_CASE("an empty burst reaches no sink", "[dispatcher]") {
    Fixture f;
    f.dispatcher.dispatch({}, AlertContext{}, f.clock.now);
    CHECK(f.log.empty());
    CHECK(f.dispatcher.alertPath().events == 0);
}

TEST_CASE("the alert path is stamped after the immediate sinks, before the deferred ones",
          "[dispatcher]") {
    Fixture f;
    const Clock::time_point answersAt = f.clock.now;
    f.clock.now += 100us; // from the answers to the dispatch (engine, context)
    f.dispatcher.dispatch({event(AlertKind::Drowsiness), event(AlertKind::Distraction)},
                          AlertContext{}, answersAt);
    const AlertPathFigures path = f.dispatcher.alertPath();
    CHECK(path.events == 2);
    // Event 1: 100 + CAN 10 + D-Bus 20 = 130 µs; event 2: 130 + 30 = 160 µs.
    // The deferred sinks' 12 ms are in neither.
    CHECK(path.max == Approx(160.0));
    CHECK(path.p50 == Approx(130.0));
    CHECK(path.p99 == Approx(160.0));

    f.clock.now += 1s;
    f.dispatcher.dispatch({event(AlertKind::PhoneUse)}, AlertContext{}, f.clock.now);
    CHECK(f.dispatcher.alertPath().events == 3);
    CHECK(f.dispatcher.alertPath().max == Approx(160.0));
}

TEST_CASE("the journal sink writes the alert entry with the burst's version and latency",
          "[dispatcher]") {
    std::vector<JournalEntry> entries;
    Journal journal([&](const JournalEntry& e) { entries.push_back(e); });
    AlertDispatcher dispatcher;
    dispatcher.add(std::make_unique<JournalAlertSink>(journal));
    AlertContext context;
    context.configVersion = "fleet-3";
    context.latency = 1234ms;
    dispatcher.dispatch({event(AlertKind::Drowsiness)}, context);
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].field("DMS_ALERT_KIND") == "DROWSINESS");
    CHECK(entries[0].field("DMS_CONFIG_VERSION") == "fleet-3");
    CHECK(entries[0].field("DMS_LATENCY_MS") == "1234");
}

TEST_CASE("the snapshot sink keeps raises only, with their deciding sequence", "[dispatcher]") {
    dmsd::test::TempDir dir("dmsd-dispatch");
    SnapshotSettings settings;
    settings.enabled = true;
    settings.dir = (dir / "snaps").string();
    std::vector<JournalEntry> entries;
    Journal journal([&](const JournalEntry& e) { entries.push_back(e); });
    std::unique_ptr<SnapshotWriter> writer;
    AlertDispatcher dispatcher;
    dispatcher.add(std::make_unique<SnapshotAlertSink>(writer));

    std::vector<std::uint64_t> asked;
    AlertContext context;
    context.configVersion = "v1";
    context.decidingSequence = [&](std::uint64_t id) -> std::optional<DecidingSequence> {
        asked.push_back(id);
        return std::nullopt;
    };
    // No writer yet (snapshots disabled): nothing asked, nothing written.
    dispatcher.dispatch({event(AlertKind::Drowsiness)}, context);
    CHECK(asked.empty());

    writer = std::make_unique<SnapshotWriter>(settings, journal);
    dispatcher.dispatch({event(AlertKind::Drowsiness, AlertEvent::Type::Raised, 11),
                         event(AlertKind::PhoneUse, AlertEvent::Type::Cleared, 12),
                         event(AlertKind::Distraction, AlertEvent::Type::LevelChanged, 13)},
                        context);
    CHECK(asked == std::vector<std::uint64_t>{11});
    REQUIRE(writer->waitIdle(10s));
    CHECK(writer->stats().written == 1);
}
