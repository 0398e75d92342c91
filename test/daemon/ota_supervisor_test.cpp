// OtaSupervisor with a fake target and a fake clock: reloads applied, rejected,
// refused after a rollback; probation passed (last known good persisted) or
// failed (rollback with the reason). Real files, no processes.
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "config/loader.h"
#include "daemon/ota_supervisor.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

/// The daemon as the supervisor sees it: health set by the test, everything
/// the supervisor asks for recorded.
class FakeTarget final : public OtaTarget {
public:
    ConfigHealth healthNow{true, ""};
    struct Applied {
        std::string version;
        std::vector<ConfigPart> parts;
    };
    std::vector<Applied> applied;
    std::vector<std::string> calls; ///< reloading/reloaded/rejected/state, in order

    ConfigHealth health() const override { return healthNow; }
    void apply(const Config& next, const std::vector<ConfigPart>& parts) override {
        applied.push_back({next.version, parts});
        calls.push_back("apply " + next.version);
    }
    void reloading(const std::string& status) override { calls.push_back("reloading: " + status); }
    void reloaded() override { calls.push_back("reloaded"); }
    void rejected(const std::string& status) override { calls.push_back("rejected: " + status); }
    void configStateChanged() override { calls.push_back("state"); }

    void unusable(std::string problem) { healthNow = ConfigHealth{false, std::move(problem)}; }
    void healthy() { healthNow = ConfigHealth{true, ""}; }
};

struct Fixture {
    dmsd::test::TempDir dir{"dmsd-ota"};
    Clock::time_point now{std::chrono::hours(1)};
    std::vector<JournalEntry> journalEntries;
    Journal journal{[this](const JournalEntry& e) {
        journalEntries.push_back(e);
    }};
    FakeTarget target;
    std::unique_ptr<OtaSupervisor> ota;

    Fixture() {
        std::filesystem::create_directories(dir / "etc" / "conf.d");
        write("dmsd.yaml", "version: v1\n");
    }
    std::filesystem::path mainFile() const { return dir / "etc" / "dmsd.yaml"; }
    std::filesystem::path stateDir() const { return dir / "state"; }
    void write(const std::string& name, const std::string& text) {
        const auto path = name == "dmsd.yaml" ? mainFile() : dir / "etc" / "conf.d" / name;
        std::ofstream(path) << text;
    }
    /// The configuration the files say now (as `dmsd run` loads it at start).
    Config loaded() {
        ConfigLoad load = loadConfig(mainFile());
        REQUIRE(load.ok());
        return *load.config;
    }
    void startSupervisor() {
        OtaOptions options;
        options.configPath = mainFile();
        options.stateDir = stateDir();
        options.probation = 3s;
        ota = std::make_unique<OtaSupervisor>(loaded(), options, target, journal,
                                              [this] { return now; });
        ota->start();
    }
    /// Ticks every 200 ms of fake time for \a span, as the daemon's timer does.
    void run(std::chrono::milliseconds span) {
        for (auto left = span; left > 0ms; left -= 200ms) {
            now += 200ms;
            ota->tick();
        }
    }
    /// Starts and runs healthy through the first probation: v1 is the last good.
    void startHealthy() {
        startSupervisor();
        run(3200ms);
        REQUIRE_FALSE(ota->onProbation());
    }
    const JournalEntry* lastEvent(const std::string& event) const {
        for (auto it = journalEntries.rbegin(); it != journalEntries.rend(); ++it) {
            if (it->field("DMS_EVENT") == event) {
                return &*it;
            }
        }
        return nullptr;
    }
};

} // namespace

TEST_CASE("a configuration that runs healthy through probation becomes the last known good",
          "[ota]") {
    Fixture f;
    f.startSupervisor();
    CHECK(f.ota->onProbation());
    f.run(2800ms);
    CHECK(f.ota->onProbation());
    CHECK_FALSE(std::filesystem::exists(f.ota->lastGoodPath()));
    f.run(400ms);
    CHECK_FALSE(f.ota->onProbation());
    REQUIRE(f.ota->lastGood());
    CHECK(f.ota->lastGood()->version == "v1");
    // Persisted as a configuration file of its own, readable at the next start.
    const ConfigLoad saved = loadConfigFiles({f.ota->lastGoodPath()});
    REQUIRE(saved.ok());
    CHECK(saved.config->version == "v1");
    CHECK(*saved.config == f.ota->running());
    // Nothing but time passed: nothing was applied, nothing rolled back.
    CHECK(f.target.applied.empty());
    CHECK(f.ota->counters().rollbacks == 0);
}

