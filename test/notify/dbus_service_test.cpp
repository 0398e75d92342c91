// DbusService against real processes: a private dbus-daemon as the bus and
// busctl (call, get-property, introspect, monitor) as the client.

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>
#include <boost/property_tree/ptree.hpp>
#include <boost/property_tree/xml_parser.hpp>
#include <catch2/catch.hpp>

#include "base/clock.h"
#include "notify/dbus_service.h"
#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;
using dmsd::test::ChildProcess;
using dmsd::test::runCommand;
using dmsd::test::TempDir;
using dmsd::test::waitUntil;

namespace {

const std::string kName(dmsd::kDbusServiceName);
const std::string kPath(dmsd::kDbusObjectPath);
const std::string kIface(dmsd::kDbusInterface);
const std::filesystem::path kSourceDir = DMSD_SOURCE_DIR;

// The default policy of Debian's /usr/share/dbus-1/system.conf: deny owning and
// method calls unless a service's policy file opens them.
constexpr const char* kSystemDefaultPolicy = R"(
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Peer"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>)";

constexpr const char* kSessionPolicy = R"(
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>)";

/// A private dbus-daemon listening on a unix socket in its own directory.
class PrivateBus {
public:
    /// \a systemLike: the system bus's default policy plus \a includes; else a
    /// permissive session-like bus.
    explicit PrivateBus(bool systemLike = false, std::vector<std::filesystem::path> includes = {})
        : dir_("dmsd-dbus") {
        // Readable by others, so that tests can connect as an unprivileged user.
        ::chmod(dir_.path().c_str(), 0755);
        std::ofstream config(configPath());
        config << "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration "
                  "1.0//EN\" \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
               << "<busconfig>\n  <type>" << (systemLike ? "system" : "session") << "</type>\n"
               << "  <listen>" << address() << "</listen>\n  <auth>EXTERNAL</auth>\n"
               << (systemLike ? kSystemDefaultPolicy : kSessionPolicy) << "\n";
        for (const auto& include : includes) {
            config << "  <include>" << include.string() << "</include>\n";
        }
        config << "</busconfig>\n";
    }

    std::filesystem::path configPath() const { return dir_ / "bus.conf"; }
    std::filesystem::path socketPath() const { return dir_ / "bus"; }
    /// Without the guid, so that a restarted daemon is the same address.
    std::string address() const { return "unix:path=" + socketPath().string(); }

    /// Runs dbus-daemon through \a launcher (argv prefix), e.g. in a mount namespace.
    void setLauncher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }

    /// Starts dbus-daemon; returns false (with its output in \a output) if it refuses.
    bool start(std::string* output = nullptr) {
        std::filesystem::remove(socketPath());
        std::vector<std::string> argv = launcher_;
        argv.insert(argv.end(), {"dbus-daemon", "--config-file=" + configPath().string(),
                                 "--nofork", "--print-address"});
        daemon_.emplace(ChildProcess::Options{argv, {}, true, false});
        // The address line is printed once the socket listens; diagnostics come first.
        auto line = daemon_->waitForLine(
            [](const std::string& l) { return l.rfind("unix:", 0) == 0; }, 10s);
        if (output != nullptr) {
            std::string all;
            for (const auto& l : daemon_->lines()) {
                all += l + "\n";
            }
            *output = all;
        }
        return line.has_value();
    }

    void stop() {
        if (daemon_) {
            daemon_->terminate(2s);
            daemon_.reset();
        }
    }

private:
    TempDir dir_;
    std::vector<std::string> launcher_;
    std::optional<ChildProcess> daemon_;
};

/// A copy of /etc's user and group databases with the shipped
/// systemd/dmsd.sysusers applied (systemd-sysusers --root), plus a test
/// account "dmsd-hmi" in the group dmsd; dbus-daemon sees them through a
/// private mount namespace (launcher()), so the machine's own /etc is untouched.
class Accounts {
public:
    Accounts() : root_("dmsd-accounts") {
        std::filesystem::create_directories(root_ / "etc");
        for (const char* name : {"passwd", "group", "shadow", "gshadow"}) {
            std::error_code ec;
            std::filesystem::copy_file(std::filesystem::path("/etc") / name, root_ / "etc" / name,
                                       ec);
        }
        std::ofstream(root_ / "hmi.sysusers") << "u dmsd-hmi - \"test HMI\"\nm dmsd-hmi dmsd\n";
        const auto [code, output] = runCommand(
            {"systemd-sysusers", "--root=" + root_.path().string(),
             (kSourceDir / "systemd/dmsd.sysusers").string(), (root_ / "hmi.sysusers").string()},
            30s);
        sysusersOutput_ = output;
        ok_ = code == 0;
    }

