#pragma once

/// \file
/// HTTP/1.1 to the model server (Boost.Beast on the caller's io_context),
/// whatever its API: a keep-alive connection pool, `llm.max_in_flight`
/// request slots (an Asio channel of tokens, FIFO), a deadline on every phase
/// (name resolution, connect, write, first byte, gap between streamed lines,
/// the whole call), a response size cap, transport failures classified as
/// AnalysisError values, and retries within the call's deadline (a stale
/// pooled connection at once, 503 and connection failures with backoff, other
/// 5xx and a connection lost mid-answer once). A protocol (llm/ollama_client.h)
/// says what to send and reads the answers through a ResponseReader.
///
/// Cancellation is Asio's: cancelling the coroutine awaiting call() aborts
/// its slot wait, name resolution, I/O or backoff at once, and the connection
/// is closed rather than pooled. cancelAll() does the same to every call.
///
/// Threading: call on the io_context's thread; completions run there.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/verb.hpp>

#include "llm/answers.h"
#include "llm/model_client.h"
#include "llm/server_url.h"
#include "llm/settings.h"

namespace dmsd {

/// How a failed attempt may be retried.
enum class Retry {
    No,      ///< final
    Stale,   ///< on a fresh connection, at once (a pooled connection the server closed)
    Backoff, ///< after a growing, jittered delay (503, connection refused)
    Once,    ///< at once, once per call (other 5xx, a connection lost mid-answer)
};

/// A complete HTTP response as the transport received it.
struct HttpExchange {
    int status = 0;
    std::string body; ///< empty when the reader took the body line by line
    std::optional<std::chrono::steady_clock::time_point> firstBodyByte;
};

/// How a protocol reads the responses of one call: a fresh reader per attempt.
class ResponseReader {
public:
    virtual ~ResponseReader() = default;
    /// True: a 2xx body is handed to line() as it arrives (streamed NDJSON)
    /// instead of being collected in HttpExchange::body.
    virtual bool readsLines() const { return false; }
    /// One line of a 2xx body; false stops reading (the connection is dropped).
    virtual bool line(std::string_view /*line*/) { return true; }
    /// The verdict on a complete response: nullopt when it holds the answer,
    /// else the error in its place and how the call may be retried.
    virtual std::optional<std::pair<AnalysisError, Retry>> judge(const HttpExchange& exchange) = 0;
};

/// One call: a request, retried within its deadline.
struct HttpCall {
    boost::beast::http::verb verb = boost::beast::http::verb::post;
    std::string path;                        ///< "/api/chat"
    std::shared_ptr<const std::string> body; ///< JSON; null: none
    std::string what;                        ///< what is asked, for messages ("face_state")
    std::chrono::steady_clock::time_point deadline;
    /// What the deadline is, for the message when it passes; empty: llm.timeout.
    std::string deadlineText;
    bool takesSlot = true; ///< counts against max_in_flight (health checks do not)
    bool retries = true;   ///< false: only a stale pooled connection is retried
};

/// How a call ended.
struct HttpCallResult {
    std::unique_ptr<ResponseReader> reader; ///< the reader of the attempt that succeeded
    HttpExchange exchange;
    std::optional<AnalysisError> error; ///< set exactly when no attempt succeeded
    int attempts = 0;
    std::chrono::milliseconds latency{0};
};

/// Tuning beyond ServerSettings (defaults fit a local server).
struct TransportOptions {
    std::size_t maxQueued = 64;                   ///< calls waiting for a slot beyond max_in_flight
    std::chrono::milliseconds backoffInitial{50}; ///< doubled each time
    std::chrono::milliseconds backoffMax{1000};
    int maxAttempts = 6; ///< per call, all causes together
};

class HttpTransport : public std::enable_shared_from_this<HttpTransport> {
public:
    using ReaderFactory = std::function<std::unique_ptr<ResponseReader>()>;

    /// Never throws: a `llm.url` that llm/server_url.h refuses (the
    /// configuration checks it first) makes every call fail, naming it.
    static std::shared_ptr<HttpTransport> create(boost::asio::any_io_executor executor,
                                                 ServerSettings settings,
                                                 TransportOptions options = {});
    ~HttpTransport();
    HttpTransport(const HttpTransport&) = delete;
    HttpTransport& operator=(const HttpTransport&) = delete;

    /// Makes \a call, attempts read by readers from \a makeReader.
    boost::asio::awaitable<HttpCallResult> call(HttpCall call, ReaderFactory makeReader);

    /// Aborts every call (waiting, open or backing off) with Cancelled and
    /// closes every connection. The transport stays usable.
    void cancelAll();

    ClientStats stats() const;
    /// Counts an answer a protocol judged truncated (ClientStats::truncatedAnswers).
    void countTruncated();
    const ServerSettings& settings() const { return settings_; }
    boost::asio::any_io_executor executor() const;

    struct Impl;

private:
    HttpTransport(boost::asio::any_io_executor executor, ServerSettings settings,
                  TransportOptions options);
    ServerSettings settings_;
    std::unique_ptr<Impl> impl_;
};

using HttpTransportPtr = std::shared_ptr<HttpTransport>;

/// A chat call's outcome from what the transport returned: its error, or the
/// answer that the successful attempt's reader (a \a Reader, with result())
/// made; \a latency is the whole call's, retries included.
template <class Reader>
ChatOutcome chatOutcome(HttpCallResult sent, std::chrono::milliseconds latency) {
    ChatOutcome out;
    out.attempts = sent.attempts;
    out.latency = latency;
    if (sent.error) {
        out.error = std::move(sent.error);
        return out;
    }
    ChatResult result = std::move(static_cast<Reader&>(*sent.reader).result());
    result.attempts = sent.attempts;
    result.latency = latency;
    out.result = std::move(result);
    return out;
}

/// Takes the two prompt counts of a measurement (ModelClient::measurePrompt)
/// and refuses them as a figure when the one with the image reached
/// \a context (> 0): the server kept the prompt's tail, so the count is the
/// context, not the image. \a remedy ends the error's message.
void takePromptCounts(PromptMeasurement& measured, const ChatResult& withImage,
                      const ChatResult& textOnly, std::int64_t context, std::string_view url,
                      std::string_view remedy);

/// The server's error text from an error body: the first of \a keys in a
/// JSON object (a string, or an object's "message", else the value as JSON),
/// else the body itself, its first 300 bytes without trailing white space.
std::string serverErrorText(std::string_view body, std::initializer_list<std::string_view> keys);

} // namespace dmsd