TEST_CASE("an unusable configuration after a healthy one is rolled back, saying why", "[ota]") {
    Fixture f;
    f.startHealthy();
    f.write("50-model.yaml", "version: v2\nalerts:\n  drowsiness: { raise_after: 4s }\n");
    CHECK(f.ota->reload("SIGHUP").empty());
    CHECK(f.ota->running().version == "v2");
    REQUIRE(f.target.applied.size() == 1);
    CHECK(f.target.applied[0].version == "v2");
    CHECK(f.target.applied[0].parts == std::vector<ConfigPart>{ConfigPart::Alerts});
    CHECK(f.target.calls == std::vector<std::string>{"reloading: applying configuration v2 "
                                                     "(SIGHUP)",
                                                     "apply v2", "state", "reloaded"});
    REQUIRE(f.lastEvent("config_applied"));
    CHECK(f.lastEvent("config_applied")->field("DMS_CHANGED") == "alerts");
    CHECK(f.ota->counters().reloadsApplied == 1);

    f.target.unusable("model server unusable (cannot reach http://127.0.0.1:9)");
    f.run(2800ms);
    CHECK(f.ota->running().version == "v2"); // not yet: probation is 3 s
    f.run(400ms);
    CHECK(f.ota->running().version == "v1");
    REQUIRE(f.target.applied.size() == 2);
    CHECK(f.target.applied[1].version == "v1");
    CHECK(f.target.applied[1].parts == std::vector<ConfigPart>{ConfigPart::Alerts});
    CHECK(f.ota->counters().rollbacks == 1);
    CHECK(f.ota->configError() == "configuration v2 rolled back to v1: model server unusable "
                                  "(cannot reach http://127.0.0.1:9) for 3 s");
    const JournalEntry* entry = f.lastEvent("config_rolled_back");
    REQUIRE(entry);
    CHECK(entry->field("DMS_CONFIG_VERSION") == "v1");
    CHECK(entry->field("DMS_FAILED_CONFIG_VERSION") == "v2");
    CHECK(entry->field("DMS_REASON") ==
          "model server unusable (cannot reach http://127.0.0.1:9) for 3 s");
    // The configuration rolled back to is the known good one: no new probation.
    CHECK_FALSE(f.ota->onProbation());
}