    bool ok() const { return ok_; }
    const std::string& sysusersOutput() const { return sysusersOutput_; }
    std::string groupFile() const { return readFileOf(root_ / "etc/group"); }

    /// Field \a index (0-based) of the line for \a name in etc/\a database.
    std::string field(const std::string& database, const std::string& name,
                      std::size_t index) const {
        std::istringstream in(readFileOf(root_ / "etc" / database));
        for (std::string line; std::getline(in, line);) {
            if (line.rfind(name + ":", 0) != 0) {
                continue;
            }
            std::size_t start = 0;
            for (std::size_t i = 0; i < index; ++i) {
                start = line.find(':', start) + 1;
            }
            return line.substr(start, line.find(':', start) - start);
        }
        return {};
    }

    /// Prefix that runs a command with these databases bind-mounted over /etc's.
    std::vector<std::string> launcher() const {
        return {"unshare",
                "--mount",
                "--",
                "sh",
                "-c",
                "mount --bind \"$1\" /etc/passwd && mount --bind \"$2\" "
                "/etc/group && shift 2 && exec \"$@\"",
                "sh",
                (root_ / "etc/passwd").string(),
                (root_ / "etc/group").string()};
    }

private:
    static std::string readFileOf(const std::filesystem::path& path) {
        std::ifstream in(path);
        std::stringstream content;
        content << in.rdbuf();
        return content.str();
    }

    TempDir root_;
    bool ok_ = false;
    std::string sysusersOutput_;
};

/// An io_context on its own thread, standing in for the daemon's loop.
class Loop {
public:
    Loop() : guard_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}
    ~Loop() {
        guard_.reset();
        io_.stop();
        thread_.join();
    }

    /// Runs \a f on the loop and returns its result.
    template <class F>
    auto run(F f) -> decltype(f()) {
        auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
        auto future = task->get_future();
        asio::post(io_, [task] { (*task)(); });
        REQUIRE(future.wait_for(10s) == std::future_status::ready);
        return future.get();
    }

    asio::io_context& io() { return io_; }

private:
    asio::io_context io_;
    asio::executor_work_guard<asio::io_context::executor_type> guard_;
    std::thread thread_;
};

/// The service on a loop, with callbacks that tests can observe and steer.
class Service {
public:
    explicit Service(std::string bus) {
        dmsd::DbusCallbacks callbacks;
        callbacks.getStatus = [this] {
            return statusJson;
        };
        callbacks.reload = [this](std::function<void(const std::string&)> reply) {
            ++reloads;
            if (holdReload) {
                heldReply = std::move(reply); // answered later, or never
                return;
            }
            reply(reloadFailure);
        };
        callbacks.availabilityChanged = [this](bool available, const std::string&) {
            availability.push_back(available);
        };
        dmsd::DbusServiceOptions options;
        options.initialBackoff = 20ms;
        options.maxBackoff = 200ms;
        options.reloadDeadline = 1s;
        loop.run([&] {
            service = std::make_unique<dmsd::DbusService>(loop.io(), dmsd::DbusSettings{true, bus},
                                                          callbacks, options);
            service->start();
        });
    }
    ~Service() {
        loop.run([this] { service.reset(); });
    }

    dmsd::DbusStatus status() {
        return loop.run([this] { return service->status(); });
    }
    bool waitOwned(std::chrono::milliseconds timeout = 10s) {
        return waitUntil([this] { return status().nameOwned; }, timeout);
    }

    Loop loop;
    std::unique_ptr<dmsd::DbusService> service;
    // Touched only on the loop.
    std::string statusJson = R"({"state":"running","counters":{"frames_captured":42}})";
    std::string reloadFailure;
    bool holdReload = false;
    std::function<void(const std::string&)> heldReply;
    int reloads = 0;
    std::vector<bool> availability;
};

std::pair<int, std::string> busctl(const std::string& address, std::vector<std::string> args,
                                   const std::vector<std::pair<std::string, std::string>>& env = {},
                                   std::vector<std::string> prefix = {}) {
    std::vector<std::string> argv = std::move(prefix);
    argv.insert(argv.end(), {"busctl", "--address=" + address, "--timeout=5"});
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, 15s, env);
}

/// `busctl --json=short get-property` of one property; fails the test on error.
json::value getProperty(const std::string& address, const std::string& property) {
    auto [code, output] =
        busctl(address, {"--json=short", "get-property", kName, kPath, kIface, property});
    INFO(output);
    REQUIRE(code == 0);
    return json::parse(output).as_object().at("data");
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
        s.pop_back();
    }
    return s;
}

