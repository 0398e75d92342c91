#include "test/integration/harness.h"

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fmt/format.h>

namespace dmsd::test {

namespace json = boost::json;
using namespace std::chrono_literals;

Harness::Harness() {
    std::filesystem::create_directories(dir_ / "etc");
    std::filesystem::create_directories(dir_ / "state");
}

Harness::~Harness() {
    if (dmsd_) {
        dmsd_->terminate(5s);
    }
    stopEmulator();
    if (bus_) {
        bus_->terminate(2s);
    }
}

void Harness::makeVideo(const VideoSpec& spec) {
    generateVideo(videoPath(), spec);
}

void Harness::startEmulator(const std::vector<std::string>& args, int port) {
    std::vector<std::string> argv{DMSD_EMULATOR, "--port", std::to_string(port),  "--seed",
                                  "7",           "--log",  emulatorLog().string()};
    argv.insert(argv.end(), args.begin(), args.end());
    emulator_ = std::make_unique<ChildProcess>(argv);
    auto line = emulator_->readLine(20s);
    const std::string prefix = "listening on http://127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0) {
        throw std::runtime_error("the Ollama emulator did not start: " +
                                 line.value_or("<nothing>"));
    }
    emulatorPort_ = std::stoi(line->substr(prefix.size()));
}

void Harness::stopEmulator() {
    if (emulator_) {
        emulator_->terminate(5s);
        emulator_.reset();
    }
}

std::string Harness::emulatorUrl() const {
    return fmt::format("http://127.0.0.1:{}", emulatorPort_);
}

json::object Harness::emulatorStats() const {
    namespace beast = boost::beast;
    namespace http = beast::http;
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                  static_cast<unsigned short>(emulatorPort_)));
    http::request<http::empty_body> request{http::verb::get, "/_emulator/stats", 11};
    request.set(http::field::host, fmt::format("127.0.0.1:{}", emulatorPort_));
    http::write(stream, request);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    return json::parse(response.body()).as_object();
}

void Harness::startBus() {
    const std::string socket = (dir_ / "bus").string();
    bus_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"dbus-daemon", "--config-file=/usr/share/dbus-1/session.conf",
                                 "--nofork", "--print-address", "--address=unix:path=" + socket});
    auto line = bus_->readLine(10s);
    if (!line || line->empty()) {
        throw std::runtime_error("dbus-daemon did not start");
    }
    busAddress_ = *line;
}

std::string Harness::baseConfig(const std::string& version) const {
    return fmt::format(R"(version: "{}"
capture:
  source: "file:{}"
  width: 320
  height: 240
  fps: 10
llm:
  url: "{}"
  timeout: 5s
notify:
  dbus: {{ enabled: true, bus: "{}" }}
  can: {{ enabled: false }}
  snapshots: {{ enabled: true, dir: "{}", max_files: 50 }}
# The test videos are colour patterns without a face: the per-frame vision
# would see an empty seat (DRIVER_NOT_VISIBLE). Tests that need it turn it on.
vision: {{ enabled: false }}
)",
                       version, videoPath().string(), emulatorUrl(), busAddress_,
                       snapshotDir().string());
}

void Harness::writeConfig(const std::string& yaml) {
    std::ofstream out(configPath());
    out << yaml;
}

std::vector<std::string> TestSeams::flags() const {
    std::vector<std::string> out;
    if (probation) {
        out.insert(out.end(), {"--probation-ms", std::to_string(probation->count())});
    }
    if (!canSocket.empty()) {
        out.insert(out.end(), {"--can-socket", canSocket.string()});
    }
    if (stallSamplerAfter) {
        out.insert(out.end(), {"--stall-sampler-after", std::to_string(*stallSamplerAfter)});
    }
    return out;
}

