#include "test/hostile/hostile_client.h"

#include <fstream>
#include <stdexcept>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fmt/format.h>

namespace dmsd::test {

namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

json::object request(int port, boost::beast::http::verb verb, const std::string& target,
                     const std::string& body) {
    namespace beast = boost::beast;
    namespace http = beast::http;
    boost::asio::io_context io;
    beast::tcp_stream stream(io);
    stream.expires_after(10s);
    stream.connect(boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                                  static_cast<unsigned short>(port)));
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, fmt::format("127.0.0.1:{}", port));
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    http::read(stream, buffer, response);
    if (response.result_int() != 200) {
        throw std::runtime_error("hostile proxy: " + response.body());
    }
    return json::parse(response.body()).as_object();
}

} // namespace

HostileProxyProcess::HostileProxyProcess(int upstreamPort, const std::filesystem::path& log,
                                         const std::vector<std::string>& extra)
    : log_(log) {
    std::vector<std::string> argv{DMSD_HOSTILE_PROXY,
                                  "--upstream-port",
                                  std::to_string(upstreamPort),
                                  "--seed",
                                  "11",
                                  "--log",
                                  log.string()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    process_ = std::make_unique<ChildProcess>(argv);
    auto line = process_->readLine(20s);
    const std::string prefix = "listening on http://127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0) {
        throw std::runtime_error("hostile-proxy did not start: " + line.value_or("<nothing>"));
    }
    port_ = std::stoi(line->substr(prefix.size()));
}

HostileProxyProcess::~HostileProxyProcess() {
    if (process_) {
        process_->terminate(5s);
    }
}

std::string HostileProxyProcess::url() const {
    return fmt::format("http://127.0.0.1:{}", port_);
}

json::object HostileProxyProcess::configure(const json::object& change) const {
    return request(port_, boost::beast::http::verb::post, "/_hostile/config",
                   json::serialize(change));
}

json::object HostileProxyProcess::stats() const {
    return request(port_, boost::beast::http::verb::get, "/_hostile/stats", {});
}

std::vector<json::object> HostileProxyProcess::log() const {
    std::vector<json::object> out;
    std::ifstream in(log_);
    std::string line;
    while (std::getline(in, line)) {
        boost::system::error_code ec;
        json::value v = json::parse(line, ec);
        if (!ec && v.is_object()) {
            out.push_back(std::move(v.as_object()));
        }
    }
    return out;
}

bool BusSignals::waitFor(const std::string& member, const std::string& kind,
                         std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        for (std::size_t i = consumed_; i < seen_.size(); ++i) {
            if (seen_[i].member == member && seen_[i].kind == kind) {
                consumed_ = i + 1;
                return true;
            }
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !readOne(left)) {
            return false;
        }
    }
}

void BusSignals::drain(std::chrono::milliseconds quiet) {
    while (readOne(quiet)) {
    }
}

void BusSignals::readFor(std::chrono::milliseconds period) {
    const auto until = std::chrono::steady_clock::now() + period;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            until - std::chrono::steady_clock::now());
        if (left.count() <= 0 || !readOne(left)) {
            return; // the period is over, or the monitor has ended
        }
    }
}

std::set<std::string> BusSignals::raised() const {
    std::set<std::string> out;
    for (const Seen& s : seen_) {
        if (s.member == "AlertRaised") {
            out.insert(s.kind);
        }
    }
    return out;
}

bool BusSignals::readOne(std::chrono::milliseconds timeout) {
    auto line = monitor_.readLine(timeout);
    if (!line) {
        return false;
    }
    boost::system::error_code ec;
    const json::value message = json::parse(*line, ec);
    if (ec || !message.is_object()) {
        return true;
    }
    const json::object& o = message.as_object();
    const json::value* m = o.if_contains("member");
    if (m == nullptr || !m->is_string()) {
        return true;
    }
    std::string first;
    if (const json::value* payload = o.if_contains("payload"); payload && payload->is_object()) {
        if (const json::value* data = payload->as_object().if_contains("data");
            data != nullptr && data->is_array() && !data->as_array().empty() &&
            data->as_array()[0].is_string()) {
            first = std::string(data->as_array()[0].as_string());
        }
    }
    seen_.push_back(Seen{std::string(m->as_string()), first, std::chrono::steady_clock::now()});
    return true;
}

} // namespace dmsd::test