/// `busctl monitor` on the service's name, printing one JSON object per message.
class Monitor {
public:
    Monitor(const std::string& address)
        : address_(address),
          child_({"busctl", "--address=" + address, "monitor", "--json=short", kName}) {
        // The monitor is live once it shows a call made after it started.
        const bool live = waitUntil(
            [this] {
                busctl(address_, {"call", kName, kPath, "org.freedesktop.DBus.Peer", "Ping"});
                return child_
                    .waitForLine(
                        [](const std::string& line) {
                            return line.find("\"member\":\"Ping\"") != std::string::npos;
                        },
                        1s)
                    .has_value();
            },
            15s);
        REQUIRE(live);
    }

    /// Next signal \a member from the service; null if none within \a timeout.
    json::object nextSignal(const std::string& member, std::chrono::milliseconds timeout = 5s) {
        auto line = child_.waitForLine(
            [&](const std::string& l) {
                json::error_code ec;
                json::value v = json::parse(l, ec);
                if (ec || !v.is_object()) {
                    return false;
                }
                const auto& o = v.as_object();
                return o.contains("type") && o.at("type") == "signal" && o.contains("member") &&
                       o.at("member") == json::value(member);
            },
            timeout);
        if (!line) {
            return {};
        }
        return json::parse(*line).as_object();
    }

private:
    std::string address_;
    ChildProcess child_;
};

/// The members of one interface in an introspection document, one canonical
/// line each ("method GetStatus out s status_json", "property State s read", ...).
std::set<std::string> interfaceMembers(const std::string& xml, const std::string& interface) {
    namespace pt = boost::property_tree;
    pt::ptree tree;
    std::istringstream in(xml);
    pt::read_xml(in, tree, pt::xml_parser::no_comments);
    std::set<std::string> members;
    bool found = false;
    for (const auto& [tag, node] : tree.get_child("node")) {
        if (tag != "interface" || node.get<std::string>("<xmlattr>.name") != interface) {
            continue;
        }
        found = true;
        for (const auto& [kind, member] : node) {
            if (kind != "method" && kind != "signal" && kind != "property") {
                continue;
            }
            std::string line = kind + " " + member.get<std::string>("<xmlattr>.name");
            if (kind == "property") {
                line += " " + member.get<std::string>("<xmlattr>.type") + " " +
                        member.get<std::string>("<xmlattr>.access");
            }
            for (const auto& [argTag, arg] : member) {
                if (argTag != "arg") {
                    continue;
                }
                const std::string direction =
                    arg.get<std::string>("<xmlattr>.direction", kind == "method" ? "in" : "out");
                line += " " + direction + " " + arg.get<std::string>("<xmlattr>.type") + " " +
                        arg.get<std::string>("<xmlattr>.name", "");
            }
            members.insert(line);
        }
    }
    REQUIRE(found);
    return members;
}

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream content;
    content << in.rdbuf();
    return content.str();
}

} // namespace

