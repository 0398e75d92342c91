#include "llm/http_transport.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <random>
#include <set>
#include <span>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "base/json.h"
#include "base/log.h"

namespace dmsd {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {

constexpr auto kUseTuple = asio::as_tuple(asio::use_awaitable);

milliseconds msSince(Clock::time_point start) {
    return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
}

AnalysisError makeError(AnalysisError::Kind kind, std::string message, int status = 0) {
    return AnalysisError{kind, status, std::move(message)};
}

Clock::time_point earliest(Clock::time_point deadline, milliseconds limit) {
    if (limit.count() <= 0) {
        return deadline;
    }
    return std::min(deadline, Clock::now() + limit);
}

/// The category of Beast's HTTP parse errors (a malformed answer, not a lost connection).
const boost::system::error_category& httpErrors() {
    return make_error_code(http::error::bad_chunk).category();
}

/// True when the awaiting coroutine has been asked to stop.
asio::awaitable<bool> stopRequested() {
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    co_return state.cancelled() != asio::cancellation_type::none;
}

} // namespace

struct HttpTransport::Impl {
    /// A keep-alive connection; counts itself in `open` while alive.
    struct Connection {
        Connection(const asio::any_io_executor& ex, std::size_t& open,
                   asio::ssl::context* tlsContext)
            : stream(ex), open_(open) {
            if (tlsContext != nullptr) {
                tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(ex, *tlsContext);
            }
            ++open_;
        }
        ~Connection() { --open_; }
        Connection(const Connection&) = delete;
        Connection& operator=(const Connection&) = delete;
        /// The TCP stream every deadline is set on (under TLS, its lowest layer).
        beast::tcp_stream& tcp() { return tls ? beast::get_lowest_layer(*tls) : stream; }
        beast::tcp_stream stream;                                  ///< plain http
        std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> tls; ///< https
        beast::flat_buffer buffer;
        std::size_t& open_;
    };
    using ConnectionPtr = std::unique_ptr<Connection>;

    /// `llm.max_in_flight` tokens; a call holds one while it talks to the server.
    using Slots = asio::experimental::channel<void(boost::system::error_code)>;
    using Resolved =
        asio::experimental::channel<void(boost::system::error_code, tcp::resolver::results_type)>;

    /// Where an attempt failed, for the message and the retry decision.
    enum class Phase { Connect, Handshake, Write, FirstByte, Body, Done };
    struct Failure {
        boost::system::error_code ec;
        Phase phase = Phase::Connect;
        bool reused = false;      ///< a pooled connection
        bool receivedAny = false; ///< the server sent something
        bool tooLarge = false;
        bool dropped = false; ///< the reader stopped reading
        /// The response arrived slower than llm.min_response_rate allows.
        bool stalled = false;
        std::size_t receivedBytes = 0; ///< of the response, when stalled
        std::chrono::milliseconds receivingFor{0};
        /// Bytes the server sent beyond the response's own framing.
        std::size_t extraBytes = 0;
        /// The body had no framing of its own (HTTP/1.0 close-delimited).
        bool closeDelimited = false;
        /// The server lets the connection be used again (HTTP/1.1 without `Connection: close`).
        bool keepAlive = false;
        /// Why the server's certificate was refused (OpenSSL's verify result), when it was.
        std::string certificateProblem;
    };

    /// A slot held by a call; given back when released or destroyed.
    class Slot {
    public:
        Slot() = default;
        explicit Slot(Impl* impl) : impl_(impl) {}
        Slot(Slot&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}
        Slot& operator=(Slot&& other) noexcept {
            release();
            impl_ = std::exchange(other.impl_, nullptr);
            return *this;
        }
        Slot(const Slot&) = delete;
        Slot& operator=(const Slot&) = delete;
        ~Slot() { release(); }
        void release() {
            if (Impl* impl = std::exchange(impl_, nullptr)) {
                --impl->inFlight;
                impl->slots.try_send(boost::system::error_code{});
            }
        }

    private:
        Impl* impl_ = nullptr;
    };

    /// Registers a timer every wait of a call runs against, for cancelAll().
    class WaitMark {
    public:
        WaitMark(Impl& impl, asio::steady_timer& timer) : impl_(impl), timer_(&timer) {
            impl_.waits.insert(timer_);
        }
        ~WaitMark() { impl_.waits.erase(timer_); }
        WaitMark(const WaitMark&) = delete;
        WaitMark& operator=(const WaitMark&) = delete;

    private:
        Impl& impl_;
        asio::steady_timer* timer_;
    };

