#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "base/log.h"
#include "notify/journal.h"
#include "test/support/log_line.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;
using log::Priority;
namespace fs = std::filesystem;

namespace {

struct Capture {
    std::vector<JournalEntry> entries;
    std::chrono::steady_clock::time_point now{std::chrono::hours(1000)};

    Journal journal(FaultRatePolicy policy = FaultRatePolicy{}) {
        return Journal([this](const JournalEntry& e) { entries.push_back(e); },
                       [this] { return now; }, policy);
    }
};

AlertEvent alertEvent(AlertEvent::Type type, AlertLevel level) {
    AlertEvent event;
    event.type = type;
    event.kind = AlertKind::Drowsiness;
    event.level = level;
    event.confidence = 0.834;
    event.sequenceId = 42;
    event.at = 12000ms;
    event.evidence = boost::json::parse(
                         R"({"face_state":{"state":"SLEEPY","eyes_closed":true,"confidence":0.9}})")
                         .as_object();
    return event;
}

std::string readFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// `journalctl -p warning` shows priorities 0..4.
bool shownAtWarning(Priority priority) {
    return static_cast<int>(priority) <= static_cast<int>(Priority::Warning);
}

} // namespace

TEST_CASE("alert raised: short MESSAGE, detail in DMS_ fields, warning priority", "[journal]") {
    Capture capture;
    Journal journal = capture.journal();
    journal.alert(alertEvent(AlertEvent::Type::Raised, AlertLevel::Warning),
                  {"factory-1", 812ms, std::nullopt});
    REQUIRE(capture.entries.size() == 1);
    const JournalEntry& entry = capture.entries[0];
    CHECK(entry.priority == Priority::Warning);
    CHECK(entry.messageId == message_id::kAlertRaised);
    CHECK(entry.message == "DROWSINESS alert raised (warning, confidence 0.83)");
    CHECK(entry.field("DMS_ALERT_KIND") == "DROWSINESS");
    CHECK(entry.field("DMS_ALERT_LEVEL") == "warning");
    CHECK(entry.field("DMS_CONFIDENCE") == "0.83");
    CHECK(entry.field("DMS_SEQUENCE_ID") == "42");
    CHECK(entry.field("DMS_LATENCY_MS") == "812");
    CHECK(entry.field("DMS_CONFIG_VERSION") == "factory-1");
    CHECK(entry.field("DMS_EVENT") == "alert_raised");
    // One compact line with plain decimals (base/json.h).
    CHECK(entry.field("DMS_EVIDENCE") ==
          R"({"face_state":{"state":"SLEEPY","eyes_closed":true,"confidence":0.9}})");
    CHECK(entry.message.find('{') == std::string::npos); // evidence stays out of MESSAGE
    for (const auto& [name, value] : entry.fields) {
        CHECK(name.rfind("DMS_", 0) == 0);
        CHECK(std::all_of(name.begin(), name.end(), [](char c) {
            return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        }));
        CHECK(name.size() <= 64);
    }
}

TEST_CASE("alert priorities: critical at crit, escalation at crit, clear at notice", "[journal]") {
    Capture capture;
    Journal journal = capture.journal();
    journal.alert(alertEvent(AlertEvent::Type::Raised, AlertLevel::Critical), {"v", {}, {}});
    journal.alert(alertEvent(AlertEvent::Type::LevelChanged, AlertLevel::Critical), {"v", {}, {}});
    journal.alert(alertEvent(AlertEvent::Type::LevelChanged, AlertLevel::Warning), {"v", {}, {}});
    journal.alert(alertEvent(AlertEvent::Type::Raised, AlertLevel::Info), {"v", {}, {}});
    journal.alert(alertEvent(AlertEvent::Type::Cleared, AlertLevel::Cleared),
                  {"v", std::nullopt, 45000ms});
    REQUIRE(capture.entries.size() == 5);
    CHECK(capture.entries[0].priority == Priority::Crit);
    CHECK(capture.entries[1].priority == Priority::Crit);
    CHECK(capture.entries[1].messageId == message_id::kAlertLevelChanged);
    CHECK(capture.entries[1].message == "DROWSINESS alert escalated to critical (confidence 0.83)");
    CHECK(capture.entries[2].priority == Priority::Warning);
    CHECK(capture.entries[3].priority == Priority::Notice);
    const JournalEntry& cleared = capture.entries[4];
    CHECK(cleared.priority == Priority::Notice);
    CHECK(cleared.messageId == message_id::kAlertCleared);
    CHECK(cleared.message == "DROWSINESS alert cleared");
    CHECK(cleared.field("DMS_ALERT_LEVEL") == "cleared");
    CHECK(cleared.field("DMS_ALERT_DURATION_MS") == "45000");
    CHECK_FALSE(cleared.field("DMS_LATENCY_MS").has_value());
}