TEST_CASE("DbusService serves the contract's properties and methods", "[dbus]") {
    PrivateBus bus;
    REQUIRE(bus.start());
    Service service(bus.address());
    REQUIRE(service.waitOwned());

    SECTION("properties have their initial values") {
        CHECK(getProperty(bus.address(), "State") == "starting");
        CHECK(getProperty(bus.address(), "ActiveAlerts").as_array().empty());
        CHECK(getProperty(bus.address(), "ActiveAlertLevels") == json::object{});
        CHECK(getProperty(bus.address(), "DriverState") == "UNKNOWN");
        CHECK(getProperty(bus.address(), "LastAnalysisUs").to_number<std::uint64_t>() == 0);
        CHECK(getProperty(bus.address(), "ConfigVersion") == "");
        CHECK(getProperty(bus.address(), "ConfigError") == "");
    }

    SECTION("properties show what the daemon set") {
        const std::uint64_t analysedAt = dmsd::realtimeNowUs();
        service.loop.run([&] {
            auto& s = *service.service;
            s.setState(dmsd::ServiceState::Degraded);
            s.setActiveAlerts(std::vector<dmsd::ActiveAlert>{
                {dmsd::AlertKind::PhoneUse, dmsd::AlertLevel::Warning, 0.7, {}},
                {dmsd::AlertKind::Drowsiness, dmsd::AlertLevel::Critical, 0.9, {}}});
            s.setDriverState("SLEEPY");
            s.setLastAnalysisUs(analysedAt);
            s.setConfigVersion("factory-1");
            s.setConfigError("conf.d/10-x.yaml:3: llm.timeout: not a duration");
        });
        CHECK(getProperty(bus.address(), "State") == "degraded");
        CHECK(getProperty(bus.address(), "ActiveAlerts") == json::array{"DROWSINESS", "PHONE_USE"});
        CHECK(getProperty(bus.address(), "ActiveAlertLevels") ==
              json::object{{"DROWSINESS", "critical"}, {"PHONE_USE", "warning"}});
        CHECK(getProperty(bus.address(), "DriverState") == "SLEEPY");
        CHECK(getProperty(bus.address(), "LastAnalysisUs").to_number<std::uint64_t>() ==
              analysedAt);
        CHECK(getProperty(bus.address(), "ConfigVersion") == "factory-1");
        CHECK(getProperty(bus.address(), "ConfigError") ==
              "conf.d/10-x.yaml:3: llm.timeout: not a duration");
    }

    SECTION("GetStatus returns the daemon's JSON") {
        auto [code, output] =
            busctl(bus.address(), {"--json=short", "call", kName, kPath, kIface, "GetStatus"});
        INFO(output);
        REQUIRE(code == 0);
        const json::value reply = json::parse(output);
        CHECK(reply.at("type") == "s");
        const json::value status = json::parse(reply.at("data").at(0).as_string());
        CHECK(status == json::parse(R"({"state":"running","counters":{"frames_captured":42}})"));
    }

    SECTION("GetStatus failing in the daemon still answers, with the properties") {
        service.loop.run([&] {
            // A getStatus that throws must become an error reply, not a crash.
            service.service.reset();
            dmsd::DbusCallbacks callbacks;
            callbacks.getStatus = []() -> std::string {
                throw std::runtime_error("no status");
            };
            service.service = std::make_unique<dmsd::DbusService>(
                service.loop.io(), dmsd::DbusSettings{true, bus.address()}, callbacks);
            service.service->start();
        });
        REQUIRE(service.waitOwned());
        auto [code, output] =
            runCommand({"dbus-send", "--bus=" + bus.address(), "--print-reply",
                        "--reply-timeout=5000", "--dest=" + kName, kPath, kIface + ".GetStatus"},
                       15s);
        INFO(output);
        CHECK(code == 0);
        CHECK(output.find("\"state\":\"starting\"") != std::string::npos);
        CHECK(output.find("the full status could not be built: no status") != std::string::npos);
        CHECK(output.find("org.dmsd.DriverMonitor1.Error") == std::string::npos);
    }

    SECTION("bytes that are not UTF-8 reach neither the properties nor GetStatus") {
        // Before: sd-bus refused these strings, so the property reads and the
        // GetStatus call failed.
        service.loop.run([&] {
            auto& s = *service.service;
            s.setConfigVersion("v\xff\xfe-1");
            s.setConfigError("conf.d/\xc3(.yaml:1: version: \x1b[31mred");
            s.setDriverState("AWAKE\xe2\x82");
            service.statusJson = "{\"config_version\":\"v\xff-1\"}";
        });
        CHECK(getProperty(bus.address(), "ConfigVersion") == "v\uFFFD\uFFFD-1");
        CHECK(getProperty(bus.address(), "ConfigError") ==
              "conf.d/\uFFFD(.yaml:1: version: \uFFFD[31mred");
        CHECK(getProperty(bus.address(), "DriverState") == "AWAKE\uFFFD\uFFFD");
        auto [code, output] =
            busctl(bus.address(), {"--json=short", "call", kName, kPath, kIface, "GetStatus"});
        INFO(output);
        REQUIRE(code == 0);
        const json::value status = json::parse(json::parse(output).at("data").at(0).as_string());
        CHECK(status.at("config_version") == "v\uFFFD-1");
    }

    SECTION("Reload answers within its deadline even when the daemon never does") {
        service.loop.run([&] { service.holdReload = true; });
        const auto started = std::chrono::steady_clock::now();
        auto [code, output] =
            runCommand({"dbus-send", "--bus=" + bus.address(), "--print-reply",
                        "--reply-timeout=20000", "--dest=" + kName, kPath, kIface + ".Reload"},
                       30s);
        INFO(output);
        CHECK(code != 0);
        CHECK(output.find(std::string(dmsd::kDbusErrorReloadFailed)) != std::string::npos);
        CHECK(output.find("did not finish within 1 s") != std::string::npos);
        // The deadline (1 s here), not the client's 20 s timeout, ended the call.
        CHECK(std::chrono::steady_clock::now() - started < 15s);
        // A late outcome is ignored (no second reply, no crash).
        service.loop.run([&] {
            REQUIRE(service.heldReply);
            service.heldReply("");
        });
        CHECK(getProperty(bus.address(), "State") == "starting");
    }

    SECTION("a Reload answered later gets the outcome") {
        service.loop.run([&] { service.holdReload = true; });
        std::future<std::pair<int, std::string>> call = std::async(std::launch::async, [&] {
            return runCommand({"dbus-send", "--bus=" + bus.address(), "--print-reply",
                               "--reply-timeout=20000", "--dest=" + kName, kPath,
                               kIface + ".Reload"},
                              30s);
        });
        REQUIRE(waitUntil([&] { return service.loop.run([&] { return bool(service.heldReply); }); },
                          10s));
        service.loop.run([&] { service.heldReply(""); });
        auto [code, output] = call.get();
        INFO(output);
        CHECK(code == 0);
    }

    SECTION("Reload calls the daemon, and its failure is a D-Bus error") {
        auto [code, output] = busctl(bus.address(), {"call", kName, kPath, kIface, "Reload"});
        INFO(output);
        CHECK(code == 0);
        CHECK(service.loop.run([&] { return service.reloads; }) == 1);

        service.loop.run([&] { service.reloadFailure = "dmsd.yaml:4: unknown key 'captur'"; });
        auto [failCode, failOutput] =
            runCommand({"dbus-send", "--bus=" + bus.address(), "--print-reply",
                        "--reply-timeout=5000", "--dest=" + kName, kPath, kIface + ".Reload"},
                       15s);
        INFO(failOutput);
        CHECK(failCode != 0);
        CHECK(failOutput.find(std::string(dmsd::kDbusErrorReloadFailed)) != std::string::npos);
        CHECK(failOutput.find("unknown key 'captur'") != std::string::npos);
        CHECK(service.loop.run([&] { return service.reloads; }) == 2);
    }

    SECTION("introspection matches the shipped XML") {
        auto [code, output] =
            busctl(bus.address(), {"introspect", "--xml-interface", kName, kPath});
        INFO(output);
        REQUIRE(code == 0);
        const auto served = interfaceMembers(output, kIface);
        const auto shipped =
            interfaceMembers(readFile(kSourceDir / "systemd/org.dmsd.DriverMonitor1.xml"), kIface);
        CHECK(served == shipped);
        // And both are the contract's (docs/interfaces.md section 4).
        CHECK(shipped == std::set<std::string>{
                             "method GetStatus out s status_json",
                             "method Reload",
                             "signal AlertRaised out s kind out s level out d confidence out t "
                             "timestamp_us out s details_json",
                             "signal AlertCleared out s kind out t timestamp_us",
                             "property State s read",
                             "property ActiveAlerts as read",
                             "property ActiveAlertLevels a{ss} read",
                             "property DriverState s read",
                             "property LastAnalysisUs t read",
                             "property ConfigVersion s read",
                             "property ConfigError s read",
                         });
    }
}