    /// Registers a connection in use, for cancelAll().
    class BusyMark {
    public:
        BusyMark(Impl& impl, Connection* connection) : impl_(impl), connection_(connection) {
            impl_.busy.insert(connection_);
        }
        ~BusyMark() { impl_.busy.erase(connection_); }
        BusyMark(const BusyMark&) = delete;
        BusyMark& operator=(const BusyMark&) = delete;

    private:
        Impl& impl_;
        Connection* connection_;
    };

    Impl(asio::any_io_executor ex, const ServerSettings& s, TransportOptions o)
        : executor(std::move(ex)), settings(s), options(o),
          slots(executor, static_cast<std::size_t>(std::max(1, s.maxInFlight))),
          rng(std::random_device{}()) {
        settings.maxInFlight = std::max(1, s.maxInFlight);
        // The configuration checked llm.url with the same parser: a failure here
        // means a caller skipped it, and every call reports why instead.
        std::string problem;
        endpoint = parseServerUrl(s.url, &problem);
        if (!endpoint) {
            unusable = fmt::format("llm.url: {}", problem);
        } else if (endpoint->tls) {
            makeTlsContext();
        }
        for (int i = 0; i < settings.maxInFlight; ++i) {
            slots.try_send(boost::system::error_code{});
        }
    }

    asio::any_io_executor executor;
    ServerSettings settings;
    TransportOptions options;
    std::optional<ServerEndpoint> endpoint;
    std::optional<asio::ssl::context> tlsContext; ///< https only
    std::string unusable; ///< why no call can be made (a bad llm.url); empty: fine

    Slots slots;
    std::size_t inFlight = 0;
    std::size_t queued = 0;
    std::size_t open = 0;
    std::vector<ConnectionPtr> idle;
    std::set<Connection*> busy;
    std::set<asio::steady_timer*> waits;
    std::uint64_t generation = 0; ///< bumped by cancelAll(): calls of earlier ones stop
    std::mt19937 rng;
    std::uint64_t attempts = 0;
    std::uint64_t retries = 0;
    std::uint64_t opened = 0;
    std::uint64_t protocolErrors = 0; ///< responses or bytes that broke HTTP framing
    std::uint64_t burstErrors = 0;    ///< of them, in the current burst
    std::optional<Clock::time_point> lastProtocolError;
    Clock::time_point lastProtocolLog{};
    std::uint64_t stalls = 0; ///< responses slower than llm.min_response_rate
    std::uint64_t truncated = 0;

    /// Certificates are verified against llm.ca_file when set (a private CA,
    /// and only it), else against the system's store.
    void makeTlsContext() {
        tlsContext.emplace(asio::ssl::context::tls_client);
        boost::system::error_code ec;
        tlsContext->set_options(asio::ssl::context::default_workarounds |
                                    asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                    asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1,
                                ec);
        if (settings.caFile.empty()) {
            tlsContext->set_default_verify_paths(ec);
        } else {
            tlsContext->load_verify_file(settings.caFile, ec);
        }
        if (ec) {
            unusable =
                settings.caFile.empty()
                    ? fmt::format("cannot load the system's CA certificates: {}", ec.message())
                    : fmt::format("llm.ca_file \"{}\": cannot load: {}", settings.caFile,
                                  ec.message());
            return;
        }
        tlsContext->set_verify_mode(asio::ssl::verify_peer, ec);
    }