TEST_CASE("what `journalctl -p warning` shows is what a technician must act on", "[journal]") {
    Capture capture;
    Journal journal = capture.journal();
    journal.alert(alertEvent(AlertEvent::Type::Raised, AlertLevel::Warning), {"v", {}, {}});
    journal.configRejected("/etc/dmsd/conf.d/50-ota.yaml:3", "unknown key 'captur'", "factory-1");
    journal.configRolledBack("factory-1", "ota-7", "camera unusable for 30 s");
    journal.cameraFault("v4l2:/dev/video0", "no frames for 3 s");
    journal.analyzerFault("http://127.0.0.1:11434", "connection refused");
    journal.canFault("can0", "bus-off");
    journal.snapshotFailed("/var/lib/dmsd/snapshots", "No space left on device");
    const std::size_t mustShow = capture.entries.size();
    journal.alert(alertEvent(AlertEvent::Type::Cleared, AlertLevel::Cleared), {"v", {}, {}});
    journal.configApplied("ota-8", "factory-1", "llm");
    journal.cameraRecovered("v4l2:/dev/video0", 5000ms);
    journal.analyzerRecovered("http://127.0.0.1:11434", std::nullopt);
    journal.canRecovered("can0");
    journal.daemonStarted("0.1.0", "factory-1", "v4l2:/dev/video0", "llava:7b",
                          "http://127.0.0.1:11434");
    journal.daemonStopping("SIGTERM");
    REQUIRE(capture.entries.size() == mustShow + 7);
    for (std::size_t i = 0; i < capture.entries.size(); ++i) {
        INFO(capture.entries[i].message);
        CHECK(shownAtWarning(capture.entries[i].priority) == (i < mustShow));
        CHECK(capture.entries[i].messageId.size() == 32);
    }
    CHECK(capture.entries[1].priority == Priority::Err);
    CHECK(capture.entries[1].field("DMS_CONFIG_SOURCE") == "/etc/dmsd/conf.d/50-ota.yaml:3");
    CHECK(capture.entries[1].field("DMS_CONFIG_VERSION") == "factory-1");
    CHECK(capture.entries[2].field("DMS_FAILED_CONFIG_VERSION") == "ota-7");
    CHECK(capture.entries[3].field("DMS_CAMERA") == "v4l2:/dev/video0");
    CHECK(capture.entries[4].field("DMS_MODEL_URL") == "http://127.0.0.1:11434");
    CHECK(capture.entries[mustShow + 1].field("DMS_CONFIG_VERSION") == "ota-8");
    CHECK(capture.entries[mustShow + 2].field("DMS_OUTAGE_MS") == "5000");
}

TEST_CASE("MESSAGE_IDs are distinct id128s documented in the catalog and operations.md",
          "[journal]") {
    const std::vector<std::string_view> ids = {
        message_id::kAlertRaised,    message_id::kAlertLevelChanged,
        message_id::kAlertCleared,   message_id::kConfigApplied,
        message_id::kConfigRejected, message_id::kConfigRolledBack,
        message_id::kCameraFault,    message_id::kCameraRecovered,
        message_id::kAnalyzerFault,  message_id::kAnalyzerRecovered,
        message_id::kDaemonStarted,  message_id::kDaemonStopping,
        message_id::kCanFault,       message_id::kCanRecovered,
        message_id::kSnapshotFailed, message_id::kSuppressed,
    };
    const std::string catalog = readFile(std::string(DMSD_SOURCE_DIR) + "/systemd/dmsd.catalog");
    const std::string operations = readFile(std::string(DMSD_SOURCE_DIR) + "/docs/operations.md");
    REQUIRE_FALSE(catalog.empty());
    std::set<std::string_view> distinct(ids.begin(), ids.end());
    CHECK(distinct.size() == ids.size());
    for (std::string_view id : ids) {
        INFO(id);
        CHECK(id.size() == 32);
        CHECK(std::all_of(id.begin(), id.end(),
                          [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }));
        CHECK(catalog.find("-- " + std::string(id) + "\n") != std::string::npos);
        CHECK(operations.find(std::string(id)) != std::string::npos);
    }
}