TEST_CASE("DbusService emits PropertiesChanged on change only and the alert signals", "[dbus]") {
    PrivateBus bus;
    REQUIRE(bus.start());
    Service service(bus.address());
    REQUIRE(service.waitOwned());
    Monitor monitor(bus.address());

    SECTION("PropertiesChanged") {
        service.loop.run([&] { service.service->setState(dmsd::ServiceState::Running); });
        json::object changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        CHECK(changed.at("path") == json::value(kPath));
        CHECK(changed.at("payload").at("data").at(0) == json::value(kIface));
        CHECK(changed.at("payload").at("data").at(1).at("State").at("data") == "running");

        // An unchanged value emits nothing: the next PropertiesChanged is the DriverState one.
        service.loop.run([&] {
            service.service->setState(dmsd::ServiceState::Running);
            service.service->setDriverState("UNKNOWN");
            service.service->setDriverState("AWAKE");
        });
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        const json::object& values = changed.at("payload").at("data").at(1).as_object();
        CHECK(values.size() == 1);
        CHECK(values.contains("DriverState"));
        CHECK(values.at("DriverState").at("data") == "AWAKE");

        service.loop.run([&] {
            service.service->setActiveAlerts(std::vector<std::string>{"DISTRACTION"});
            service.service->setActiveAlerts(std::vector<std::string>{"DISTRACTION"});
            service.service->setLastAnalysisUs(7);
        });
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        CHECK(changed.at("payload").at("data").at(1).at("ActiveAlerts").at("data") ==
              json::array{"DISTRACTION"});
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        CHECK(changed.at("payload").at("data").at(1).at("LastAnalysisUs").at("data") == 7);

        // An escalation changes the level only: ActiveAlertLevels alone is sent.
        const auto active = [](dmsd::AlertLevel level) {
            return std::vector<dmsd::ActiveAlert>{{dmsd::AlertKind::Drowsiness, level, 0.9, {}}};
        };
        service.loop.run(
            [&] { service.service->setActiveAlerts(active(dmsd::AlertLevel::Warning)); });
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        CHECK(changed.at("payload").at("data").at(1).at("ActiveAlerts").at("data") ==
              json::array{"DROWSINESS"});
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        CHECK(changed.at("payload").at("data").at(1).at("ActiveAlertLevels").at("data") ==
              json::object{{"DROWSINESS", "warning"}});
        service.loop.run(
            [&] { service.service->setActiveAlerts(active(dmsd::AlertLevel::Critical)); });
        changed = monitor.nextSignal("PropertiesChanged");
        REQUIRE(!changed.empty());
        const json::object& escalated = changed.at("payload").at("data").at(1).as_object();
        CHECK(escalated.size() == 1);
        CHECK(escalated.at("ActiveAlertLevels").at("data") ==
              json::object{{"DROWSINESS", "critical"}});
    }

    SECTION("AlertRaised and AlertCleared carry the contract's arguments") {
        dmsd::AlertEvent raised;
        raised.type = dmsd::AlertEvent::Type::Raised;
        raised.kind = dmsd::AlertKind::Drowsiness;
        raised.level = dmsd::AlertLevel::Warning;
        raised.confidence = 0.8;
        raised.sequenceId = 17;
        raised.evidence =
            json::parse(R"({"face_state":{"state":"SLEEPY","eyes_closed":true}})").as_object();
        dmsd::AlertEvent escalated = raised;
        escalated.type = dmsd::AlertEvent::Type::LevelChanged;
        escalated.level = dmsd::AlertLevel::Critical;
        escalated.sequenceId = 18;
        escalated.evidence = json::parse(R"({"face_state":{"confidence":0.9}})").as_object();
        dmsd::AlertEvent cleared = raised;
        cleared.type = dmsd::AlertEvent::Type::Cleared;
        cleared.level = dmsd::AlertLevel::Cleared;

        service.loop.run([&] {
            service.service->emitAlert(raised, 1700000000123456);
            service.service->emitAlert(escalated, 1700000000223456);
            service.service->emitAlert(cleared, 1700000000323456);
        });

        json::object signal = monitor.nextSignal("AlertRaised");
        REQUIRE(!signal.empty());
        CHECK(signal.at("interface") == json::value(kIface));
        CHECK(signal.at("payload").at("type") == "ssdts");
        json::array args = signal.at("payload").at("data").as_array();
        REQUIRE(args.size() == 5);
        CHECK(args[0] == "DROWSINESS");
        CHECK(args[1] == "warning");
        CHECK(args[2].to_number<double>() == Approx(0.8));
        CHECK(args[3].to_number<std::uint64_t>() == 1700000000123456u);
        const json::value details = json::parse(args[4].as_string());
        CHECK(details.at("event") == "raised");
        CHECK(details.at("sequence_id") == 17);
        CHECK(details.at("evidence").at("face_state").at("state") == "SLEEPY");

        signal = monitor.nextSignal("AlertRaised");
        REQUIRE(!signal.empty());
        args = signal.at("payload").at("data").as_array();
        CHECK(args[1] == "critical");
        const json::value escalatedDetails = json::parse(args[4].as_string());
        CHECK(escalatedDetails.at("event") == "level_changed");
        // Plain decimals (base/json.h), as a listener's own parser expects them.
        CHECK_THAT(std::string(args[4].as_string()), Catch::Contains(R"("confidence":0.9)"));
        CHECK(escalatedDetails.at("evidence").at("face_state").at("confidence") == 0.9);

        signal = monitor.nextSignal("AlertCleared");
        REQUIRE(!signal.empty());
        CHECK(signal.at("payload").at("type") == "st");
        CHECK(signal.at("payload").at("data") == json::array{"DROWSINESS", 1700000000323456u});
    }
}