TEST_CASE("a configuration restored by rollback becomes the last known good after its "
          "probation, and the next bad update returns to it",
          "[ota]") {
    Fixture f;
    f.startHealthy(); // v1: last good
    // good: v2 runs healthy, but a bad update arrives before its probation ends.
    f.write("50-a.yaml", "version: v2\nalerts:\n  drowsiness: { raise_after: 4s }\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    f.run(1000ms);
    REQUIRE(f.ota->lastGood()->version == "v1");
    // bad: v3 -> rolled back to v2, its healthy predecessor.
    f.write("60-b.yaml", "version: v3\nalerts:\n  drowsiness: { raise_after: 5s }\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    f.target.unusable("model server unusable (cannot reach http://127.0.0.1:9)");
    f.run(3200ms);
    REQUIRE(f.ota->running().version == "v2");
    f.target.healthy();
    // v2 is on probation again and, having run healthy through it, is the last good.
    CHECK(f.ota->onProbation());
    f.run(3200ms);
    CHECK_FALSE(f.ota->onProbation());
    REQUIRE(f.ota->lastGood());
    CHECK(f.ota->lastGood()->version == "v2");
    const ConfigLoad saved = loadConfigFiles({f.ota->lastGoodPath()});
    REQUIRE(saved.ok());
    CHECK(saved.config->version == "v2");
    // bad again: v4 arrives while v2 is briefly unusable, so it is judged against
    // the last known good, which must be v2 (not the older v1).
    f.target.unusable("camera v4l2:/dev/video9 unusable (no such device)");
    f.write("60-b.yaml", "version: v4\nalerts:\n  drowsiness: { raise_after: 6s }\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    REQUIRE(f.ota->running().version == "v4");
    f.run(3200ms);
    CHECK(f.ota->running().version == "v2");
    CHECK(f.target.applied.back().version == "v2");
    CHECK(f.ota->counters().rollbacks == 2);
    CHECK_THAT(f.ota->configError(), Catch::StartsWith("configuration v4 rolled back to v2: "));
    // Restored to the last known good itself: nothing left on probation.
    CHECK_FALSE(f.ota->onProbation());
}

TEST_CASE("an unusable spell shorter than probation is forgiven", "[ota]") {
    Fixture f;
    f.startHealthy();
    f.write("50-a.yaml", "version: v2\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    f.target.unusable("camera file:/x.mp4 unusable (no frames)");
    f.run(2000ms);
    f.target.healthy();
    f.run(400ms);
    f.target.unusable("camera file:/x.mp4 unusable (no frames)");
    f.run(2000ms);
    CHECK(f.ota->running().version == "v2");
    f.target.healthy();
    // Healthy again, more than probation after the reload, and never unusable
    // for probation at a stretch: it passes.
    f.run(200ms);
    CHECK_FALSE(f.ota->onProbation());
    CHECK(f.ota->lastGood()->version == "v2");
    CHECK(f.ota->counters().rollbacks == 0);
}

TEST_CASE("a rejected configuration leaves the running one in force and says where", "[ota]") {
    Fixture f;
    f.startHealthy();
    f.write("60-bad.yaml", "version: v-bad\nsampling:\n  frames_per_sequence: 1\n");
    const std::string error = f.ota->reload("D-Bus Reload");
    CHECK_THAT(error, Catch::Contains("60-bad.yaml:3"));
    CHECK_THAT(error, Catch::Contains("sampling.frames_per_sequence"));
    CHECK(f.ota->configError() == error);
    CHECK(f.ota->running().version == "v1");
    CHECK(f.target.applied.empty());
    CHECK(f.ota->counters().reloadsRejected == 1);
    CHECK(f.target.calls ==
          std::vector<std::string>{"state", "rejected: configuration rejected (D-Bus Reload); "
                                            "still running v1"});
    const JournalEntry* entry = f.lastEvent("config_rejected");
    REQUIRE(entry);
    CHECK_THAT(*entry->field("DMS_CONFIG_SOURCE"), Catch::EndsWith("60-bad.yaml"));
    CHECK(entry->field("DMS_CONFIG_VERSION") == "v1");

    // Reloading the same, unchanged files: nothing changed, and the error is cleared.
    std::filesystem::remove(f.dir / "etc" / "conf.d" / "60-bad.yaml");
    CHECK(f.ota->reload("SIGHUP").empty());
    CHECK(f.ota->configError().empty());
    CHECK(f.target.applied.empty());
    CHECK(f.ota->counters().reloadsApplied == 0);
}

TEST_CASE("a rolled-back configuration is refused until a new file arrives", "[ota]") {
    Fixture f;
    f.startHealthy();
    f.write("90-dead.yaml", "version: v-dead\nllm:\n  url: \"http://127.0.0.1:9\"\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    f.target.unusable("model server unusable (cannot reach http://127.0.0.1:9)");
    f.run(3200ms);
    REQUIRE(f.ota->running().version == "v1");
    f.target.healthy();

    const std::size_t applies = f.target.applied.size();
    const std::string refused = f.ota->reload("SIGHUP");
    CHECK_THAT(refused, Catch::Contains("configuration v-dead was rolled back"));
    CHECK_THAT(refused, Catch::Contains("until a new file arrives"));
    CHECK(f.target.applied.size() == applies);
    CHECK(f.ota->running().version == "v1");

    f.write("90-dead.yaml", "version: v3\n");
    CHECK(f.ota->reload("SIGHUP").empty());
    CHECK(f.ota->running().version == "v3");
    CHECK(f.target.applied.back().version == "v3");
    CHECK(f.ota->configError().empty());
}

TEST_CASE("a reload while unhealthy is judged against the last known good", "[ota]") {
    Fixture f;
    f.startHealthy(); // v1: last good
    f.write("50-a.yaml", "version: v2\nalerts:\n  drowsiness: { raise_after: 4s }\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    f.target.unusable("camera v4l2:/dev/video9 unusable (no such device)");
    f.run(1000ms);
    // v3 arrives while v2 is unhealthy: if v3 fails too, back to v1, not to v2.
    f.write("50-a.yaml", "version: v3\nalerts:\n  drowsiness: { raise_after: 5s }\n");
    REQUIRE(f.ota->reload("SIGHUP").empty());
    CHECK(f.ota->running().version == "v3");
    f.run(3200ms);
    CHECK(f.ota->running().version == "v1");
    CHECK(f.target.applied.back().version == "v1");
    CHECK_THAT(f.ota->configError(), Catch::StartsWith("configuration v3 rolled back to v1: "
                                                       "camera v4l2:/dev/video9 unusable"));
}

TEST_CASE("without a healthy predecessor nothing is rolled back", "[ota]") {
    Fixture f;
    f.startSupervisor(); // no last good: v1 is on probation against nothing healthy
    f.target.unusable("model server unusable (cannot reach http://127.0.0.1:9)");
    f.run(10s);
    CHECK(f.ota->running().version == "v1");
    CHECK(f.target.applied.empty());
    CHECK(f.ota->onProbation());
    CHECK_FALSE(f.ota->lastGood());
}

TEST_CASE("a configuration changed while the daemon was down is on probation against the "
          "persisted last good",
          "[ota]") {
    Fixture f;
    f.startHealthy(); // v1 persisted
    f.write("dmsd.yaml", "version: v2\nalerts:\n  drowsiness: { raise_after: 4s }\n");
    f.startSupervisor(); // the restart, with v2 in the files
    CHECK(f.ota->running().version == "v2");
    REQUIRE(f.ota->lastGood());
    CHECK(f.ota->lastGood()->version == "v1");
    CHECK(f.ota->onProbation());
    f.target.unusable("model server unusable (cannot reach http://127.0.0.1:9)");
    f.run(3200ms);
    CHECK(f.ota->running().version == "v1");
    CHECK(f.ota->counters().rollbacks == 1);
}

TEST_CASE("a last good file that does not load is ignored", "[ota]") {
    Fixture f;
    std::filesystem::create_directories(f.stateDir());
    std::ofstream(f.stateDir() / "last-good.yaml") << "version: [\n";
    f.startSupervisor();
    CHECK_FALSE(f.ota->lastGood());
    CHECK(f.ota->onProbation());
}