TEST_CASE("rate limiter: a dead camera writes one entry and periodic summaries",
          "[journal][ratelimit]") {
    Capture capture;
    Journal journal = capture.journal({30s, 60s});
    // One fault report per second for 150 s.
    for (int second = 0; second < 150; ++second) {
        journal.cameraFault("v4l2:/dev/video0", "no frames");
        capture.now += 1s;
    }
    REQUIRE(capture.entries.size() == 3);
    CHECK(capture.entries[0].messageId == message_id::kCameraFault);
    CHECK(capture.entries[0].message == "Camera fault on v4l2:/dev/video0: no frames");
    // Periodic summaries while the burst goes on, at the fault's own priority.
    for (int i : {1, 2}) {
        const JournalEntry& summary = capture.entries[static_cast<std::size_t>(i)];
        CHECK(summary.messageId == message_id::kSuppressed);
        CHECK(summary.priority == Priority::Err);
        CHECK(summary.field("DMS_SUPPRESSED_MESSAGE_ID") == std::string(message_id::kCameraFault));
        CHECK(summary.field("DMS_CAMERA") == "v4l2:/dev/video0");
        CHECK(summary.field("DMS_BURST_ENDED") == "0");
    }
    // t=1..59 s, then t=60..119 s; the report at t=60 s itself opens the second period.
    CHECK(capture.entries[1].field("DMS_SUPPRESSED_COUNT") == "59");
    CHECK(capture.entries[2].field("DMS_SUPPRESSED_COUNT") == "60");
    CHECK(capture.entries[1].message.find("59 more \"Camera fault on v4l2:/dev/video0: no "
                                          "frames\" suppressed") == 0);

    // The burst ends: nothing until quiet has passed, then the rest is summed up once.
    capture.now += 10s;
    journal.flushSuppressed();
    CHECK(capture.entries.size() == 3);
    capture.now += 25s;
    journal.flushSuppressed();
    REQUIRE(capture.entries.size() == 4);
    CHECK(capture.entries[3].field("DMS_SUPPRESSED_COUNT") == "30");
    CHECK(capture.entries[3].field("DMS_BURST_ENDED") == "1");
    journal.flushSuppressed();
    CHECK(capture.entries.size() == 4);

    // A new burst starts with a full entry again.
    journal.cameraFault("v4l2:/dev/video0", "no frames");
    REQUIRE(capture.entries.size() == 5);
    CHECK(capture.entries[4].messageId == message_id::kCameraFault);
}

TEST_CASE("rate limiter: different faults are separate, recovery closes the burst",
          "[journal][ratelimit]") {
    Capture capture;
    Journal journal = capture.journal({30s, 60s});
    for (int i = 0; i < 5; ++i) {
        journal.cameraFault("v4l2:/dev/video0", "no frames");
        journal.cameraFault("v4l2:/dev/video0", "device unplugged");
        journal.analyzerFault("http://127.0.0.1:11434", "timeout");
        capture.now += 1s;
    }
    CHECK(capture.entries.size() == 3);
    journal.cameraRecovered("v4l2:/dev/video0", 5000ms);
    // Two camera summaries (4 each), then the recovery with the total.
    REQUIRE(capture.entries.size() == 6);
    CHECK(capture.entries[3].messageId == message_id::kSuppressed);
    CHECK(capture.entries[4].messageId == message_id::kSuppressed);
    CHECK(capture.entries[3].field("DMS_SUPPRESSED_COUNT") == "4");
    CHECK(capture.entries[5].messageId == message_id::kCameraRecovered);
    CHECK(capture.entries[5].field("DMS_SUPPRESSED_COUNT") == "8");
    // The analyzer burst is untouched: its next repeat is still suppressed.
    journal.analyzerFault("http://127.0.0.1:11434", "timeout");
    CHECK(capture.entries.size() == 6);
    // Stopping writes what was still counted.
    journal.daemonStopping("SIGTERM");
    REQUIRE(capture.entries.size() == 8);
    CHECK(capture.entries[6].field("DMS_SUPPRESSED_COUNT") == "5");
    CHECK(capture.entries[7].messageId == message_id::kDaemonStopping);
}