TEST_CASE("DbusService survives a missing bus and reconnects after the bus restarts", "[dbus]") {
    PrivateBus bus;
    // No daemon yet: the service reports the failure and keeps retrying.
    Service service(bus.address());
    REQUIRE(waitUntil([&] { return service.status().failures >= 2; }, 10s));
    dmsd::DbusStatus status = service.status();
    CHECK_FALSE(status.nameOwned);
    CHECK(status.lastError.find(bus.socketPath().string()) != std::string::npos);
    service.loop.run([&] {
        service.service->setConfigVersion("v2");
        dmsd::AlertEvent event;
        service.service->emitAlertRaised(event, 1); // dropped, not fatal
    });
    CHECK(service.status().signalsDropped == 1);

    REQUIRE(bus.start());
    REQUIRE(service.waitOwned());
    CHECK(getProperty(bus.address(), "ConfigVersion") == "v2");
    CHECK(service.status().lastError.empty());

    // The bus goes away under a running service, and comes back at the same address.
    bus.stop();
    REQUIRE(waitUntil([&] { return !service.status().nameOwned; }, 10s));
    REQUIRE(bus.start());
    REQUIRE(service.waitOwned());
    CHECK(getProperty(bus.address(), "ConfigVersion") == "v2");
    status = service.status();
    CHECK(status.connects == 2);
    CHECK(service.loop.run([&] { return service.availability; }) ==
          std::vector<bool>{false, true, false, true});
}

TEST_CASE("DbusService reports a bus setting that is no address", "[dbus]") {
    Service service("nonsense");
    REQUIRE(waitUntil([&] { return service.status().failures >= 1; }, 10s));
    const std::string error = service.status().lastError;
    CHECK(error.find("notify.dbus.bus") != std::string::npos);
    CHECK(error.find("'nonsense'") != std::string::npos);
}