    /// SNI and the name (or address) the certificate must be for.
    boost::system::error_code prepareTls(Connection& conn) const {
        SSL* ssl = conn.tls->native_handle();
        boost::system::error_code addressEc;
        const auto address = asio::ip::make_address(endpoint->host, addressEc);
        if (addressEc) {
            // SNI is for names only (RFC 6066); OpenSSL checks the name itself.
            if (SSL_set_tlsext_host_name(ssl, endpoint->host.c_str()) != 1 ||
                SSL_set1_host(ssl, endpoint->host.c_str()) != 1) {
                return {static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()};
            }
        } else if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                 address.to_string().c_str()) != 1) {
            return {static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()};
        }
        return {};
    }

    // --- slots ------------------------------------------------------------

    asio::awaitable<std::optional<AnalysisError>> acquire(const HttpCall& call, Slot& slot,
                                                          std::uint64_t gen) {
        if (slots.try_receive([](boost::system::error_code) {})) {
            ++inFlight;
            slot = Slot(this);
            co_return std::nullopt;
        }
        if (queued >= options.maxQueued) {
            co_return makeError(AnalysisError::Kind::ConnectionFailed,
                                fmt::format("too many requests waiting for {} ({} queued, "
                                            "llm.max_in_flight {}); the server is too slow",
                                            settings.url, queued, settings.maxInFlight));
        }
        ++queued;
        asio::steady_timer timer(executor, call.deadline);
        const WaitMark mark(*this, timer);
        auto [order, received, expired] =
            co_await asio::experimental::make_parallel_group(slots.async_receive(asio::deferred),
                                                             timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        (void)order;
        (void)expired;
        --queued;
        if (!received) {
            // A token, even if the deadline or a cancellation came at the same moment.
            ++inFlight;
            slot = Slot(this);
            if (gen != generation || co_await stopRequested()) {
                slot.release();
                co_return makeError(AnalysisError::Kind::Cancelled,
                                    fmt::format("{}: cancelled", call.what));
            }
            co_return std::nullopt;
        }
        if (gen != generation || co_await stopRequested()) {
            co_return makeError(AnalysisError::Kind::Cancelled,
                                fmt::format("{}: cancelled", call.what));
        }
        co_return makeError(AnalysisError::Kind::Timeout,
                            fmt::format("no free request slot for {} within llm.timeout ({} ms; "
                                        "llm.max_in_flight {})",
                                        settings.url, settings.timeout.count(),
                                        settings.maxInFlight));
    }

    // --- one exchange -----------------------------------------------------

    /// A pooled connection, never one the server has written to since its
    /// last response: bytes nobody asked for would be read as the answer to
    /// the next request.
    ConnectionPtr takeIdle() {
        while (!idle.empty()) {
            ConnectionPtr c = std::move(idle.back());
            idle.pop_back();
            boost::system::error_code ec;
            const std::size_t unsolicited = c->tcp().socket().available(ec);
            if (!ec && unsolicited == 0) {
                return c;
            }
            // Under TLS the bytes may be the server's close_notify: closed, not blamed.
            if (!ec && !c->tls) {
                protocolViolation(fmt::format("{} bytes arrived on an idle connection that no "
                                              "request was waiting on",
                                              unsolicited));
            }
        }
        return nullptr;
    }

    /// Counts a response (or unsolicited bytes) that broke HTTP's framing, and
    /// says so in the log once per burst: at its first violation, then at most
    /// every ten minutes while it lasts. A burst ends after a minute without one.
    void protocolViolation(const std::string& what) {
        using namespace std::chrono_literals;
        ++protocolErrors;
        const Clock::time_point now = Clock::now();
        const bool newBurst = !lastProtocolError || now - *lastProtocolError >= 60s;
        lastProtocolError = now;
        burstErrors = newBurst ? 1 : burstErrors + 1;
        if (newBurst || now - lastProtocolLog >= 10min) {
            log::warning("model server {} broke HTTP framing: {}; the connection is closed and "
                         "never reused, the bytes discarded ({} in this burst, {} in all)",
                         settings.url, what, burstErrors, protocolErrors);
            lastProtocolLog = now;
        }
    }

    void keepIdle(ConnectionPtr c) {
        if (idle.size() < static_cast<std::size_t>(settings.maxInFlight)) {
            idle.push_back(std::move(c));
        }
    }

    /// Name resolution within \a by: getaddrinfo runs on Asio's resolver thread
    /// and cannot be interrupted, so the call stops waiting for it instead.
    asio::awaitable<std::pair<boost::system::error_code, tcp::resolver::results_type>>
    resolve(Clock::time_point by) {
        auto resolver = std::make_shared<tcp::resolver>(executor);
        auto done = std::make_shared<Resolved>(executor, 1);
        resolver->async_resolve(
            endpoint->host, endpoint->port,
            [resolver, done](boost::system::error_code ec, tcp::resolver::results_type results) {
                done->try_send(ec, std::move(results));
            });
        asio::steady_timer timer(executor, by);
        const WaitMark mark(*this, timer);
        auto [order, ec, results, expired] =
            co_await asio::experimental::make_parallel_group(done->async_receive(asio::deferred),
                                                             timer.async_wait(asio::deferred))
                .async_wait(asio::experimental::wait_for_one(), asio::use_awaitable);
        (void)expired;
        if (order[0] == 0 && !ec) {
            co_return std::pair{ec, std::move(results)};
        }
        resolver->cancel();
        if (order[0] == 0) {
            co_return std::pair{ec, tcp::resolver::results_type{}};
        }
        co_return std::pair{boost::system::error_code(beast::error::timeout),
                            tcp::resolver::results_type{}};
    }

    asio::awaitable<Failure> exchange(const HttpCall& call, ResponseReader& reader, bool fresh,
                                      HttpExchange& x) {
        Failure f;
        ConnectionPtr conn = fresh ? nullptr : takeIdle();
        f.reused = conn != nullptr;
        if (!conn) {
            f.phase = Phase::Connect;
            conn =
                std::make_unique<Connection>(executor, open, tlsContext ? &*tlsContext : nullptr);
            ++opened;
            const Clock::time_point connectBy = earliest(call.deadline, settings.connectTimeout);
            auto [rec, results] = co_await resolve(connectBy);
            if (rec) {
                f.ec = rec;
                co_return f;
            }
            conn->tcp().expires_at(connectBy);
            const BusyMark busyConnecting(*this, conn.get());
            auto [cec, ep] = co_await conn->tcp().async_connect(results, kUseTuple);
            (void)ep;
            if (cec) {
                f.ec = cec;
                co_return f;
            }
            boost::system::error_code ignored;
            conn->tcp().socket().set_option(tcp::no_delay(true), ignored);
            if (conn->tls) {
                // The handshake is part of connecting: same deadline (llm.connect_timeout
                // within the call's), same cancellation.
                f.phase = Phase::Handshake;
                if (auto pec = prepareTls(*conn)) {
                    f.ec = pec;
                    co_return f;
                }
                auto [hec] =
                    co_await conn->tls->async_handshake(asio::ssl::stream_base::client, kUseTuple);
                if (hec) {
                    const long verify = SSL_get_verify_result(conn->tls->native_handle());
                    if (verify != X509_V_OK) {
                        f.certificateProblem = X509_verify_cert_error_string(verify);
                    }
                    f.ec = hec;
                    co_return f;
                }
            }
        }
        const BusyMark busy(*this, conn.get());

        f.phase = Phase::Write;
        http::request<http::span_body<const char>> req{call.verb, endpoint->pathPrefix + call.path,
                                                       11};
        req.set(http::field::host, endpoint->hostHeader);
        req.set(http::field::user_agent, "dmsd/0.1");
        req.set(http::field::accept, "application/x-ndjson, application/json");
        if (!settings.apiKey.empty()) {
            req.set(http::field::authorization, "Bearer " + settings.apiKey);
        }
        if (call.body) {
            req.set(http::field::content_type, "application/json");
            req.body() = std::span<const char>(call.body->data(), call.body->size());
        }
        req.prepare_payload();
        conn->tcp().expires_at(call.deadline);
        {
            // No co_await inside a conditional expression: GCC 12 mishandles it.
            boost::system::error_code wec;
            if (conn->tls) {
                auto [tec, tn] = co_await http::async_write(*conn->tls, req, kUseTuple);
                (void)tn;
                wec = tec;
            } else {
                auto [pec, pn] = co_await http::async_write(conn->stream, req, kUseTuple);
                (void)pn;
                wec = pec;
            }
            if (wec) {
                f.ec = wec;
                co_return f;
            }
        }

        f.phase = Phase::FirstByte;
        co_await readResponse(call, *conn, reader, f, x);
        if (f.ec || f.dropped || !f.keepAlive || f.extraBytes > 0 || f.closeDelimited ||
            x.status < 200 || co_await stopRequested()) {
            co_return f; // the connection is closed with it
        }
        keepIdle(std::move(conn));
        co_return f;
    }

    /// When the read in progress must end: the call's deadline, the gap
    /// allowed between bytes, and the floor on the response's rate.
    struct ReadLimit {
        Clock::time_point at;
        enum class Kind { Deadline, FirstByte, Idle, Rate } kind = Kind::Deadline;
    };

    ReadLimit readLimit(const HttpCall& call, const std::optional<Clock::time_point>& firstByteAt,
                        std::size_t received) const {
        ReadLimit limit{call.deadline, ReadLimit::Kind::Deadline};
        auto tighten = [&](Clock::time_point at, ReadLimit::Kind kind) {
            if (at < limit.at) {
                limit = {at, kind};
            }
        };
        const Clock::time_point now = Clock::now();
        if (!firstByteAt) {
            if (settings.firstByteTimeout.count() > 0) {
                tighten(now + settings.firstByteTimeout, ReadLimit::Kind::FirstByte);
            }
            return limit;
        }
        if (settings.idleTimeout.count() > 0) {
            tighten(now + settings.idleTimeout, ReadLimit::Kind::Idle);
        }
        if (settings.minResponseRate > 0) {
            // The response must keep up with the floor from its first byte on,
            // after a grace of one second for the first bytes to arrive.
            const auto due = std::chrono::duration<double>(double(received + 1) /
                                                           double(settings.minResponseRate));
            tighten(*firstByteAt +
                        std::max<Clock::duration>(std::chrono::seconds(1),
                                                  std::chrono::duration_cast<Clock::duration>(due)),
                    ReadLimit::Kind::Rate);
        }
        return limit;
    }

    /// Reads one response byte by byte as they come (the parser is fed by
    /// hand, so that every byte counts for the rate floor and nothing beyond
    /// the response goes unnoticed).
    asio::awaitable<void> readResponse(const HttpCall& call, Connection& conn,
                                       ResponseReader& reader, Failure& f, HttpExchange& x) {
        http::response_parser<http::buffer_body> parser;
        parser.body_limit(settings.maxResponseBytes);
        parser.eager(true);
        std::array<char, 16384> chunk{};
        std::string lineBuffer;
        std::size_t received = 0;
        std::size_t bodyBytes = 0;
        bool lines = false;
        std::optional<Clock::time_point> firstByteAt;
        auto fail = [&](boost::system::error_code ec) {
            f.ec = ec;
        };
        while (!parser.is_done()) {
            // Whatever the buffer holds goes to the parser first.
            while (conn.buffer.size() > 0 && !parser.is_done()) {
                parser.get().body().data = chunk.data();
                parser.get().body().size = chunk.size();
                boost::system::error_code pec;
                const std::size_t used = parser.put(conn.buffer.data(), pec);
                conn.buffer.consume(used);
                if (pec == http::error::need_buffer) {
                    pec = {};
                }
                const bool needMore = pec == http::error::need_more;
                if (needMore) {
                    pec = {};
                }
                if (parser.is_header_done() && f.phase == Phase::FirstByte) {
                    f.phase = Phase::Body;
                    x.status = static_cast<int>(parser.get().result_int());
                    lines = reader.readsLines() && x.status >= 200 && x.status < 300;
                }
                const std::size_t got = chunk.size() - parser.get().body().size;
                if (got > 0 && !x.firstBodyByte) {
                    x.firstBodyByte = Clock::now();
                }
                bodyBytes += got;
                if (pec == http::error::body_limit || pec == http::error::header_limit ||
                    bodyBytes > settings.maxResponseBytes) {
                    f.tooLarge = true;
                    fail(http::error::body_limit);
                    co_return;
                }
                if (lines) {
                    lineBuffer.append(chunk.data(), got);
                    std::size_t start = 0;
                    for (std::size_t nl = lineBuffer.find('\n'); nl != std::string::npos;
                         nl = lineBuffer.find('\n', start)) {
                        if (!reader.line(std::string_view(lineBuffer).substr(start, nl - start))) {
                            f.dropped = true; // the rest is not worth reading; judge what came
                            f.phase = Phase::Done;
                            co_return;
                        }
                        start = nl + 1;
                    }
                    lineBuffer.erase(0, start);
                } else {
                    x.body.append(chunk.data(), got);
                }
                if (pec) {
                    if (pec.category() == httpErrors()) {
                        protocolViolation(fmt::format("malformed HTTP ({})", pec.message()));
                    }
                    fail(pec);
                    co_return;
                }
                if (needMore || (used == 0 && got == 0)) {
                    break; // needs more bytes than the buffer holds
                }
            }
            if (parser.is_done()) {
                break;
            }
            const ReadLimit limit = readLimit(call, firstByteAt, received);
            conn.tcp().expires_at(limit.at);
            boost::system::error_code rec;
            std::size_t n = 0;
            if (conn.tls) {
                auto [tec, tn] =
                    co_await conn.tls->async_read_some(conn.buffer.prepare(16384), kUseTuple);
                rec = tec;
                n = tn;
            } else {
                auto [pec, pn] =
                    co_await conn.stream.async_read_some(conn.buffer.prepare(16384), kUseTuple);
                rec = pec;
                n = pn;
            }
            if (rec == asio::ssl::error::stream_truncated) {
                rec = asio::error::eof; // a TLS peer closing without close_notify: the end of it
            }
            conn.buffer.commit(n);
            if (n > 0) {
                received += n;
                f.receivedAny = true;
                if (!firstByteAt) {
                    firstByteAt = Clock::now();
                }
            }
            if (rec == asio::error::eof && parser.need_eof()) {
                // A body delimited only by the connection's end cannot be told
                // from one cut short: framing that is not whole is not trusted.
                boost::system::error_code eofEc;
                parser.put_eof(eofEc);
                f.closeDelimited = true;
                protocolViolation("a body delimited only by closing the connection");
                f.phase = Phase::Done;
                co_return;
            }
            if (rec) {
                if (rec == beast::error::timeout && limit.kind == ReadLimit::Kind::Rate) {
                    f.stalled = true;
                    f.receivedBytes = received;
                    f.receivingFor =
                        std::chrono::duration_cast<milliseconds>(Clock::now() - *firstByteAt);
                    ++stalls;
                }
                fail(rec);
                co_return;
            }
        }
        if (lines && !lineBuffer.empty()) {
            f.dropped = !reader.line(lineBuffer);
        }
        f.phase = Phase::Done;
        f.keepAlive = parser.keep_alive();
        if (x.status < 200) {
            // An interim response (101 Switching Protocols, ...) where the answer
            // belongs: dmsd asked for no upgrade, and what follows is not HTTP.
            protocolViolation(
                fmt::format("an interim response (HTTP {}) in place of the answer", x.status));
        }
        // Bytes beyond the response, already read or waiting in the socket:
        // a server (or a proxy) that sends them is not telling where its
        // answers end, so none of what it sent is trusted.
        boost::system::error_code ec;
        // (Under TLS only what was decrypted counts: the socket may hold a
        // session ticket or close_notify, which are not HTTP.)
        f.extraBytes = conn.buffer.size() + (conn.tls ? 0 : conn.tcp().socket().available(ec));
        if (f.extraBytes > 0) {
            protocolViolation(fmt::format("{} bytes after a complete response", f.extraBytes));
        }
    }

    /// Describes a transport failure and how it may be retried.
    std::pair<AnalysisError, Retry> transportError(const Failure& f, const HttpCall& call) const {
        using K = AnalysisError::Kind;
        const std::string_view what = call.what;
        if (f.extraBytes > 0) {
            return {makeError(K::MalformedBody,
                              fmt::format("{}: {} sent {} bytes beyond its response; an answer "
                                          "whose end is not where its framing says is not trusted",
                                          what, settings.url, f.extraBytes)),
                    Retry::No};
        }
        if (f.closeDelimited) {
            return {makeError(K::MalformedBody,
                              fmt::format("{}: {} delimited its answer only by closing the "
                                          "connection (no Content-Length, not chunked): it cannot "
                                          "be told from an answer cut short, and is not trusted",
                                          what, settings.url)),
                    Retry::No};
        }
        if (f.stalled) {
            return {makeError(K::Timeout,
                              fmt::format("{}: answer from {} stalled: {} bytes in {} ms, below "
                                          "llm.min_response_rate ({} bytes/s)",
                                          what, settings.url, f.receivedBytes,
                                          f.receivingFor.count(), settings.minResponseRate)),
                    Retry::No};
        }
        if (f.tooLarge) {
            return {makeError(K::MalformedBody,
                              fmt::format("{}: response from {} larger than {} bytes "
                                          "(llm.max_response_bytes); connection closed",
                                          what, settings.url, settings.maxResponseBytes)),
                    Retry::No};
        }
        if (f.ec.category() == httpErrors()) { // Beast's parser: bad chunks, bad headers
            return {makeError(K::MalformedBody, fmt::format("{}: malformed HTTP answer from {}: {}",
                                                            what, settings.url, f.ec.message())),
                    Retry::No};
        }
        const bool timeout = f.ec == beast::error::timeout;
        const bool overall = timeout && Clock::now() >= call.deadline - milliseconds(1);
        // What the whole call's deadline is, for the messages of a call that spent it.
        const std::string deadline =
            call.deadlineText.empty() ? fmt::format("llm.timeout ({} ms)", settings.timeout.count())
                                      : call.deadlineText;
        switch (f.phase) {
        case Phase::Connect:
            if (timeout) {
                return {makeError(K::Timeout,
                                  fmt::format("{}: connecting to {} timed out after {} ms", what,
                                              settings.url, settings.connectTimeout.count())),
                        Retry::Backoff};
            }
            return {makeError(K::ConnectionFailed,
                              fmt::format("{}: cannot connect to the model server at {}: {}", what,
                                          settings.url, f.ec.message())),
                    Retry::Backoff};
        case Phase::Handshake:
            // A certificate refused, or no TLS server there: asking again
            // gives the same answer, so the call ends here.
            if (timeout) {
                return {makeError(K::Timeout,
                                  fmt::format("{}: TLS handshake with {} timed out after {} ms",
                                              what, settings.url, settings.connectTimeout.count())),
                        Retry::No};
            }
            if (!f.certificateProblem.empty()) {
                return {makeError(K::ConnectionFailed,
                                  fmt::format("{}: the certificate of {} was refused: {} ({})",
                                              what, settings.url, f.certificateProblem,
                                              settings.caFile.empty()
                                                  ? std::string("verified against the system's "
                                                                "CA store; set llm.ca_file for a "
                                                                "private CA")
                                                  : fmt::format("verified against llm.ca_file "
                                                                "\"{}\"",
                                                                settings.caFile))),
                        Retry::No};
            }
            return {makeError(K::ConnectionFailed,
                              fmt::format("{}: TLS handshake with {} failed: {} (is it an https "
                                          "server?)",
                                          what, settings.url, f.ec.message())),
                    Retry::No};
        case Phase::Write:
        case Phase::FirstByte:
            if (timeout) {
                return {makeError(K::Timeout,
                                  overall ? fmt::format("{}: no answer from {} within {}", what,
                                                        settings.url, deadline)
                                          : fmt::format("{}: no answer from {} within {} ms "
                                                        "(first byte)",
                                                        what, settings.url,
                                                        settings.firstByteTimeout.count())),
                        Retry::No};
            }
            if (!f.receivedAny) {
                // A pooled connection the server closed meanwhile (restart, idle close).
                return {makeError(K::ConnectionFailed,
                                  fmt::format("{}: connection to {} closed before an answer: {}",
                                              what, settings.url, f.ec.message())),
                        f.reused ? Retry::Stale : Retry::Backoff};
            }
            return {makeError(K::MalformedBody, fmt::format("{}: malformed HTTP answer from {}: {}",
                                                            what, settings.url, f.ec.message())),
                    Retry::No};
        case Phase::Body:
            if (timeout) {
                return {makeError(K::Timeout,
                                  overall ? fmt::format("{}: answer from {} not complete within {}",
                                                        what, settings.url, deadline)
                                          : fmt::format("{}: answer from {} stalled for more "
                                                        "than {} ms",
                                                        what, settings.url,
                                                        settings.idleTimeout.count())),
                        Retry::No};
            }
            return {makeError(K::ConnectionFailed,
                              fmt::format("{}: connection to {} lost in the middle of the "
                                          "answer: {}",
                                          what, settings.url, f.ec.message())),
                    Retry::Once};
        case Phase::Done:
            break;
        }
        return {makeError(K::ConnectionFailed, fmt::format("{}: {}", what, f.ec.message())),
                Retry::No};
    }

    // --- a call -------------------------------------------------------------

    asio::awaitable<HttpCallResult> run(HttpCall call, const ReaderFactory& makeReader) {
        co_await asio::this_coro::throw_if_cancelled(false);
        const Clock::time_point start = Clock::now();
        const std::uint64_t gen = generation;
        HttpCallResult out;
        auto cancelledError = [&] {
            return makeError(AnalysisError::Kind::Cancelled,
                             fmt::format("{}: cancelled", call.what));
        };
        if (!unusable.empty()) {
            out.error = makeError(AnalysisError::Kind::ConnectionFailed, unusable);
            co_return out;
        }
        bool staleRetried = false;
        bool onceUsed = false;
        bool fresh = false;
        milliseconds backoff = options.backoffInitial;
        while (true) {
            if (gen != generation || co_await stopRequested()) {
                out.error = cancelledError();
                break;
            }
            Slot slot;
            if (call.takesSlot) {
                // GCC 12 mishandles co_await in an if-initializer: keep it a statement.
                std::optional<AnalysisError> slotError = co_await acquire(call, slot, gen);
                if (slotError) {
                    out.error = std::move(slotError);
                    break;
                }
            }
            ++out.attempts;
            ++attempts;
            std::unique_ptr<ResponseReader> reader = makeReader();
            HttpExchange x;
            const Failure f = co_await exchange(call, *reader, fresh, x);
            slot.release();
            fresh = false;
            std::optional<std::pair<AnalysisError, Retry>> verdict;
            if (f.ec || f.extraBytes > 0 || f.closeDelimited) {
                verdict = transportError(f, call);
            } else {
                verdict = reader->judge(x);
            }
            if (!verdict) {
                out.reader = std::move(reader);
                out.exchange = std::move(x);
                break; // an answer that came is kept, even if a cancellation followed
            }
            if (gen != generation || co_await stopRequested()) {
                out.error = cancelledError();
                break;
            }
            auto [error, retry] = std::move(*verdict);
            if (retry == Retry::Stale && staleRetried) {
                retry = Retry::Backoff;
            }
            if (!call.retries && retry != Retry::Stale) {
                retry = Retry::No;
            }
            if (out.attempts >= options.maxAttempts) {
                retry = Retry::No;
            }
            if (retry == Retry::Stale) {
                staleRetried = true;
                fresh = true;
                ++retries;
                continue;
            }
            if (retry == Retry::Once && !onceUsed) {
                onceUsed = true;
                ++retries;
                log::debug("{}; retrying once", error.message);
                continue;
            }
            if (retry == Retry::Backoff) {
                std::uniform_real_distribution<double> jitter(0.5, 1.0);
                const auto delay = milliseconds(static_cast<std::int64_t>(
                    double(std::min(backoff, options.backoffMax).count()) * jitter(rng)));
                if (Clock::now() + delay < call.deadline) {
                    backoff *= 2;
                    ++retries;
                    asio::steady_timer timer(executor, delay);
                    const WaitMark mark(*this, timer);
                    co_await timer.async_wait(kUseTuple);
                    continue; // the loop's first check sees a cancellation
                }
            }
            if (out.attempts > 1) {
                error.message += fmt::format(" (after {} attempts)", out.attempts);
            }
            out.error = std::move(error);
            break;
        }
        out.latency = msSince(start);
        co_return out;
    }
};

