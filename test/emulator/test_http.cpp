#include "test/emulator/test_http.h"

#include <array>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <turbojpeg.h>

namespace dmsd::emulator::test {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

http::request<http::string_body> makeRequest(std::uint16_t port, const std::string& method,
                                             const std::string& target, const std::string& body,
                                             const Headers& headers) {
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::user_agent, "dmsd-emulator-test");
    for (const auto& [name, value] : headers) {
        req.set(name, value);
    }
    if (!body.empty() || method == "POST") {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
    }
    req.keep_alive(false);
    return req;
}

HttpResponse readResponse(tcp::socket& socket, beast::flat_buffer& buffer, bool head) {
    HttpResponse out;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1ULL << 30);
    parser.skip(head);
    boost::system::error_code ec;
    http::read(socket, buffer, parser, ec);
    const auto& msg = parser.get();
    out.status = parser.is_header_done() ? static_cast<int>(msg.result_int()) : 0;
    for (const auto& f : msg) {
        std::string name(f.name_string());
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        out.headers[name] = std::string(f.value());
    }
    out.body = msg.body();
    out.complete = !ec && parser.is_done();
    if (ec) {
        out.error = ec.message();
    }
    return out;
}

} // namespace

std::string HttpResponse::header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

HttpResponse httpRequest(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body, const Headers& headers) {
    asio::io_context io;
    tcp::socket socket(io);
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    auto req = makeRequest(port, method, target, body, headers);
    http::write(socket, req);
    beast::flat_buffer buffer;
    return readResponse(socket, buffer, method == "HEAD");
}

struct PendingRequest::State {
    asio::io_context io;
    tcp::socket socket{io};
    beast::flat_buffer buffer;
};

PendingRequest::PendingRequest(std::uint16_t port, const std::string& method,
                               const std::string& target, const std::string& body)
    : state_(std::make_unique<State>()) {
    state_->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    auto req = makeRequest(port, method, target, body, {});
    http::write(state_->socket, req);
}

PendingRequest::~PendingRequest() {
    close();
}
PendingRequest::PendingRequest(PendingRequest&&) noexcept = default;
PendingRequest& PendingRequest::operator=(PendingRequest&&) noexcept = default;

std::size_t PendingRequest::available() {
    boost::system::error_code ec;
    return state_ ? state_->socket.available(ec) : 0;
}

HttpResponse PendingRequest::finish() {
    return readResponse(state_->socket, state_->buffer, false);
}

void PendingRequest::close() {
    if (state_ && state_->socket.is_open()) {
        boost::system::error_code ec;
        state_->socket.close(ec);
    }
}

std::string solidJpeg(int width, int height, int r, int g, int b) {
    std::vector<unsigned char> rgb(static_cast<std::size_t>(width) * height * 3);
    for (std::size_t i = 0; i < rgb.size(); i += 3) {
        rgb[i] = static_cast<unsigned char>(r);
        rgb[i + 1] = static_cast<unsigned char>(g);
        rgb[i + 2] = static_cast<unsigned char>(b);
    }
    tjhandle handle = tjInitCompress();
    unsigned char* jpeg = nullptr;
    unsigned long size = 0;
    int rc = tjCompress2(handle, rgb.data(), width, 0, height, TJPF_RGB, &jpeg, &size, TJSAMP_420,
                         85, 0);
    std::string out;
    if (rc == 0) {
        out.assign(reinterpret_cast<const char*>(jpeg), size);
    }
    tjFree(jpeg);
    tjDestroy(handle);
    if (rc != 0) {
        throw std::runtime_error("tjCompress2 failed");
    }
    return out;
}

std::string base64(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                     (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                     static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (i + 1 == bytes.size()) {
        unsigned v = static_cast<unsigned char>(bytes[i]) << 16;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += "==";
    } else if (i + 2 == bytes.size()) {
        unsigned v = (static_cast<unsigned char>(bytes[i]) << 16) |
                     (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::vector<json::value> ndjson(const std::string& body) {
    std::vector<json::value> lines;
    std::stringstream in(body);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            lines.push_back(json::parse(line));
        }
    }
    return lines;
}

Emulator::Emulator(std::vector<std::string> args) {
    std::vector<std::string> argv{DMSD_OLLAMA_EMULATOR};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<dmsd::test::ChildProcess>(argv);
    auto line = process_->readLine(std::chrono::seconds(20));
    const std::string prefix = "listening on http://127.0.0.1:";
    if (!line || line->rfind(prefix, 0) != 0) {
        throw std::runtime_error("ollama-emulator did not start: " + line.value_or("<no output>"));
    }
    port_ = static_cast<std::uint16_t>(std::stoi(line->substr(prefix.size())));
}

Emulator::~Emulator() {
    if (process_) {
        process_->terminate(std::chrono::seconds(5));
    }
}

json::object Emulator::stats() {
    auto res = httpRequest(port_, "GET", "/_emulator/stats");
    return json::parse(res.body).as_object();
}

int Emulator::configure(const std::string& body) {
    return httpRequest(port_, "POST", "/_emulator/config", body).status;
}

bool Emulator::waitForStat(const std::string& key, std::int64_t value,
                           std::chrono::milliseconds timeout) {
    return dmsd::test::waitUntil(
        [&] {
            auto s = stats();
            const auto* v = s.if_contains(key);
            return v != nullptr && v->is_int64() && v->get_int64() == value;
        },
        timeout);
}

HttpResponse Emulator::chat(const std::string& body) {
    return httpRequest(port_, "POST", "/api/chat", body);
}

std::vector<json::object> readLog(const std::string& path) {
    std::vector<json::object> out;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        if (!line.empty()) {
            out.push_back(json::parse(line).as_object());
        }
    }
    return out;
}

} // namespace dmsd::emulator::test