TEST_CASE("FaultRateLimiter alone: admit, collect, end", "[journal][ratelimit]") {
    FaultRateLimiter limiter({10s, 20s});
    const auto t0 = std::chrono::steady_clock::time_point(std::chrono::hours(1));
    std::vector<FaultRateLimiter::Summary> due;
    JournalEntry entry;
    entry.message = "x";
    CHECK(limiter.admit("a", entry, t0, due));
    CHECK_FALSE(limiter.admit("a", entry, t0 + 1s, due));
    CHECK(limiter.admit("b", entry, t0 + 1s, due));
    CHECK(limiter.tracked() == 2);
    limiter.collect(t0 + 11s, due); // "a" quiet for 10 s, "b" too: "a" had a repeat
    REQUIRE(due.size() == 1);
    CHECK(due[0].suppressed == 1);
    CHECK(due[0].burstEnded);
    CHECK(limiter.tracked() == 0);
    due.clear();
    CHECK(limiter.admit("a", entry, t0 + 12s, due));
    CHECK(limiter.end("a", t0 + 13s, due) == 0);
    CHECK(due.empty());
}

TEST_CASE("default sink writes through dmsd::log (stderr backend shows the fields)", "[journal]") {
    test::TempDir dir("dmsd-journal");
    const std::string path = (dir / "stderr.txt").string();
    std::fflush(stderr);
    const int saved = ::dup(STDERR_FILENO);
    REQUIRE(saved >= 0);
    std::FILE* file = std::fopen(path.c_str(), "w");
    REQUIRE(file != nullptr);
    ::dup2(::fileno(file), STDERR_FILENO);
    log::configure(log::Backend::Stderr, Priority::Info);
    Journal journal;
    journal.canFault("can0", "bus-off");
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::fclose(file);
    const std::string text = readFile(path);
    CHECK(text.find("error: CAN fault on can0: bus-off") != std::string::npos);
    CHECK(text.find("DMS_CAN_INTERFACE=can0") != std::string::npos);
}

TEST_CASE("systemd/dmsd.catalog compiles with journalctl and lists every id", "[journal]") {
    if (std::system("command -v journalctl >/dev/null 2>&1") != 0) {
        WARN("journalctl not installed: catalog not compiled");
        return;
    }
    test::TempDir root("dmsd-catalog");
    const fs::path catalogDir = root / "usr/lib/systemd/catalog";
    fs::create_directories(catalogDir);
    fs::create_directories(root / "var/lib/systemd/catalog");
    fs::copy_file(std::string(DMSD_SOURCE_DIR) + "/systemd/dmsd.catalog",
                  catalogDir / "dmsd.catalog");
    const std::string base = "journalctl --root='" + root.path().string() + "' ";
    REQUIRE(std::system((base + "--update-catalog 2>&1").c_str()) == 0);
    const fs::path listed = root / "list.txt";
    REQUIRE(std::system((base + "--list-catalog > '" + listed.string() + "'").c_str()) == 0);
    const std::string text = readFile(listed.string());
    for (std::string_view id : {message_id::kAlertRaised, message_id::kConfigRejected,
                                message_id::kCameraFault, message_id::kSuppressed}) {
        CHECK(text.find(std::string(id) + " dmsd: ") != std::string::npos);
    }
    CHECK(std::count(text.begin(), text.end(), '\n') == 16);
}

namespace {

/// `CODE_LINE` of the line after the one calling this (where a Journal call follows).
unsigned nextLine(log::SourceLocation where = log::SourceLocation::current()) {
    return where.line() + 1;
}

/// Field names and values of an entry, in order.
std::vector<std::pair<std::string, std::string>> fieldsOf(const JournalEntry& entry) {
    return entry.fields;
}

} // namespace

TEST_CASE("a camera blip is one fault entry and one recovery, field by field", "[journal]") {
    Capture capture;
    Journal journal = capture.journal();
    const unsigned faultLine = nextLine();
    journal.cameraFault("file:/data/driver.mp4", "file:/data/driver.mp4: end of stream");
    capture.now += 600ms;
    const unsigned recoveredLine = nextLine();
    journal.cameraRecovered("file:/data/driver.mp4", 600ms);
    REQUIRE(capture.entries.size() == 2);

    const JournalEntry& fault = capture.entries[0];
    CHECK(fault.priority == Priority::Err);
    CHECK(fault.messageId == message_id::kCameraFault);
    CHECK(fault.message ==
          "Camera fault on file:/data/driver.mp4: file:/data/driver.mp4: end of stream");
    using Fields = std::vector<std::pair<std::string, std::string>>;
    CHECK(fieldsOf(fault) == Fields{{"DMS_EVENT", "camera_fault"},
                                    {"DMS_CAMERA", "file:/data/driver.mp4"},
                                    {"DMS_REASON", "file:/data/driver.mp4: end of stream"}});
    // The call site, not the journal's own code.
    CHECK(log::sourcePath(fault.where.file_name()) == "test/notify/journal_test.cpp");
    CHECK(fault.where.line() == faultLine);

    const JournalEntry& recovered = capture.entries[1];
    CHECK(recovered.priority == Priority::Notice);
    CHECK(recovered.messageId == message_id::kCameraRecovered);
    CHECK(recovered.message == "Camera file:/data/driver.mp4 recovered after 0.6 s");
    CHECK(fieldsOf(recovered) == Fields{{"DMS_EVENT", "camera_recovered"},
                                        {"DMS_CAMERA", "file:/data/driver.mp4"},
                                        {"DMS_OUTAGE_MS", "600"},
                                        {"DMS_SUPPRESSED_COUNT", "0"}});
    CHECK(recovered.where.line() == recoveredLine);
}