// ---------------------------------------------------------------------------

HttpTransport::HttpTransport(asio::any_io_executor executor, ServerSettings settings,
                             TransportOptions options)
    : settings_(std::move(settings)),
      impl_(std::make_unique<Impl>(std::move(executor), settings_, options)) {
    settings_.maxInFlight = impl_->settings.maxInFlight;
}

HttpTransport::~HttpTransport() = default;

std::shared_ptr<HttpTransport> HttpTransport::create(asio::any_io_executor executor,
                                                     ServerSettings settings,
                                                     TransportOptions options) {
    return std::shared_ptr<HttpTransport>(
        new HttpTransport(std::move(executor), std::move(settings), options));
}

asio::awaitable<HttpCallResult> HttpTransport::call(HttpCall call, ReaderFactory makeReader) {
    auto self = shared_from_this(); // the call keeps the transport (and its pool) alive
    HttpCallResult out = co_await impl_->run(std::move(call), makeReader);
    co_return out;
}

void HttpTransport::cancelAll() {
    ++impl_->generation;
    impl_->idle.clear();
    boost::system::error_code ignored;
    for (Impl::Connection* connection : impl_->busy) {
        connection->tcp().socket().close(ignored);
    }
    for (asio::steady_timer* timer : impl_->waits) {
        timer->cancel();
    }
}