TEST_CASE("The shipped bus policy loads into a system bus and enforces the contract", "[dbus]") {
    const auto policy = kSourceDir / "systemd/org.dmsd.DriverMonitor1.conf";

    SECTION("a broken policy is refused (the check can fail)") {
        TempDir dir("dmsd-policy");
        std::string text = readFile(policy);
        std::ofstream(dir / "broken.conf") << text.substr(0, text.size() / 2);
        PrivateBus broken(true, {dir / "broken.conf"});
        std::string output;
        const bool started = broken.start(&output);
        INFO(output);
        CHECK_FALSE(started);
    }

    if (::geteuid() != 0) {
        WARN("skipped: owning the name on a system-like bus needs root (the policy allows root "
             "and dmsd only), and the group dmsd a private mount namespace");
        return;
    }
    // The group the policy names comes from the shipped sysusers file.
    Accounts accounts;
    INFO(accounts.sysusersOutput());
    REQUIRE(accounts.ok());
    const std::string dmsdGid = accounts.field("group", "dmsd", 2);
    REQUIRE_FALSE(dmsdGid.empty());
    CHECK(accounts.field("passwd", "dmsd", 3) == dmsdGid); // the daemon's primary group
    const std::string hmiUid = accounts.field("passwd", "dmsd-hmi", 2);
    const std::string hmiGid = accounts.field("passwd", "dmsd-hmi", 3);
    REQUIRE_FALSE(hmiUid.empty());
    CHECK(accounts.field("group", "dmsd", 3).find("dmsd-hmi") != std::string::npos);
    if (runCommand({"unshare", "--mount", "true"}, 10s).first != 0) {
        WARN("skipped: no mount namespace here (unshare --mount) to show dbus-daemon the group");
        return;
    }

    PrivateBus bus(true, {policy});
    bus.setLauncher(accounts.launcher());
    std::string output;
    const bool started = bus.start(&output);
    INFO(output);
    REQUIRE(started);

    const std::vector<std::string> outsider = {"setpriv", "--reuid=65534", "--regid=65534",
                                               "--clear-groups"};
    const std::vector<std::string> member = {"setpriv", "--reuid=" + hmiUid, "--regid=" + hmiGid,
                                             "--groups=" + dmsdGid};
    const std::vector<std::string> requestName = {"call",
                                                  "org.freedesktop.DBus",
                                                  "/org/freedesktop/DBus",
                                                  "org.freedesktop.DBus",
                                                  "RequestName",
                                                  "su",
                                                  kName,
                                                  "4"};

    SECTION("others may not own the name, members of dmsd neither") {
        for (const auto& who : {outsider, member}) {
            auto [code, out] = busctl(bus.address(), requestName, {}, who);
            INFO(out);
            CHECK(code != 0);
            CHECK(out.find("denied") != std::string::npos);
        }
    }

    SECTION("root owns the name and calls everything; the group dmsd reads; others only ping") {
        Service service(bus.address());
        REQUIRE(service.waitOwned());
        service.loop.run([&] {
            service.service->setState(dmsd::ServiceState::Running);
            service.service->setActiveAlerts(std::vector<dmsd::ActiveAlert>{
                {dmsd::AlertKind::Drowsiness, dmsd::AlertLevel::Critical, 0.9, {}}});
        });

        auto [rootCode, rootOut] =
            busctl(bus.address(), {"call", kName, kPath, kIface, "GetStatus"});
        INFO(rootOut);
        CHECK(rootCode == 0);
        auto [reloadCode, reloadOut] =
            busctl(bus.address(), {"call", kName, kPath, kIface, "Reload"});
        INFO(reloadOut);
        CHECK(reloadCode == 0);
        CHECK(service.loop.run([&] { return service.reloads; }) == 1);

        // A member of the group dmsd: GetStatus, Get, GetAll and the signals.
        auto [statusCode, statusOut] =
            busctl(bus.address(), {"call", kName, kPath, kIface, "GetStatus"}, {}, member);
        INFO(statusOut);
        CHECK(statusCode == 0);
        CHECK(statusOut.find("frames_captured") != std::string::npos);
        auto [getCode, getOut] =
            busctl(bus.address(), {"get-property", kName, kPath, kIface, "State"}, {}, member);
        INFO(getOut);
        CHECK(getCode == 0);
        CHECK(trim(getOut) == "s \"running\"");
        auto [allCode, allOut] =
            busctl(bus.address(),
                   {"call", kName, kPath, "org.freedesktop.DBus.Properties", "GetAll", "s", kIface},
                   {}, member);
        INFO(allOut);
        CHECK(allCode == 0);
        CHECK(allOut.find("\"DROWSINESS\" \"critical\"") != std::string::npos);
        // Signals reach a member's subscription (dbus-monitor-like match, not eavesdropping).
        {
            std::vector<std::string> argv = member;
            argv.insert(argv.end(), {"dbus-monitor", "--address", bus.address(),
                                     "type='signal',interface='" + kIface + "'"});
            ChildProcess watcher(ChildProcess::Options{argv, {}, true, false});
            // dbus-monitor prints its NameAcquired signal once its match is in place.
            REQUIRE(watcher.waitForLine(
                [](const std::string& l) { return l.find("NameAcquired") != std::string::npos; },
                10s));
            dmsd::AlertEvent event;
            event.kind = dmsd::AlertKind::PhoneUse;
            event.level = dmsd::AlertLevel::Warning;
            service.loop.run([&] { service.service->emitAlertRaised(event, 1); });
            CHECK(watcher.waitForLine(
                [](const std::string& l) {
                    return l.find("member=AlertRaised") != std::string::npos;
                },
                10s));
        }
        // ... but not Reload.
        auto [memberReloadCode, memberReloadOut] =
            busctl(bus.address(), {"call", kName, kPath, kIface, "Reload"}, {}, member);
        INFO(memberReloadOut);
        CHECK(memberReloadCode != 0);
        CHECK(memberReloadOut.find("denied") != std::string::npos);

        // Outside the group: introspection and ping only.
        auto [introCode, introOut] =
            busctl(bus.address(),
                   {"call", kName, kPath, "org.freedesktop.DBus.Introspectable", "Introspect"}, {},
                   outsider);
        INFO(introOut);
        CHECK(introCode == 0);
        auto [pingCode, pingOut] =
            busctl(bus.address(), {"call", kName, kPath, "org.freedesktop.DBus.Peer", "Ping"}, {},
                   outsider);
        INFO(pingOut);
        CHECK(pingCode == 0);
        for (const std::vector<std::string>& call :
             {std::vector<std::string>{"call", kName, kPath, kIface, "GetStatus"},
              std::vector<std::string>{"call", kName, kPath, kIface, "Reload"},
              std::vector<std::string>{"get-property", kName, kPath, kIface, "State"},
              std::vector<std::string>{"call", kName, kPath, "org.freedesktop.DBus.Properties",
                                       "GetAll", "s", kIface}}) {
            auto [code, out] = busctl(bus.address(), call, {}, outsider);
            INFO(call[call.size() > 5 ? 5 : 4] << ": " << out);
            CHECK(code != 0);
            CHECK(out.find("denied") != std::string::npos);
        }
        CHECK(service.loop.run([&] { return service.reloads; }) == 1);
    }
}