TEST_CASE("a stop is one entry, and it writes what was still counted", "[journal]") {
    Capture capture;
    Journal journal = capture.journal();
    journal.analyzerFault("http://127.0.0.1:11434", "connection refused");
    journal.analyzerFault("http://127.0.0.1:11434", "connection refused");
    capture.entries.clear();
    journal.daemonStopping("SIGTERM");
    REQUIRE(capture.entries.size() == 2);
    CHECK(capture.entries[0].messageId == message_id::kSuppressed);
    CHECK(capture.entries[0].field("DMS_SUPPRESSED_COUNT") == "1");
    const JournalEntry& stop = capture.entries[1];
    CHECK(stop.priority == Priority::Notice);
    CHECK(stop.messageId == message_id::kDaemonStopping);
    CHECK(stop.message == "dmsd stopping: SIGTERM");
    CHECK(fieldsOf(stop) == std::vector<std::pair<std::string, std::string>>{
                                {"DMS_EVENT", "daemon_stopping"}, {"DMS_REASON", "SIGTERM"}});

    capture.entries.clear();
    journal.daemonStopping("SIGINT");
    CHECK(capture.entries.size() == 1); // nothing left to sum up
}

TEST_CASE("journal fields: the caller's CODE_FILE relative to the tree, CODE_LINE, CODE_FUNC",
          "[journal][log]") {
    const std::vector<log::Field> fields{{"DMS_EVENT", "camera_fault"}, {"DMS_CAMERA", "v4l2:/x"}};
    const auto where = log::SourceLocation::current();
    const std::vector<std::string> sent =
        log::journalFields(Priority::Err, "Camera fault", message_id::kCameraFault, fields, where);
    CHECK(sent == std::vector<std::string>{
                      "MESSAGE=Camera fault",
                      "PRIORITY=3",
                      "SYSLOG_IDENTIFIER=dmsd",
                      "MESSAGE_ID=" + std::string(message_id::kCameraFault),
                      "CODE_FILE=test/notify/journal_test.cpp",
                      "CODE_LINE=" + std::to_string(where.line()),
                      "CODE_FUNC=" + std::string(log::codeFunction(where.function_name())),
                      "DMS_EVENT=camera_fault",
                      "DMS_CAMERA=v4l2:/x",
                  });
    CHECK(log::codeFunction("void dmsd::Daemon::shutdown(const std::string&)") ==
          "dmsd::Daemon::shutdown");
    CHECK(log::codeFunction("int main()") == "main");
    // A path the build did not map is outside the tree: not reported.
    CHECK(log::sourcePath("/home/someone/dmsd/base/log.cpp").empty());
    CHECK(log::sourcePath("notify/journal.cpp") == "notify/journal.cpp");
}