ClientStats HttpTransport::stats() const {
    ClientStats s;
    s.openConnections = impl_->open;
    s.idleConnections = impl_->idle.size();
    s.inFlight = impl_->inFlight;
    s.queued = impl_->queued;
    s.attempts = impl_->attempts;
    s.retries = impl_->retries;
    s.connectionsOpened = impl_->opened;
    s.protocolErrors = impl_->protocolErrors;
    s.stalledResponses = impl_->stalls;
    s.truncatedAnswers = impl_->truncated;
    return s;
}

void HttpTransport::countTruncated() {
    ++impl_->truncated;
}

asio::any_io_executor HttpTransport::executor() const {
    return impl_->executor;
}

void takePromptCounts(PromptMeasurement& measured, const ChatResult& withImage,
                      const ChatResult& textOnly, std::int64_t context, std::string_view url,
                      std::string_view remedy) {
    measured.withImageTokens = withImage.promptTokens;
    measured.textTokens = textOnly.promptTokens;
    if (context > 0 && measured.withImageTokens >= context) {
        measured.contextFull = true;
        measured.error = AnalysisError{
            AnalysisError::Kind::InvalidAnswer, 0,
            fmt::format("context budget: one image and the prompt fill the context of {} "
                        "tokens on {} ({} prompt tokens reported): what an image costs cannot "
                        "be measured; {}",
                        context, url, measured.withImageTokens, remedy)};
    }
}

std::string serverErrorText(std::string_view body, std::initializer_list<std::string_view> keys) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(body, ec);
    if (!ec && v.is_object()) {
        const boost::json::object& o = v.get_object();
        for (std::string_view key : keys) {
            const boost::json::value* e = o.if_contains(key);
            if (e == nullptr) {
                continue;
            }
            if (e->is_string()) {
                return std::string(e->get_string());
            }
            if (e->is_object()) {
                if (const boost::json::value* m = e->get_object().if_contains("message");
                    m != nullptr && m->is_string()) {
                    return std::string(m->get_string());
                }
            }
            return writeJson(*e);
        }
    }
    std::string text(body.substr(0, 300));
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) {
        text.pop_back();
    }
    return text;
}

} // namespace dmsd