// Not a pass/fail test: prints how long emitting an alert signal takes on the
// loop (message built, serialised and written to the bus socket).
// Run: test_dbus "[.bench]"
TEST_CASE("Benchmark: AlertRaised emission on the loop", "[.bench][dbus]") {
    PrivateBus bus;
    REQUIRE(bus.start());
    Service service(bus.address());
    REQUIRE(service.waitOwned());
    Monitor monitor(bus.address()); // a subscriber, as in a vehicle

    dmsd::AlertEvent event;
    event.kind = dmsd::AlertKind::Drowsiness;
    event.level = dmsd::AlertLevel::Warning;
    event.confidence = 0.8;
    event.sequenceId = 1;
    event.evidence =
        json::parse(R"({"face_state":{"state":"SLEEPY","eyes_closed":true,"confidence":0.8}})")
            .as_object();
    constexpr int kBursts = 50;
    constexpr int kPerBurst = 20;
    std::vector<double> micros;
    for (int burst = 0; burst < kBursts; ++burst) {
        auto batch = service.loop.run([&] {
            std::vector<double> out;
            for (int i = 0; i < kPerBurst; ++i) {
                const auto start = std::chrono::steady_clock::now();
                service.service->emitAlertRaised(event, dmsd::realtimeNowUs());
                out.push_back(std::chrono::duration<double, std::micro>(
                                  std::chrono::steady_clock::now() - start)
                                  .count());
            }
            return out;
        });
        micros.insert(micros.end(), batch.begin(), batch.end());
        // Let the bus drain between bursts, as between real alerts.
        REQUIRE(!monitor.nextSignal("AlertRaised").empty());
    }
    std::sort(micros.begin(), micros.end());
    auto at = [&](double q) {
        return micros[static_cast<std::size_t>(q * (micros.size() - 1))];
    };
    std::cout << "AlertRaised emission over " << micros.size() << " signals: p50 " << at(0.5)
              << " us, p99 " << at(0.99) << " us, max " << micros.back() << " us\n";
    CHECK(service.status().signalsDropped == 0);
}