void Harness::startDaemon(const std::vector<std::pair<std::string, std::string>>& env,
                          const TestSeams& seams, const std::vector<std::string>& runArgs) {
    notify_ = std::make_unique<NotifySocket>(dir_ / "notify.sock");
    ChildProcess::Options options;
    // stderr goes through tee: shown by ctest on failure, and kept for assertions.
    // bash execs dmsd, so the child's pid is dmsd's own.
    options.argv = {"bash",
                    "-c",
                    "exec \"$0\" \"$@\" 2> >(tee -a '" + daemonLogPath().string() + "' >&2)",
                    seams.any() ? DMSD_TESTBED : DMSD_BINARY,
                    "run",
                    "--config",
                    configPath().string(),
                    "--state-dir",
                    (dir_ / "state").string()};
    const std::vector<std::string> flags = seams.flags();
    options.argv.insert(options.argv.end(), flags.begin(), flags.end());
    options.argv.insert(options.argv.end(), runArgs.begin(), runArgs.end());
    options.env = env;
    options.env.emplace_back("NOTIFY_SOCKET", notify_->path().string());
    options.env.emplace_back("JOURNAL_STREAM", "");
    dmsd_ = std::make_unique<ChildProcess>(options);
}

std::optional<std::chrono::steady_clock::time_point>
Harness::waitReady(std::chrono::milliseconds timeout) {
    if (notify_->waitFor([](const std::string& m) { return hasLine(m, "READY=1"); }, timeout)) {
        return std::chrono::steady_clock::now();
    }
    return std::nullopt;
}

std::string Harness::daemonLog() const {
    std::ifstream in(daemonLogPath());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

std::pair<int, std::string> Harness::busctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{"busctl", "--address=" + busAddress_};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, 20s);
}

json::value Harness::property(const std::string& name) const {
    auto [code, out] = busctl({"--json=short", "get-property", "org.dmsd.DriverMonitor1",
                               "/org/dmsd/DriverMonitor1", "org.dmsd.DriverMonitor1", name});
    if (code != 0) {
        throw std::runtime_error("busctl get-property " + name + " failed: " + out);
    }
    return json::parse(out).as_object().at("data");
}

json::object Harness::status() const {
    auto [code, out] = busctl({"--json=short", "call", "org.dmsd.DriverMonitor1",
                               "/org/dmsd/DriverMonitor1", "org.dmsd.DriverMonitor1", "GetStatus"});
    if (code != 0) {
        throw std::runtime_error("busctl call GetStatus failed: " + out);
    }
    try {
        const json::value reply = json::parse(out);
        return json::parse(reply.at("data").as_array().at(0).as_string()).as_object();
    } catch (const std::exception& e) {
        throw std::runtime_error("GetStatus: " + std::string(e.what()) + " in: " + out);
    }
}

std::pair<int, std::string> Harness::dmsd(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{DMSD_BINARY};
    argv.insert(argv.end(), args.begin(), args.end());
    return runCommand(argv, 30s);
}

std::unique_ptr<ChildProcess> Harness::monitor() const {
    auto child = std::make_unique<ChildProcess>(
        std::vector<std::string>{"busctl", "--address=" + busAddress_, "monitor", "--json=short",
                                 "--match=type='signal',interface='org.dmsd.DriverMonitor1'"});
    return child;
}

std::size_t Harness::daemonFdCount() const {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry :
         std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", dmsd_->pid()))) {
        ++count;
    }
    return count;
}

std::size_t Harness::daemonRssKb() const {
    std::ifstream in(fmt::format("/proc/{}/status", dmsd_->pid()));
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoul(line.substr(6));
        }
    }
    return 0;
}

std::optional<BusSignal> waitSignal(ChildProcess& monitor, const std::string& member,
                                    const std::string& firstArg,
                                    std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        auto line = monitor.readLine(left);
        if (!line) {
            return std::nullopt;
        }
        boost::system::error_code ec;
        const json::value message = json::parse(*line, ec);
        if (ec || !message.is_object()) {
            continue;
        }
        const json::object& object = message.as_object();
        const json::value* m = object.if_contains("member");
        if (m == nullptr || !m->is_string() || m->as_string() != member) {
            continue;
        }
        BusSignal signal;
        signal.member = member;
        signal.at = std::chrono::steady_clock::now();
        if (const json::value* payload = object.if_contains("payload")) {
            if (const json::value* data = payload->as_object().if_contains("data")) {
                signal.args = data->as_array();
            }
        }
        if (!firstArg.empty() && (signal.args.empty() || !signal.args[0].is_string() ||
                                  signal.args[0].as_string() != firstArg)) {
            continue;
        }
        return signal;
    }
}

} // namespace dmsd::test