TEST_CASE("stderr lines read back field by field, whatever the values hold", "[journal][log]") {
    const std::vector<log::Field> fields{
        {"DMS_EVENT", "alert_raised"},
        {"DMS_REASON", "no frame for 3 s"},
        {"DMS_EVIDENCE", R"({"general_scene":{"description":"a \"tired\" driver\\"}})"},
        {"DMS_EMPTY", ""},
        {"DMS_MULTILINE", "one\ntwo\tthree"},
    };
    const auto where = log::SourceLocation::current();
    const std::string line = log::stderrLine(Priority::Warning, "DROWSINESS alert raised (x=1)",
                                             message_id::kAlertRaised, fields, where, true);
    CHECK(line.find('\n') == std::string::npos);
    const auto parsed = test::parseLogLine(line);
    REQUIRE(parsed);
    CHECK(parsed->label == "warning");
    CHECK(parsed->message == "DROWSINESS alert raised (x=1)");
    CHECK(parsed->field("MESSAGE_ID") == std::string(message_id::kAlertRaised));
    for (const log::Field& field : fields) {
        INFO(field.name);
        CHECK(parsed->field(std::string(field.name)) == field.value);
    }
    CHECK(parsed->field("PRIORITY") == "4");
    CHECK(parsed->field("CODE_FILE") == "test/notify/journal_test.cpp");
    CHECK(parsed->field("CODE_LINE") == std::to_string(where.line()));
    // Without the location (not --verbose) the line stops at the entry's own fields.
    const auto plain = test::parseLogLine(
        log::stderrLine(Priority::Notice, "dmsd stopping: SIGTERM", {}, fields, where, false));
    REQUIRE(plain);
    CHECK(plain->label.empty());
    CHECK_FALSE(plain->field("CODE_FILE"));
    CHECK(plain->order.size() == fields.size());
}

TEST_CASE("log level: entries below it are not written, and it can change while running",
          "[journal][log]") {
    test::TempDir dir("dmsd-journal");
    const std::string path = (dir / "stderr.txt").string();
    std::fflush(stderr);
    const int saved = ::dup(STDERR_FILENO);
    REQUIRE(saved >= 0);
    std::FILE* file = std::fopen(path.c_str(), "w");
    REQUIRE(file != nullptr);
    ::dup2(::fileno(file), STDERR_FILENO);
    log::configure(log::Backend::Stderr, Priority::Warning);
    log::info("not written {}", 1);
    log::warning("written {}", 2);
    log::setLevel(Priority::Debug);
    CHECK(log::level() == Priority::Debug);
    log::debug("written {}", 3);
    log::setLevel(Priority::Err);
    log::warning("not written {}", 4);
    log::configure(log::Backend::Stderr, Priority::Info);
    std::fflush(stderr);
    ::dup2(saved, STDERR_FILENO);
    ::close(saved);
    std::fclose(file);
    const auto lines = test::parseLogLines(readFile(path));
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].label == "warning");
    CHECK(lines[0].message == "written 2");
    CHECK(lines[1].label == "debug");
    CHECK(lines[1].message == "written 3");
}

TEST_CASE("every DMS_ field the program writes is documented, and no other prefix is used",
          "[journal][docs]") {
    const std::string operations = readFile(std::string(DMSD_SOURCE_DIR) + "/docs/operations.md");
    const std::string catalog = readFile(std::string(DMSD_SOURCE_DIR) + "/systemd/dmsd.catalog");
    const std::size_t table = operations.find("### Fields");
    REQUIRE(table != std::string::npos);
    const std::string fieldsTable = operations.substr(table);
    std::set<std::string> written;
    for (const char* module : {"base", "pipeline", "vision", "llm", "alerts", "notify", "config",
                               "daemon", "batch", "report", "cli"}) {
        for (const auto& entry :
             fs::recursive_directory_iterator(fs::path(DMSD_SOURCE_DIR) / module)) {
            const std::string ext = entry.path().extension().string();
            if (ext != ".cpp" && ext != ".h") {
                continue;
            }
            const std::string text = readFile(entry.path().string());
            INFO(entry.path().string());
            // The old prefix, as a field ({"DMSD_X", value}); environment
            // variables such as DMSD_SHARD_COUNT (batch/shard.h) are not fields.
            CHECK(text.find("{\"DMSD_") == std::string::npos);
            for (std::size_t at = text.find("\"DMS_"); at != std::string::npos;
                 at = text.find("\"DMS_", at + 1)) {
                std::size_t end = at + 1;
                while (end < text.size() &&
                       (std::isupper(static_cast<unsigned char>(text[end])) ||
                        std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '_')) {
                    ++end;
                }
                written.insert(text.substr(at + 1, end - at - 1));
            }
        }
    }
    CHECK(written.size() > 25);
    for (const std::string& name : written) {
        INFO(name);
        CHECK(fieldsTable.find("`" + name + "`") != std::string::npos);
    }
    // The catalog names only fields that exist.
    for (std::size_t at = catalog.find("DMS_"); at != std::string::npos;
         at = catalog.find("DMS_", at + 1)) {
        std::size_t end = at;
        while (end < catalog.size() &&
               (std::isupper(static_cast<unsigned char>(catalog[end])) || catalog[end] == '_')) {
            ++end;
        }
        const std::string name = catalog.substr(at, end - at);
        INFO(name);
        CHECK(written.contains(name));
    }
}
