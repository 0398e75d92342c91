#include "test/emulator/emulator_server.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <list>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <unistd.h>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "test/emulator/go_compat.h"
#include "test/emulator/jpeg_probe.h"

namespace dmsd::emulator {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using asio::awaitable;
using asio::use_awaitable;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;
using boost::system::error_code;

namespace {

constexpr std::uint64_t kMaxRequestBody = 1ULL << 30; // Ollama has no limit; keep one anyway.
constexpr std::string_view kJsonType = "application/json; charset=utf-8";
constexpr std::string_view kTextType = "text/plain; charset=utf-8";
constexpr std::string_view kBusy =
    "server busy, please try again.  maximum pending requests exceeded";
constexpr std::string_view kRunnerStopped =
    "model runner has unexpectedly stopped, this may be due to resource limitations or an "
    "internal error, check ollama server logs for details";
constexpr std::string_view kMidstreamError =
    "an error was encountered while running the model: unexpected EOF";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && lower(a) == lower(b);
}

bool isBlank(std::string_view s) {
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; });
}

/// Go's encoding/json matches keys case-insensitively; the last duplicate wins.
const json::value* field(const json::object& o, std::string_view name) {
    const json::value* found = nullptr;
    for (const auto& kv : o) {
        if (iequals(kv.key(), name)) {
            found = &kv.value();
        }
    }
    return found;
}

std::string httpDate() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::size_t n = std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(buf, n);
}

/// {"key": value}. Built outside coroutines: GCC 12 rejects braced
/// initialisers holding string literals inside a coroutine body.
json::object singleField(std::string_view key, json::value value) {
    json::object o;
    o[key] = std::move(value);
    return o;
}

double roundMs(double ms) {
    return std::round(ms * 1000.0) / 1000.0;
}

std::int64_t toNs(double ms) {
    return static_cast<std::int64_t>(ms * 1e6);
}

/// UTF-8 aware split of \a text into pieces of \a chars code points ("tokens").
std::vector<std::string> splitPieces(const std::string& text, std::size_t chars) {
    std::vector<std::string> pieces;
    std::string current;
    std::size_t count = 0;
    for (std::size_t i = 0; i < text.size();) {
        std::size_t len = 1;
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c >= 0xF0) {
            len = 4;
        } else if (c >= 0xE0) {
            len = 3;
        } else if (c >= 0xC0) {
            len = 2;
        }
        len = std::min(len, text.size() - i);
        current.append(text, i, len);
        i += len;
        if (++count == chars) {
            pieces.push_back(std::move(current));
            current.clear();
            count = 0;
        }
    }
    if (!current.empty()) {
        pieces.push_back(std::move(current));
    }
    return pieces;
}

std::size_t codePoints(std::string_view s) {
    return static_cast<std::size_t>(std::count_if(
        s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

std::array<int, 3> parseVersion(std::string_view v) {
    std::array<int, 3> out{};
    std::size_t part = 0;
    for (char c : v) {
        if (c >= '0' && c <= '9') {
            out[part] = out[part] * 10 + (c - '0');
        } else if (c == '.') {
            if (++part == 3) {
                break;
            }
        } else {
            break;
        }
    }
    return out;
}

bool versionAtLeast(std::string_view v, std::array<int, 3> min) {
    return parseVersion(v) >= min;
}

std::uint64_t fnv1a(std::string_view s) {
    std::uint64_t h = 1469598103934665603ULL;
    for (char c : s) {
        h ^= static_cast<unsigned char>(c);
        h *= 1099511628211ULL;
    }
    return h;
}

std::string fakeDigest(std::string_view name) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    std::uint64_t h = fnv1a(name);
    for (int i = 0; i < 64; ++i) {
        if (i % 16 == 0) {
            h = fnv1a(std::string(name) + std::to_string(i) + std::to_string(h));
        }
        out += hex[(h >> ((i % 16) * 4)) & 0xF];
    }
    return out;
}

/// Architecture/family as Ollama reports it for a few known names.
std::string architectureOf(std::string_view modelName) {
    std::string base = lower(modelName.substr(0, modelName.find(':')));
    if (auto slash = base.rfind('/'); slash != std::string::npos) {
        base = base.substr(slash + 1);
    }
    if (base.rfind("llama3.2-vision", 0) == 0) {
        return "mllama";
    }
    if (base.rfind("llava", 0) == 0 || base.rfind("llama", 0) == 0) {
        return "llama";
    }
    if (base.rfind("qwen2.5vl", 0) == 0) {
        return "qwen25vl";
    }
    if (base.rfind("qwen3-vl", 0) == 0) {
        return "qwen3vl";
    }
    std::string arch;
    for (char c : base) {
        if (std::isalnum(static_cast<unsigned char>(c)) == 0) {
            break;
        }
        arch += c;
    }
    return arch.empty() ? "llama" : arch;
}

/// A coroutine waiting for a grant: a timer that never expires, cancelled to wake it.
struct Waiter {
    explicit Waiter(const asio::any_io_executor& ex) : timer(ex, Clock::time_point::max()) {}
    asio::steady_timer timer;
    bool granted = false;
};

/// Waits on \a w; throws operation_aborted when cancelled before being granted.
/// \a onAbandon runs if the wait ends (cancelled or unwound) without a grant.
template <class OnAbandon>
awaitable<void> waitGranted(std::shared_ptr<Waiter> w, OnAbandon onAbandon) {
    struct Guard {
        std::shared_ptr<Waiter> w;
        OnAbandon& onAbandon;
        bool done = false;
        ~Guard() {
            if (!done) {
                onAbandon(w->granted);
            }
        }
    } guard{w, onAbandon};
    error_code ec;
    co_await w->timer.async_wait(asio::redirect_error(use_awaitable, ec));
    if (!w->granted) {
        throw boost::system::system_error(asio::error::operation_aborted);
    }
    guard.done = true;
}

/// FIFO counting semaphore for coroutines on one thread (Ollama's
/// golang.org/x/sync/semaphore: unbounded FIFO waiting, cancellable).
class FifoSemaphore {
public:
    explicit FifoSemaphore(std::size_t capacity) : capacity_(capacity) {}

    awaitable<void> acquire() {
        if (waiters_.empty() && inUse_ < capacity_) {
            ++inUse_;
            co_return;
        }
        auto w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
        waiters_.push_back(w);
        auto it = std::prev(waiters_.end());
        auto onAbandon = [this, it](bool granted) {
            if (granted) {
                release(); // granted and cancelled at once: pass the unit on
            } else {
                waiters_.erase(it);
            }
        };
        co_await waitGranted(w, onAbandon);
    }

    void release() {
        if (inUse_ > 0) {
            --inUse_;
        }
        pump();
    }

    void setCapacity(std::size_t capacity) {
        capacity_ = capacity;
        pump();
    }

    std::size_t inUse() const { return inUse_; }
    std::size_t waiting() const { return waiters_.size(); }

private:
    void pump() {
        while (inUse_ < capacity_ && !waiters_.empty()) {
            auto w = waiters_.front();
            waiters_.pop_front();
            ++inUse_;
            w->granted = true;
            w->timer.cancel();
        }
    }

    std::size_t capacity_;
    std::size_t inUse_ = 0;
    std::list<std::shared_ptr<Waiter>> waiters_;
};

/// Releases one semaphore unit when destroyed (also when a cancelled coroutine unwinds).
class SemaphoreLease {
public:
    explicit SemaphoreLease(FifoSemaphore* s) : s_(s) {}
    SemaphoreLease(SemaphoreLease&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    SemaphoreLease& operator=(SemaphoreLease&&) = delete;
    ~SemaphoreLease() {
        if (s_ != nullptr) {
            s_->release();
        }
    }

private:
    FifoSemaphore* s_;
};

/// Broadcast event: every waiter wakes on notifyAll().
class AsyncEvent {
public:
    awaitable<void> wait() {
        auto w = std::make_shared<Waiter>(co_await asio::this_coro::executor);
        waiters_.push_back(w);
        auto it = std::prev(waiters_.end());
        auto onAbandon = [this, it](bool granted) {
            if (!granted) {
                waiters_.erase(it);
            }
        };
        co_await waitGranted(w, onAbandon);
    }
    void notifyAll() {
        auto all = std::move(waiters_);
        waiters_.clear();
        for (auto& w : all) {
            w->granted = true;
            w->timer.cancel();
        }
    }

private:
    std::list<std::shared_ptr<Waiter>> waiters_;
};

/// Increments a counter for the lifetime of the guard.
class CountGuard {
public:
    explicit CountGuard(std::int64_t& c) : c_(&c) { ++*c_; }
    CountGuard(const CountGuard&) = delete;
    CountGuard& operator=(const CountGuard&) = delete;
    ~CountGuard() { --*c_; }

private:
    std::int64_t* c_;
};

struct ModelState {
    ModelState(ModelSpec s, std::size_t slotCount) : spec(std::move(s)), slots(slotCount) {}
    ModelSpec spec;
    std::string arch;
    bool loaded = false;
    bool reloadPending = false;
    std::string runnerKey; ///< the load-time options the runner was loaded with
    int refCount = 0;
    std::chrono::nanoseconds sessionDuration{0};
    std::optional<Clock::time_point> expiresAt; ///< set while idle; nullopt = busy or forever
    FifoSemaphore slots;
    AsyncEvent idle;
};

struct ChatMessage {
    std::string role;
    std::string content;
    std::vector<std::string> images; ///< decoded bytes
};

struct ChatRequest {
    std::string model;
    std::vector<ChatMessage> messages;
    bool stream = true;
    const json::value* format = nullptr; ///< nullptr: unset (absent, null or "")
    const json::object* options = nullptr;
    std::optional<std::chrono::nanoseconds> keepAlive; ///< nanoseconds::max() = forever
    bool think = false;
    bool hasTools = false;
    // The OpenAI route's options and schema, in Ollama's terms (options and
    // format point here; the request is never copied).
    json::object ownedOptions;
    json::value ownedFormat;
};

std::string cannotUnmarshal(const json::value& v, std::string_view goField,
                            std::string_view goType) {
    return "json: cannot unmarshal " + std::string(goJsonKind(v)) + " into Go struct field " +
           std::string(goField) + " of type " + std::string(goType);
}

/// Decodes a ChatRequest like Go's json.Decoder into api.ChatRequest; returns the error text.
std::string decodeChat(const json::object& o, ChatRequest& cr) {
    if (const auto* v = field(o, "model"); v && !v->is_null()) {
        if (!v->is_string()) {
            return cannotUnmarshal(*v, "ChatRequest.model", "string");
        }
        cr.model = std::string(v->get_string());
    }
    if (const auto* v = field(o, "stream"); v && !v->is_null()) {
        if (!v->is_bool()) {
            return cannotUnmarshal(*v, "ChatRequest.stream", "bool");
        }
        cr.stream = v->get_bool();
    }
    if (const auto* v = field(o, "format"); v && !v->is_null()) {
        if (!(v->is_string() && v->get_string().empty())) {
            cr.format = v;
        }
    }
    if (const auto* v = field(o, "options"); v && !v->is_null()) {
        if (!v->is_object()) {
            return cannotUnmarshal(*v, "ChatRequest.options", "map[string]interface {}");
        }
        cr.options = &v->get_object();
    }
    if (const auto* v = field(o, "keep_alive"); v && !v->is_null()) {
        if (v->is_number()) {
            double seconds = v->to_number<double>();
            cr.keepAlive = seconds < 0
                               ? std::chrono::nanoseconds::max()
                               : std::chrono::nanoseconds(static_cast<std::int64_t>(seconds * 1e9));
        } else if (v->is_string()) {
            std::string error;
            auto d = parseGoDuration(v->get_string(), error);
            if (!d) {
                return error;
            }
            cr.keepAlive = d->count() < 0 ? std::chrono::nanoseconds::max() : *d;
        } else {
            std::string goType = v->is_bool()    ? "bool"
                                 : v->is_array() ? "[]interface {}"
                                                 : "map[string]interface {}";
            return "Unsupported type: '" + goType + "'";
        }
    }
    if (const auto* v = field(o, "think"); v && !v->is_null()) {
        if (v->is_bool()) {
            cr.think = v->get_bool();
        } else if (v->is_string()) {
            std::string level(v->get_string());
            if (level != "high" && level != "medium" && level != "low" && level != "max") {
                return "invalid think value: \"" + level +
                       "\" (must be \"high\", \"medium\", \"low\", true, or false)";
            }
            cr.think = true;
        } else {
            return "think must be a boolean or string";
        }
    }
    if (const auto* v = field(o, "tools"); v && !v->is_null()) {
        if (!v->is_array()) {
            return cannotUnmarshal(*v, "ChatRequest.tools", "api.Tools");
        }
        cr.hasTools = !v->get_array().empty();
    }
    if (const auto* v = field(o, "messages"); v && !v->is_null()) {
        if (!v->is_array()) {
            return cannotUnmarshal(*v, "ChatRequest.messages", "[]api.Message");
        }
        for (const auto& m : v->get_array()) {
            if (!m.is_object()) {
                return cannotUnmarshal(m, "ChatRequest.messages", "api.Message");
            }
            ChatMessage msg;
            const auto& mo = m.get_object();
            if (const auto* r = field(mo, "role"); r && !r->is_null()) {
                if (!r->is_string()) {
                    return cannotUnmarshal(*r, "Message.messages.role", "string");
                }
                msg.role = lower(r->get_string());
            }
            if (const auto* c = field(mo, "content"); c && !c->is_null()) {
                if (!c->is_string()) {
                    return cannotUnmarshal(*c, "Message.messages.content", "string");
                }
                msg.content = std::string(c->get_string());
            }
            if (const auto* imgs = field(mo, "images"); imgs && !imgs->is_null()) {
                if (!imgs->is_array()) {
                    return cannotUnmarshal(*imgs, "Message.messages.images", "[]api.ImageData");
                }
                for (const auto& img : imgs->get_array()) {
                    if (!img.is_string()) {
                        return cannotUnmarshal(img, "Message.messages.images", "api.ImageData");
                    }
                    std::string bytes;
                    auto r = decodeBase64Std(img.get_string(), bytes);
                    if (!r.ok) {
                        return "illegal base64 data at input byte " + std::to_string(r.errorByte);
                    }
                    msg.images.push_back(std::move(bytes));
                }
            }
            cr.messages.push_back(std::move(msg));
        }
    }
    return {};
}

/// Decodes an OpenAI `/v1/chat/completions` body into the same ChatRequest:
/// content parts (text, image_url data URLs), response_format (json_schema
/// or json_object), max_tokens/temperature/top_p/seed as Ollama options.
/// Returns the error text (answered 400 as OpenAI-compatible servers do).
std::string decodeOpenAiChat(const json::object& o, ChatRequest& cr) {
    cr.stream = false;
    if (const auto* v = o.if_contains("model"); v && !v->is_null()) {
        if (!v->is_string()) {
            return "'model' must be a string";
        }
        cr.model = std::string(v->get_string());
    }
    if (const auto* v = o.if_contains("stream"); v && !v->is_null()) {
        if (!v->is_bool()) {
            return "'stream' must be a boolean";
        }
        if (v->get_bool()) {
            return "streaming is not emulated on /v1/chat/completions";
        }
    }
    if (const auto* v = o.if_contains("response_format"); v && !v->is_null()) {
        const json::object* rf = v->if_object();
        const json::value* type = rf != nullptr ? rf->if_contains("type") : nullptr;
        if (type == nullptr || !type->is_string()) {
            return "'response_format.type' is required";
        }
        if (type->get_string() == "json_schema") {
            const json::value* js = rf->if_contains("json_schema");
            const json::value* schema = (js != nullptr && js->is_object())
                                            ? js->get_object().if_contains("schema")
                                            : nullptr;
            if (schema == nullptr || !schema->is_object()) {
                return "'response_format.json_schema.schema' must be an object";
            }
            cr.ownedFormat = *schema;
            cr.format = &cr.ownedFormat;
        } else if (type->get_string() == "json_object") {
            cr.ownedFormat = "json";
            cr.format = &cr.ownedFormat;
        } else if (type->get_string() != "text") {
            return "'response_format.type' must be one of text, json_object, json_schema";
        }
    }
    for (auto [from, to] :
         {std::pair<std::string_view, std::string_view>{"max_tokens", "num_predict"},
          {"max_completion_tokens", "num_predict"},
          {"temperature", "temperature"},
          {"top_p", "top_p"},
          {"seed", "seed"}}) {
        if (const auto* v = o.if_contains(from); v && !v->is_null()) {
            if (!v->is_number()) {
                return "'" + std::string(from) + "' must be a number";
            }
            cr.ownedOptions[to] = *v;
        }
    }
    cr.options = &cr.ownedOptions;
    const auto* messages = o.if_contains("messages");
    if (messages == nullptr || !messages->is_array() || messages->get_array().empty()) {
        return "'messages' must be a non-empty array";
    }
    for (const auto& m : messages->get_array()) {
        if (!m.is_object()) {
            return "each message must be an object";
        }
        ChatMessage msg;
        const auto& mo = m.get_object();
        if (const auto* r = mo.if_contains("role"); r && r->is_string()) {
            msg.role = lower(r->get_string());
        } else {
            return "each message needs a 'role'";
        }
        const auto* c = mo.if_contains("content");
        if (c != nullptr && c->is_string()) {
            msg.content = std::string(c->get_string());
        } else if (c != nullptr && c->is_array()) {
            for (const auto& part : c->get_array()) {
                const json::object* po = part.if_object();
                const json::value* type = po != nullptr ? po->if_contains("type") : nullptr;
                if (type == nullptr || !type->is_string()) {
                    return "each content part needs a 'type'";
                }
                if (type->get_string() == "text") {
                    const json::value* t = po->if_contains("text");
                    if (t == nullptr || !t->is_string()) {
                        return "a text part needs 'text'";
                    }
                    if (!msg.content.empty()) {
                        msg.content += '\n';
                    }
                    msg.content += std::string(t->get_string());
                } else if (type->get_string() == "image_url") {
                    const json::value* iu = po->if_contains("image_url");
                    const json::value* url = iu == nullptr     ? nullptr
                                             : iu->is_string() ? iu
                                             : iu->is_object() ? iu->get_object().if_contains("url")
                                                               : nullptr;
                    if (url == nullptr || !url->is_string()) {
                        return "an image_url part needs 'image_url.url'";
                    }
                    const std::string_view text = url->get_string();
                    const auto comma = text.find(',');
                    if (!text.starts_with("data:") || comma == std::string_view::npos ||
                        text.substr(0, comma).find(";base64") == std::string_view::npos) {
                        return "only data:...;base64, image URLs are accepted (no downloads)";
                    }
                    std::string bytes;
                    auto r = decodeBase64Std(text.substr(comma + 1), bytes);
                    if (!r.ok) {
                        return "invalid base64 image data at byte " + std::to_string(r.errorByte);
                    }
                    msg.images.push_back(std::move(bytes));
                } else {
                    return "unsupported content part type '" + std::string(type->get_string()) +
                           "'";
                }
            }
        } else if (c != nullptr && !c->is_null()) {
            return "'content' must be a string or an array of parts";
        }
        cr.messages.push_back(std::move(msg));
    }
    return {};
}

enum class OptionType { Int, Float, Bool, Strings };

/// Validates option value types like api.Options.FromMap; returns the error text.
std::string checkOptionTypes(const json::object* options) {
    if (options == nullptr) {
        return {};
    }
    static const std::map<std::string, OptionType> known = {
        {"num_keep", OptionType::Int},
        {"seed", OptionType::Int},
        {"num_predict", OptionType::Int},
        {"top_k", OptionType::Int},
        {"repeat_last_n", OptionType::Int},
        {"num_ctx", OptionType::Int},
        {"num_batch", OptionType::Int},
        {"num_gpu", OptionType::Int},
        {"main_gpu", OptionType::Int},
        {"num_thread", OptionType::Int},
        {"temperature", OptionType::Float},
        {"top_p", OptionType::Float},
        {"min_p", OptionType::Float},
        {"typical_p", OptionType::Float},
        {"repeat_penalty", OptionType::Float},
        {"presence_penalty", OptionType::Float},
        {"frequency_penalty", OptionType::Float},
        {"use_mmap", OptionType::Bool},
        {"stop", OptionType::Strings},
    };
    for (const auto& kv : *options) {
        auto it = known.find(std::string(kv.key()));
        if (it == known.end() || kv.value().is_null()) {
            continue; // unknown options are ignored (logged by Ollama)
        }
        const auto& v = kv.value();
        const std::string name = "option \"" + std::string(kv.key()) + "\" must be of type ";
        switch (it->second) {
        case OptionType::Int:
            if (!v.is_number()) {
                return name + "integer";
            }
            break;
        case OptionType::Float:
            if (!v.is_number()) {
                return name + "float32";
            }
            break;
        case OptionType::Bool:
            if (!v.is_bool()) {
                return name + "boolean";
            }
            break;
        case OptionType::Strings:
            if (!v.is_array()) {
                return name + "array";
            }
            for (const auto& s : v.get_array()) {
                if (!s.is_string()) {
                    return name + "array of strings";
                }
            }
            break;
        }
    }
    return {};
}

std::int64_t intOption(const json::object* options, std::string_view key, std::int64_t fallback) {
    if (options == nullptr) {
        return fallback;
    }
    const auto* v = options->if_contains(key);
    if (v == nullptr || !v->is_number()) {
        return fallback;
    }
    return static_cast<std::int64_t>(v->to_number<double>());
}

/// Per-request record: the log line and the stats come from it.
struct RequestRecord {
    std::uint64_t id = 0;
    bool internal = false; ///< /_emulator/*: not logged
    bool logged = false;
    std::string method;
    std::string path;
    double tArrival = 0;
    std::optional<double> tStart;
    double tEnd = 0;
    int status = 0;
    std::string error;
    // /api/chat and /v1/chat/completions only
    bool chat = false;
    bool openai = false;           ///< asked on /v1/chat/completions
    std::int64_t promptTokens = 0; ///< reported (after truncation)
    bool truncated = false;        ///< the prompt did not fit the context: its head was cut
    int imagesDropped = 0;         ///< images cut with it
    int imagesIgnored = 0;         ///< images a last-image-only model did not see
    std::string analysis;
    std::string model;
    bool stream = true;
    bool loadOnly = false;
    int images = 0;
    std::vector<std::size_t> imageBytes;
    std::optional<Rgb> meanRgb;
    int concurrency = 0;
    Fault fault = Fault::None;
    bool cancelled = false;
    bool closedByServer = false;
    bool coldLoad = false;
    double loadMs = 0;
    std::string prompt;
    std::size_t promptChars = 0;
    std::vector<std::string> promptMentions;
    std::vector<int> rules;
    std::string doneReason;
    std::size_t answerChars = 0;
};

} // namespace

class EmulatorServer::Impl {
public:
    Impl(asio::io_context& io, EmulatorConfig config, AnswerScript script)
        : io_(io), cfg_(std::move(config)), script_(std::move(script)), acceptor_(io),
          tlsAcceptor_(io), rng_(cfg_.seed), start_(Clock::now()) {
        if (!cfg_.tlsCert.empty()) {
            tls_.emplace(asio::ssl::context::tls_server);
            error_code ec;
            tls_->use_certificate_chain_file(cfg_.tlsCert, ec);
            if (ec) {
                throw std::runtime_error("--tls-cert " + cfg_.tlsCert + ": " + ec.message());
            }
            tls_->use_private_key_file(cfg_.tlsKey, asio::ssl::context::pem, ec);
            if (ec) {
                throw std::runtime_error("--tls-key " + cfg_.tlsKey + ": " + ec.message());
            }
        }
        if (!cfg_.logPath.empty()) {
            log_.open(cfg_.logPath, std::ios::out | std::ios::trunc);
            if (!log_) {
                throw std::runtime_error("cannot open log file " + cfg_.logPath + " for writing");
            }
        }
        std::string error;
        auto ka = parseGoDuration(cfg_.keepAlive, error);
        if (!ka) {
            throw std::runtime_error("--keep-alive: " + error);
        }
        defaultKeepAlive_ = ka->count() < 0 ? std::chrono::nanoseconds::max() : *ka;
        for (const auto& spec : cfg_.models) {
            auto m = std::make_unique<ModelState>(spec, static_cast<std::size_t>(cfg_.slots));
            m->arch = architectureOf(spec.name);
            if (cfg_.preloaded) {
                m->loaded = true;
                m->runnerKey = runnerKey(*m, nullptr);
                m->sessionDuration = defaultKeepAlive_;
                m->expiresAt = expiryFromNow(defaultKeepAlive_);
            }
            models_.push_back(std::move(m));
        }
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) == 0) {
            hostname_ = lower(host);
        }
        modifiedAt_ = rfc3339Nano(std::chrono::system_clock::now() - std::chrono::hours(24));
    }

    std::uint16_t listen() {
        error_code ec;
        auto address = asio::ip::make_address(cfg_.host, ec);
        if (ec) {
            throw std::runtime_error("--host " + cfg_.host + ": not an IP address");
        }
        hostCheck_ = address.is_loopback();
        if (tls_) {
            // https: TLS is terminated in front of the plain server, which
            // listens on a loopback port of its own (as behind a TLS proxy).
            bindOn(tlsAcceptor_, tcp::endpoint(address, cfg_.port));
            bindOn(acceptor_, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
            innerPort_ = acceptor_.local_endpoint().port();
            return tlsAcceptor_.local_endpoint().port();
        }
        bindOn(acceptor_, tcp::endpoint(address, cfg_.port));
        return acceptor_.local_endpoint().port();
    }

    void bindOn(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
        error_code ec;
        acceptor.open(endpoint.protocol(), ec);
        if (!ec) {
            acceptor.set_option(asio::socket_base::reuse_address(true), ec);
            acceptor.bind(endpoint, ec);
        }
        if (!ec) {
            acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (ec) {
            throw std::runtime_error("cannot listen on " + endpoint.address().to_string() + ":" +
                                     std::to_string(endpoint.port()) + ": " + ec.message());
        }
    }

    void start() {
        if (tls_) {
            asio::co_spawn(io_, tlsAcceptLoop(), asio::detached);
        }
        asio::co_spawn(io_, acceptLoop(), [](std::exception_ptr e) {
            if (e) {
                try {
                    std::rethrow_exception(e);
                } catch (const std::exception& ex) {
                    std::cerr << "ollama-emulator: accept loop ended: " << ex.what() << '\n';
                }
            }
        });
    }

    void shutdown() {
        stopping_ = true;
        error_code ec;
        acceptor_.close(ec);
        tlsAcceptor_.close(ec);
        for (auto* s : sockets_) {
            s->shutdown(tcp::socket::shutdown_both, ec);
            s->close(ec);
        }
    }

private:
    // ---------------------------------------------------------------- plumbing

    double nowMs() const {
        return std::chrono::duration<double, std::milli>(Clock::now() - start_).count();
    }

    std::optional<Clock::time_point> expiryFromNow(std::chrono::nanoseconds d) const {
        if (d == std::chrono::nanoseconds::max()) {
            return std::nullopt;
        }
        return Clock::now() + d;
    }

    awaitable<void> sleepMs(double ms) {
        if (ms <= 0) {
            co_return;
        }
        asio::steady_timer t(co_await asio::this_coro::executor);
        t.expires_after(std::chrono::microseconds(static_cast<std::int64_t>(ms * 1000)));
        co_await t.async_wait(use_awaitable);
    }

    awaitable<void> sleepForever() {
        asio::steady_timer t(co_await asio::this_coro::executor, Clock::time_point::max());
        co_await t.async_wait(use_awaitable);
    }

    awaitable<void> acceptLoop() {
        for (;;) {
            error_code ec;
            tcp::socket sock =
                co_await acceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
            if (ec) {
                if (stopping_ || ec == asio::error::operation_aborted) {
                    co_return;
                }
                continue;
            }
            sock.set_option(tcp::no_delay(true), ec);
            asio::co_spawn(io_, session(std::move(sock)), [](std::exception_ptr e) {
                if (e) {
                    try {
                        std::rethrow_exception(e);
                    } catch (const std::exception& ex) {
                        std::cerr << "ollama-emulator: connection ended: " << ex.what() << '\n';
                    }
                }
            });
        }
    }

    awaitable<void> tlsAcceptLoop() {
        for (;;) {
            error_code ec;
            tcp::socket sock =
                co_await tlsAcceptor_.async_accept(asio::redirect_error(use_awaitable, ec));
            if (ec) {
                if (stopping_ || ec == asio::error::operation_aborted) {
                    co_return;
                }
                continue;
            }
            sock.set_option(tcp::no_delay(true), ec);
            asio::co_spawn(io_, tlsSession(std::move(sock)), asio::detached);
        }
    }

    /// One https connection: the handshake, then its bytes both ways to the
    /// plain server until either side closes (which closes the other: a
    /// client going away still cancels its request).
    awaitable<void> tlsSession(tcp::socket sock) {
        using namespace asio::experimental::awaitable_operators;
        asio::ssl::stream<tcp::socket> outer(std::move(sock), *tls_);
        tcp::socket inner(io_);
        sockets_.insert(&outer.next_layer());
        sockets_.insert(&inner);
        struct Erase {
            std::set<tcp::socket*>& set;
            tcp::socket* a;
            tcp::socket* b;
            ~Erase() {
                set.erase(a);
                set.erase(b);
            }
        } erase{sockets_, &outer.next_layer(), &inner};
        error_code ec;
        co_await outer.async_handshake(asio::ssl::stream_base::server,
                                       asio::redirect_error(use_awaitable, ec));
        if (ec) {
            ++tlsHandshakeFailures_;
            co_return;
        }
        co_await inner.async_connect(tcp::endpoint(asio::ip::address_v4::loopback(), innerPort_),
                                     asio::redirect_error(use_awaitable, ec));
        if (!ec) {
            co_await (pipe(outer, inner) || pipe(inner, outer));
        }
        error_code ignored;
        inner.close(ignored);
        outer.next_layer().close(ignored);
    }

    template <class From, class To>
    awaitable<void> pipe(From& from, To& to) {
        std::array<char, 16384> data{};
        for (;;) {
            error_code ec;
            const std::size_t n = co_await from.async_read_some(
                asio::buffer(data), asio::redirect_error(use_awaitable, ec));
            if (n > 0) {
                error_code wec;
                co_await asio::async_write(to, asio::buffer(data.data(), n),
                                           asio::redirect_error(use_awaitable, wec));
                if (wec) {
                    co_return;
                }
            }
            if (ec) {
                co_return;
            }
        }
    }

    awaitable<void> session(tcp::socket sock) {
        sockets_.insert(&sock);
        struct Erase {
            std::set<tcp::socket*>& set;
            tcp::socket* s;
            ~Erase() { set.erase(s); }
        } erase{sockets_, &sock};
        beast::flat_buffer buffer;
        while (!stopping_) {
            http::request_parser<http::string_body> parser;
            parser.body_limit(kMaxRequestBody);
            error_code ec;
            co_await http::async_read_header(sock, buffer, parser,
                                             asio::redirect_error(use_awaitable, ec));
            if (ec) {
                break;
            }
            if (iequals(parser.get()[http::field::expect], "100-continue")) {
                http::response<http::empty_body> cont{http::status::continue_, 11};
                co_await http::async_write(sock, cont, asio::redirect_error(use_awaitable, ec));
                if (ec) {
                    break;
                }
            }
            co_await http::async_read(sock, buffer, parser,
                                      asio::redirect_error(use_awaitable, ec));
            if (ec) {
                if (ec != http::error::end_of_stream && ec != asio::error::eof &&
                    ec != asio::error::operation_aborted) {
                    http::response<http::string_body> bad{http::status::bad_request, 11};
                    bad.set(http::field::content_type, kTextType);
                    bad.body() = "400 Bad Request: " + ec.message();
                    bad.prepare_payload();
                    bad.keep_alive(false);
                    co_await http::async_write(sock, bad, asio::redirect_error(use_awaitable, ec));
                }
                break;
            }
            Request req = parser.release();
            bool keep = co_await handle(sock, buffer, req);
            if (!keep || !sock.is_open()) {
                break;
            }
        }
        error_code ignored;
        sock.shutdown(tcp::socket::shutdown_both, ignored);
        sock.close(ignored);
    }

    // ---------------------------------------------------------------- responses

    awaitable<void> respond(tcp::socket& sock, const Request& req, RequestRecord& rec,
                            http::status status, std::string_view contentType, std::string body) {
        http::response<http::string_body> res{status, 11};
        res.keep_alive(req.keep_alive());
        res.set(http::field::date, httpDate());
        if (!contentType.empty()) {
            res.set(http::field::content_type, contentType);
        }
        const bool head = req.method() == http::verb::head;
        // Go sets Content-Length only for bodies that fit its 2 KB buffer.
        if (body.size() > 2048 && !head) {
            res.chunked(true);
            res.body() = std::move(body);
        } else {
            res.content_length(body.size());
            if (!head) {
                res.body() = std::move(body);
            }
        }
        rec.status = static_cast<int>(status);
        logNow(rec);
        co_await http::async_write(sock, res, use_awaitable);
    }

    awaitable<void> respondJson(tcp::socket& sock, const Request& req, RequestRecord& rec,
                                http::status status, const json::value& body) {
        co_await respond(sock, req, rec, status, kJsonType, goMarshal(body));
    }

    awaitable<void> respondError(tcp::socket& sock, const Request& req, RequestRecord& rec,
                                 int status, std::string message) {
        rec.error = message;
        if (rec.openai || rec.path.rfind("/v1/", 0) == 0) {
            co_await respondJson(sock, req, rec, static_cast<http::status>(status),
                                 openAiError(status, message));
            co_return;
        }
        co_await respondJson(sock, req, rec, static_cast<http::status>(status),
                             singleField("error", json::string(message)));
    }

    /// `{"error":{"message","type","code"}}` as OpenAI-compatible servers send it.
    static json::object openAiError(int status, const std::string& message) {
        const char* type = status == 401   ? "authentication_error"
                           : status == 404 ? "not_found_error"
                           : status < 500  ? "invalid_request_error"
                                           : "server_error";
        json::object error;
        error["message"] = message;
        error["type"] = type;
        error["code"] = status;
        json::object o;
        o["error"] = std::move(error);
        return o;
    }

    /// NDJSON over chunked transfer encoding; the header goes out with the first line.
    class NdjsonStream {
    public:
        NdjsonStream(tcp::socket& sock, bool keepAlive) : sock_(sock), keepAlive_(keepAlive) {}

        awaitable<void> line(std::string text) {
            if (!headerSent_) {
                http::response<http::empty_body> res{http::status::ok, 11};
                res.set(http::field::content_type, "application/x-ndjson");
                res.set(http::field::date, httpDate());
                res.keep_alive(keepAlive_);
                res.chunked(true);
                http::response_serializer<http::empty_body> sr{res};
                co_await http::async_write_header(sock_, sr, use_awaitable);
                headerSent_ = true;
            }
            text += '\n';
            co_await asio::async_write(sock_, http::make_chunk(asio::buffer(text)), use_awaitable);
        }

        awaitable<void> finish() {
            co_await asio::async_write(sock_, http::make_chunk_last(), use_awaitable);
        }

    private:
        tcp::socket& sock_;
        bool keepAlive_;
        bool headerSent_ = false;
    };

    /// An error raised by the runner: a real status since v0.12.6, before that
    /// (--legacy-errors) a streaming request gets HTTP 200 and an error line.
    awaitable<void> runnerError(tcp::socket& sock, const Request& req, RequestRecord& rec,
                                const ChatRequest& cr, int status, std::string message) {
        if (cr.stream && legacyErrors_) {
            rec.error = message;
            NdjsonStream out(sock, req.keep_alive());
            co_await out.line(goMarshal(singleField("error", json::string(message))));
            rec.status = 200;
            logNow(rec);
            co_await out.finish();
            co_return;
        }
        co_await respondError(sock, req, rec, status, std::move(message));
    }

    // ---------------------------------------------------------------- routing

    bool hostAllowed(std::string_view hostHeader) const {
        std::string host = lower(hostHeader);
        if (!host.empty() && host.front() == '[') {
            auto close = host.find(']');
            host = host.substr(1, close == std::string::npos ? std::string::npos : close - 1);
        } else if (std::count(host.begin(), host.end(), ':') == 1) {
            host = host.substr(0, host.find(':'));
        }
        if (host.empty() || host == "localhost" || host == hostname_) {
            return true;
        }
        error_code ec;
        auto addr = asio::ip::make_address(host, ec);
        if (!ec) {
            if (addr.is_loopback() || addr.is_unspecified()) {
                return true;
            }
            if (addr.is_v4()) {
                auto b = addr.to_v4().to_bytes();
                return b[0] == 10 || (b[0] == 172 && (b[1] & 0xF0) == 16) ||
                       (b[0] == 192 && b[1] == 168);
            }
            auto b = addr.to_v6().to_bytes();
            return (b[0] & 0xFE) == 0xFC;
        }
        for (std::string_view suffix : {".localhost", ".local", ".internal"}) {
            if (host.size() > suffix.size() &&
                host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0) {
                return true;
            }
        }
        return false;
    }

    awaitable<bool> handle(tcp::socket& sock, beast::flat_buffer& buffer, Request& req) {
        RequestRecord rec;
        rec.tArrival = nowMs();
        rec.method = std::string(req.method_string());
        std::string_view target = req.target();
        rec.path = std::string(target.substr(0, target.find('?')));
        rec.internal = rec.path.rfind("/_emulator/", 0) == 0;
        bool outsidePrefix = false;
        if (!cfg_.pathPrefix.empty() && !rec.internal) {
            // Behind a reverse proxy: only PREFIX/... reaches the server.
            if (rec.path.rfind(cfg_.pathPrefix + "/", 0) == 0) {
                rec.path.erase(0, cfg_.pathPrefix.size());
            } else {
                outsidePrefix = true;
            }
        }
        if (!rec.internal) {
            rec.id = ++nextId_;
            ++httpRequests_;
        }
        bool keep = req.keep_alive();
        try {
            keep = outsidePrefix ? co_await notFound(sock, req, rec)
                                 : co_await route(sock, buffer, req, rec);
        } catch (const std::exception& e) {
            // A failed write: the client went away while we answered.
            if (rec.chat && !rec.closedByServer && !rec.cancelled) {
                rec.cancelled = true;
                rec.status = 499;
                ++cancelled_;
            }
            if (rec.error.empty()) {
                rec.error = e.what();
            }
            keep = false;
        }
        logNow(rec);
        co_return keep;
    }

    awaitable<bool> notFound(tcp::socket& sock, const Request& req, RequestRecord& rec) {
        co_await respond(sock, req, rec, http::status::not_found, kTextType, "404 page not found");
        co_return req.keep_alive();
    }

    /// `Authorization: Bearer KEY` as --api-key requires (a proxy in front of
    /// Ollama, or an OpenAI-compatible server started with a key).
    bool authorized(const Request& req) const {
        if (cfg_.apiKey.empty() || req.method() == http::verb::options) {
            return true;
        }
        const std::string_view header = req[http::field::authorization];
        return header.size() > 7 && iequals(header.substr(0, 7), "bearer ") &&
               header.substr(7) == cfg_.apiKey;
    }

    awaitable<bool> route(tcp::socket& sock, beast::flat_buffer& buffer, Request& req,
                          RequestRecord& rec) {
        const bool keep = req.keep_alive();
        if (hostCheck_ && !hostAllowed(req[http::field::host])) {
            co_await respond(sock, req, rec, http::status::forbidden, {}, {});
            co_return keep;
        }
        if (!rec.internal && !authorized(req)) {
            ++unauthorized_;
            co_await respondError(sock, req, rec, 401,
                                  rec.path.rfind("/v1/", 0) == 0 ? "Invalid API Key"
                                                                 : "unauthorized");
            co_return keep;
        }
        const auto method = req.method();
        const bool get = method == http::verb::get;
        const bool getOrHead = get || method == http::verb::head;
        const bool post = method == http::verb::post;
        if (method == http::verb::options) {
            co_await respond(sock, req, rec, http::status::no_content, {}, {});
            co_return keep;
        }
        auto notAllowed = [&]() -> awaitable<bool> {
            co_await respond(sock, req, rec, http::status::method_not_allowed, kTextType,
                             "405 method not allowed");
            co_return keep;
        };
        const std::string& path = rec.path;
        if (path == "/") {
            if (!getOrHead) {
                co_return co_await notAllowed();
            }
            co_await respond(sock, req, rec, http::status::ok, kTextType, "Ollama is running");
        } else if (path == "/api/version") {
            if (!getOrHead) {
                co_return co_await notAllowed();
            }
            co_await respondJson(sock, req, rec, http::status::ok,
                                 singleField("version", json::string(cfg_.version)));
        } else if (path == "/api/tags") {
            if (!getOrHead) {
                co_return co_await notAllowed();
            }
            co_await respondJson(sock, req, rec, http::status::ok, tags());
        } else if (path == "/api/ps") {
            if (!get) {
                co_return co_await notAllowed();
            }
            co_await respondJson(sock, req, rec, http::status::ok, ps());
        } else if (path == "/api/show") {
            if (!post) {
                co_return co_await notAllowed();
            }
            co_await show(sock, req, rec);
        } else if (path == "/api/chat") {
            if (!post) {
                co_return co_await notAllowed();
            }
            co_return co_await chatEntry(sock, buffer, req, rec);
        } else if (path == "/v1/models") {
            if (!get) {
                co_return co_await notAllowed();
            }
            co_await respondJson(sock, req, rec, http::status::ok, openAiModels());
        } else if (path == "/v1/chat/completions") {
            if (!post) {
                co_return co_await notAllowed();
            }
            rec.openai = true;
            co_return co_await chatEntry(sock, buffer, req, rec);
        } else if (path == "/_emulator/stats") {
            if (!get) {
                co_return co_await notAllowed();
            }
            co_await respondJson(sock, req, rec, http::status::ok, stats());
        } else if (path == "/_emulator/config") {
            if (get) {
                co_await respondJson(sock, req, rec, http::status::ok, configJson());
            } else if (post) {
                co_await configure(sock, req, rec);
            } else {
                co_return co_await notAllowed();
            }
        } else {
            co_await respond(sock, req, rec, http::status::not_found, kTextType,
                             "404 page not found");
        }
        co_return keep;
    }

    // ---------------------------------------------------------------- metadata

    ModelState* findModel(std::string_view requested) {
        std::string name = lower(requested);
        for (std::string_view prefix : {"registry.ollama.ai/library/", "library/"}) {
            if (name.rfind(prefix, 0) == 0) {
                name = name.substr(prefix.size());
            }
        }
        if (name.find(':') == std::string::npos) {
            name += ":latest";
        }
        for (auto& m : models_) {
            if (lower(m->spec.name) == name) {
                return m.get();
            }
        }
        return nullptr;
    }

    json::object details(const ModelState& m) const {
        const std::string& name = m.spec.name;
        std::string tag = lower(name.substr(name.find(':') + 1));
        std::string parameterSize = "7B";
        std::string quantization = "Q4_K_M";
        std::stringstream parts(tag);
        for (std::string part; std::getline(parts, part, '-');) {
            if (part.size() >= 2 && part.back() == 'b' &&
                std::isdigit(static_cast<unsigned char>(part.front()))) {
                parameterSize = part.substr(0, part.size() - 1) + "B";
            } else if (part.size() >= 2 && part.front() == 'q' &&
                       std::isdigit(static_cast<unsigned char>(part[1]))) {
                quantization = part;
                std::transform(quantization.begin(), quantization.end(), quantization.begin(),
                               [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
            }
        }
        json::array families{json::value(m.arch)};
        if (m.spec.has("vision") && m.arch != "mllama") {
            families.emplace_back("clip");
        }
        return json::object{{"parent_model", ""},
                            {"format", "gguf"},
                            {"family", m.arch},
                            {"families", std::move(families)},
                            {"parameter_size", parameterSize},
                            {"quantization_level", quantization}};
    }

    std::int64_t modelSize(const ModelState& m) const {
        return 4000000000LL + static_cast<std::int64_t>(fnv1a(m.spec.name) % 1000000000ULL);
    }

    json::object tags() const {
        json::array list;
        for (const auto& m : models_) {
            json::object entry{{"name", m->spec.name},
                               {"model", m->spec.name},
                               {"modified_at", modifiedAt_},
                               {"size", modelSize(*m)},
                               {"digest", fakeDigest(m->spec.name)},
                               {"details", details(*m)}};
            if (versionAtLeast(cfg_.version, {0, 30, 0})) {
                json::array caps;
                for (const auto& c : m->spec.capabilities) {
                    caps.emplace_back(c);
                }
                entry["capabilities"] = std::move(caps);
            }
            list.push_back(std::move(entry));
        }
        return json::object{{"models", std::move(list)}};
    }

    /// `GET /v1/models`: `{"object":"list","data":[{"id","object","created","owned_by"}]}`.
    json::object openAiModels() const {
        json::array list;
        for (const auto& m : models_) {
            list.push_back(json::object{{"id", m->spec.name},
                                        {"object", "model"},
                                        {"created", 1700000000},
                                        {"owned_by", "library"}});
        }
        return json::object{{"object", "list"}, {"data", std::move(list)}};
    }

    /// The part of a loaded model in GPU memory: none with num_gpu 0, else
    /// what --vram-bytes leaves room for (all of it when unset).
    std::int64_t sizeVram(const ModelState& m) const {
        if (m.runnerKey.find(";num_gpu=0;") != std::string::npos) {
            return 0;
        }
        const std::int64_t size = modelSize(m);
        return cfg_.vramBytes > 0 ? std::min<std::int64_t>(size, cfg_.vramBytes) : size;
    }

    bool loadedNow(ModelState& m) {
        if (m.loaded && m.refCount == 0 && m.expiresAt && Clock::now() >= *m.expiresAt) {
            m.loaded = false; // keep_alive expired
        }
        return m.loaded;
    }

    json::object ps() {
        json::array list;
        for (auto& m : models_) {
            if (!loadedNow(*m)) {
                continue;
            }
            auto wall = std::chrono::system_clock::now();
            std::string expires;
            if (m->refCount > 0) {
                expires = m->sessionDuration == std::chrono::nanoseconds::max()
                              ? rfc3339Nano(std::chrono::system_clock::time_point::max())
                              : rfc3339Nano(
                                    wall +
                                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                        m->sessionDuration));
            } else if (m->expiresAt) {
                expires = rfc3339Nano(
                    wall + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                               *m->expiresAt - Clock::now()));
            } else {
                expires = rfc3339Nano(std::chrono::system_clock::time_point::max());
            }
            list.push_back(json::object{{"name", m->spec.name},
                                        {"model", m->spec.name},
                                        {"size", modelSize(*m)},
                                        {"digest", fakeDigest(m->spec.name)},
                                        {"details", details(*m)},
                                        {"expires_at", expires},
                                        {"size_vram", sizeVram(*m)},
                                        {"context_length", numCtxOf(*m, nullptr)}});
        }
        return json::object{{"models", std::move(list)}};
    }

    /// Parses a JSON request body like gin's ShouldBindJSON; on failure answers 400.
    awaitable<std::optional<json::object>> bindJson(tcp::socket& sock, const Request& req,
                                                    RequestRecord& rec, std::string_view goType) {
        std::string_view body = req.body();
        if (isBlank(body)) {
            co_await respondError(sock, req, rec, 400, "missing request body");
            co_return std::nullopt;
        }
        if (auto error = goJsonSyntaxError(body); !error.empty()) {
            co_await respondError(sock, req, rec, 400, error);
            co_return std::nullopt;
        }
        json::parse_options options;
        options.max_depth = 10001;
        json::parser parser({}, options);
        error_code ec;
        parser.write_some(body.data(), body.size(), ec);
        if (ec) {
            co_await respondError(sock, req, rec, 400, "unexpected EOF");
            co_return std::nullopt;
        }
        json::value doc = parser.release();
        if (!doc.is_object()) {
            co_await respondError(sock, req, rec, 400,
                                  "json: cannot unmarshal " + std::string(goJsonKind(doc)) +
                                      " into Go value of type " + std::string(goType));
            co_return std::nullopt;
        }
        co_return std::move(doc.get_object());
    }

    awaitable<void> show(tcp::socket& sock, const Request& req, RequestRecord& rec) {
        auto body = co_await bindJson(sock, req, rec, "api.ShowRequest");
        if (!body) {
            co_return;
        }
        std::string name;
        for (std::string_view key : {"name", "model"}) {
            if (const auto* v = field(*body, key);
                v && v->is_string() && !v->get_string().empty()) {
                name = std::string(v->get_string());
            }
        }
        rec.model = name;
        if (name.empty()) {
            co_await respondError(sock, req, rec, 400, "model is required");
            co_return;
        }
        ModelState* m = findModel(name);
        if (m == nullptr) {
            co_await respondError(sock, req, rec, 404, "model '" + name + "' not found");
            co_return;
        }
        json::object info{{"general.architecture", m->arch},
                          {"general.file_type", 15},
                          {"general.parameter_count", 7241732096LL},
                          {"general.quantization_version", 2},
                          {m->arch + ".context_length", cfg_.contextLength},
                          {m->arch + ".embedding_length", 4096},
                          {m->arch + ".block_count", 32}};
        json::object out{
            {"license", ""},
            {"modelfile", "# Modelfile generated by \"ollama show\"\nFROM " + m->spec.name +
                              "\nTEMPLATE \"{{ .Prompt }}\"\n"},
            {"parameters", "stop                           \"</s>\""},
            {"template", "{{ .Prompt }}"},
            {"details", details(*m)},
            {"model_info", std::move(info)},
        };
        if (m->spec.has("vision")) {
            out["projector_info"] = json::object{{"general.architecture", "clip"},
                                                 {"clip.has_vision_encoder", true},
                                                 {"clip.vision.image_size", 336}};
        }
        if (versionAtLeast(cfg_.version, {0, 6, 4})) {
            json::array caps;
            for (const auto& c : m->spec.capabilities) {
                caps.emplace_back(c);
            }
            out["capabilities"] = std::move(caps);
        }
        out["modified_at"] = modifiedAt_;
        co_await respondJson(sock, req, rec, http::status::ok, out);
    }

    // ---------------------------------------------------------------- scheduling

    std::int64_t numCtxOf(const ModelState& m, const json::object* options) const {
        std::int64_t ctx = intOption(options, "num_ctx", cfg_.numCtx);
        if (m.spec.has("vision")) {
            ctx = std::max<std::int64_t>(ctx, 2048); // sched.go getRunner
        }
        return ctx;
    }

    /// The load-time ("Runner") options; a change between requests reloads the model.
    std::string runnerKey(const ModelState& m, const json::object* options) const {
        std::string key = "num_ctx=" + std::to_string(numCtxOf(m, options));
        key += ";num_batch=" + std::to_string(intOption(options, "num_batch", 512));
        key += ";num_gpu=" + std::to_string(intOption(options, "num_gpu", -1));
        key += ";main_gpu=" + std::to_string(intOption(options, "main_gpu", 0));
        key += ";num_thread=" + std::to_string(intOption(options, "num_thread", 0));
        const json::value* mmap = options ? options->if_contains("use_mmap") : nullptr;
        key += ";use_mmap=" + (mmap && mmap->is_bool() ? std::string(mmap->get_bool() ? "1" : "0")
                                                       : std::string("-"));
        return key;
    }

    bool usable(ModelState& m, const std::string& key) {
        return loadedNow(m) && !m.reloadPending && m.runnerKey == key;
    }

    void takeRunner(ModelState& m, std::chrono::nanoseconds session) {
        ++m.refCount;
        m.sessionDuration = session;
        m.expiresAt.reset();
    }

    void releaseRunner(ModelState& m) {
        if (--m.refCount > 0) {
            return;
        }
        if (m.sessionDuration.count() == 0) {
            m.loaded = false; // keep_alive 0: unload when idle
        } else {
            m.expiresAt = expiryFromNow(m.sessionDuration);
        }
        m.idle.notifyAll();
    }

    class RunnerLease {
    public:
        RunnerLease(Impl* impl, ModelState* m) : impl_(impl), m_(m) {}
        RunnerLease(RunnerLease&& o) noexcept : impl_(o.impl_), m_(std::exchange(o.m_, nullptr)) {}
        RunnerLease& operator=(RunnerLease&&) = delete;
        ~RunnerLease() {
            if (m_ != nullptr) {
                impl_->releaseRunner(*m_);
            }
        }

    private:
        Impl* impl_;
        ModelState* m_;
    };

    /// sched.go getRunner: a loaded runner with the same options is used at
    /// once; otherwise the request waits in the pending queue (bounded by
    /// --queue, else 503) for the one-at-a-time loader.
    awaitable<std::optional<RunnerLease>> acquireRunner(ModelState& m, const std::string& key,
                                                        std::chrono::nanoseconds session,
                                                        RequestRecord& rec) {
        if (usable(m, key)) {
            takeRunner(m, session);
            co_return RunnerLease(this, &m);
        }
        if (pendingLoads_ >= cfg_.queue) {
            co_return std::nullopt;
        }
        CountGuard queued(queued_);
        {
            CountGuard pending(pendingLoads_);
            co_await loader_.acquire();
        }
        SemaphoreLease loaderLease(&loader_);
        if (usable(m, key)) {
            takeRunner(m, session);
            co_return RunnerLease(this, &m);
        }
        if (loadedNow(m)) {
            // Options changed: wait for in-flight requests, then unload and reload.
            m.reloadPending = true;
            struct ClearReload {
                ModelState& m;
                ~ClearReload() { m.reloadPending = false; }
            } clear{m};
            while (m.refCount > 0) {
                co_await m.idle.wait();
            }
            m.loaded = false;
        }
        {
            CountGuard loading(loading_);
            co_await sleepMs(cfg_.loadMs);
        }
        m.loaded = true;
        m.runnerKey = key;
        ++loads_;
        rec.coldLoad = true;
        takeRunner(m, session);
        co_return RunnerLease(this, &m);
    }

    Fault rollFault() {
        std::uniform_real_distribution<double> uniform(0.0, 1.0);
        for (Fault f : kAllFaults) {
            double rate = cfg_.faultRate(f);
            if (rate > 0 && uniform(rng_) < rate) {
                return f;
            }
        }
        return Fault::None;
    }

    double jitterMs() {
        if (cfg_.jitterMs <= 0) {
            return 0;
        }
        return std::uniform_real_distribution<double>(0.0, cfg_.jitterMs)(rng_);
    }

    // ---------------------------------------------------------------- /api/chat

    /// Runs the request while watching the connection: if the client closes
    /// it (queued or generating), the request is cancelled and its slot freed.
    awaitable<bool> chatEntry(tcp::socket& sock, beast::flat_buffer& buffer, Request& req,
                              RequestRecord& rec) {
        using namespace asio::experimental::awaitable_operators;
        rec.chat = true;
        ++chatRequests_;
        auto result = co_await (chat(sock, req, rec) || watchPeer(sock, buffer));
        if (result.index() == 1) {
            if (!rec.closedByServer) {
                rec.cancelled = true;
                rec.status = 499; // Ollama's "client gone"; nobody receives it
                ++cancelled_;
            }
            co_return false;
        }
        co_return std::get<0>(result);
    }

    awaitable<void> watchPeer(tcp::socket& sock, beast::flat_buffer& buffer) {
        error_code ec;
        std::size_t n = co_await sock.async_read_some(buffer.prepare(4096),
                                                      asio::redirect_error(use_awaitable, ec));
        if (ec) {
            co_return; // closed or reset: cancel the request
        }
        // A pipelined request: keep it for the next parse; a close can no longer be seen.
        buffer.commit(n);
        co_await sleepForever();
    }

    awaitable<bool> chat(tcp::socket& sock, const Request& req, RequestRecord& rec) {
        const bool keep = req.keep_alive();
        auto body = co_await bindJson(sock, req, rec, "api.ChatRequest");
        if (!body) {
            co_return keep;
        }
        ChatRequest cr;
        if (auto error = rec.openai ? decodeOpenAiChat(*body, cr) : decodeChat(*body, cr);
            !error.empty()) {
            co_await respondError(sock, req, rec, 400, error);
            co_return keep;
        }
        rec.model = cr.model;
        rec.stream = cr.stream;
        rec.loadOnly = cr.messages.empty();
        if (cr.model.empty()) {
            co_await respondError(sock, req, rec, 400, "model is required");
            co_return keep;
        }
        if (std::any_of(cr.model.begin(), cr.model.end(), [](char c) {
                return !(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                         c == '-' || c == ':' || c == '/');
            })) {
            co_await respondError(sock, req, rec, 400, "invalid model name");
            co_return keep;
        }
        ModelState* m = findModel(cr.model);
        if (m == nullptr) {
            co_await respondError(sock, req, rec, 404, "model '" + cr.model + "' not found");
            co_return keep;
        }
        if (cr.think && !m->spec.has("thinking")) {
            co_await respondError(sock, req, rec, 400,
                                  "\"" + cr.model + "\" does not support thinking");
            co_return keep;
        }
        if (cr.hasTools && !m->spec.has("tools")) {
            co_await respondError(sock, req, rec, 400,
                                  "registry.ollama.ai/library/" + m->spec.name +
                                      " does not support tools");
            co_return keep;
        }

        // What is asked, and of which images.
        std::string system;
        std::string user;
        std::size_t maxImagesInMessage = 0;
        std::size_t undecodable = 0;
        double sumR = 0, sumG = 0, sumB = 0;
        std::uint64_t pixels = 0;
        std::vector<std::optional<ColourSum>> colours; // per image, in order
        for (const auto& msg : cr.messages) {
            std::string& text = msg.role == "system" ? system : user;
            if (msg.role == "system" || msg.role == "user") {
                if (!text.empty()) {
                    text += '\n';
                }
                text += msg.content;
            }
            maxImagesInMessage = std::max(maxImagesInMessage, msg.images.size());
            for (const auto& image : msg.images) {
                ++rec.images;
                rec.imageBytes.push_back(image.size());
                colours.push_back(probe_.colourSum(image));
                if (const auto& sum = colours.back()) {
                    sumR += sum->r;
                    sumG += sum->g;
                    sumB += sum->b;
                    pixels += sum->pixels;
                } else if (!looksLikePng(image)) {
                    ++undecodable;
                }
            }
        }
        if (pixels > 0) {
            auto p = static_cast<double>(pixels);
            rec.meanRgb = Rgb{sumR / p, sumG / p, sumB / p};
        }
        if (m->spec.lastImageOnly && colours.size() > 1) {
            // The model is given the last image alone: it answers from it,
            // and the others cost nothing.
            rec.imagesIgnored = static_cast<int>(colours.size() - 1);
            colours.erase(colours.begin(), colours.end() - 1);
            const auto& last = colours.back();
            rec.meanRgb = last && last->pixels > 0
                              ? std::optional<Rgb>(Rgb{last->r / double(last->pixels),
                                                       last->g / double(last->pixels),
                                                       last->b / double(last->pixels)})
                              : std::nullopt;
        }
        rec.prompt = user.substr(0, 500);
        rec.promptChars = codePoints(user);
        rec.promptMentions = faceStatesMentioned(user);
        const Analysis analysis =
            rec.loadOnly ? Analysis::Unknown : detectAnalysis(cr.format, system + "\n" + user);
        if (!rec.loadOnly) {
            rec.analysis = std::string(analysisName(analysis));
            ++byAnalysis_[rec.analysis];
        }

        // What the prompt costs, and what a context too small for it does:
        // truncation keeps the tail (the user's text and the last images) and
        // reports the tokens kept; or the request fails.
        const int perImage = m->spec.tokensPerImage.value_or(cfg_.tokensPerImage);
        const auto textTokens = static_cast<std::int64_t>((system.size() + user.size() + 3) / 4);
        const auto userTokens = static_cast<std::int64_t>((user.size() + 3) / 4);
        std::int64_t promptTokens =
            textTokens + static_cast<std::int64_t>(colours.size()) * perImage;
        const std::int64_t context = rec.openai ? cfg_.context : numCtxOf(*m, cr.options);
        bool overflowError = false;
        if (!rec.loadOnly && context > 0 && promptTokens > context) {
            if (cfg_.overflowTruncates.value_or(!rec.openai)) {
                const std::int64_t fit = std::max<std::int64_t>(0, context - userTokens) / perImage;
                const auto kept = static_cast<std::size_t>(
                    std::min<std::int64_t>(fit, static_cast<std::int64_t>(colours.size())));
                rec.imagesDropped = static_cast<int>(colours.size() - kept);
                // The model sees only the images kept: it answers from them.
                double r = 0, g = 0, b = 0;
                std::uint64_t n = 0;
                for (std::size_t i = colours.size() - kept; i < colours.size(); ++i) {
                    if (const auto& sum = colours[i]) {
                        r += sum->r;
                        g += sum->g;
                        b += sum->b;
                        n += sum->pixels;
                    }
                }
                rec.meanRgb =
                    n > 0 ? std::optional<Rgb>(Rgb{r / double(n), g / double(n), b / double(n)})
                          : std::nullopt;
                promptTokens = context;
                rec.truncated = true;
            } else {
                overflowError = true;
            }
        }
        rec.promptTokens = promptTokens;

        if (rec.openai && rec.loadOnly) {
            co_await respondError(sock, req, rec, 400, "'messages' must be a non-empty array");
            co_return keep;
        }
        if (rec.loadOnly && cr.keepAlive && cr.keepAlive->count() == 0) {
            // Unload request: expire the runner, answer at once.
            m->sessionDuration = std::chrono::nanoseconds(0);
            if (m->refCount == 0) {
                m->loaded = false;
            }
            rec.doneReason = "unload";
            co_await respondJson(sock, req, rec, http::status::ok, doneOnly(cr.model, "unload"));
            co_return keep;
        }
        if (auto error = checkOptionTypes(cr.options); !error.empty()) {
            co_await respondError(sock, req, rec, 500, error);
            co_return keep;
        }
        if (!rec.loadOnly) {
            rec.fault = rollFault();
            if (rec.fault != Fault::None) {
                ++faultCounts_[std::string(faultName(rec.fault))];
            }
        }
        if (rec.fault == Fault::Busy503) {
            co_await respondError(sock, req, rec, 503, std::string(kBusy));
            co_return keep;
        }

        const double tSchedule = nowMs();
        auto lease = co_await acquireRunner(*m, runnerKey(*m, cr.options),
                                            cr.keepAlive.value_or(defaultKeepAlive_), rec);
        rec.loadMs = nowMs() - tSchedule;
        if (!lease) {
            co_await respondError(sock, req, rec, 503, std::string(kBusy));
            co_return keep;
        }
        if (rec.loadOnly) {
            rec.doneReason = "load";
            co_await respondJson(sock, req, rec, http::status::ok, doneOnly(cr.model, "load"));
            co_return keep;
        }
        if (cfg_.maxImages > 0 && maxImagesInMessage > static_cast<std::size_t>(cfg_.maxImages)) {
            std::string message =
                cfg_.maxImages == 1
                    ? "this model only supports one image while more than one image requested"
                    : "this model only supports " + std::to_string(cfg_.maxImages) +
                          " images while more than " + std::to_string(cfg_.maxImages) +
                          " images requested";
            co_await respondError(sock, req, rec, 500, std::move(message));
            co_return keep;
        }
        if (cr.format != nullptr && !cr.format->is_object() &&
            !(cr.format->is_string() && cr.format->get_string() == "json")) {
            co_await runnerError(
                sock, req, rec, cr, 500,
                "invalid format: " + goMarshal(json::string(goMarshal(*cr.format)), false) +
                    "; expected \"json\" or a valid JSON Schema object");
            co_return keep;
        }
        if (undecodable > 0) {
            co_await runnerError(sock, req, rec, cr, 500,
                                 "Failed to create new sequence: failed to process inputs: "
                                 "image: unknown format");
            co_return keep;
        }
        if (overflowError) {
            co_await respondError(sock, req, rec, 400,
                                  "the request exceeds the available context size (" +
                                      std::to_string(promptTokens) + " prompt tokens, context " +
                                      std::to_string(context) + "), try increasing it");
            co_return keep;
        }

        // Wait for a parallel slot (FIFO, unbounded), then generate.
        std::optional<SemaphoreLease> slot;
        {
            CountGuard queued(queued_);
            co_await m->slots.acquire();
            slot.emplace(&m->slots);
        }
        rec.tStart = nowMs();
        CountGuard active(active_);
        rec.concurrency = static_cast<int>(active_);
        maxConcurrency_ = std::max(maxConcurrency_, active_);

        if (rec.fault == Fault::Http500) {
            co_await runnerError(sock, req, rec, cr, 500, std::string(kRunnerStopped));
            co_return keep;
        }
        if (rec.fault == Fault::Stall) {
            co_await sleepForever(); // holds the slot until the client gives up
        }

        ScriptedAnswer scripted = script_.answer(analysis, rec.meanRgb, user, cr.format);
        rec.rules = scripted.rules;
        std::string content = goMarshal(scripted.answer, false);
        std::size_t pieceChars = cfg_.chunkChars;
        bool paced = cfg_.perCharMs > 0;
        switch (rec.fault) {
        case Fault::Prose:
            content = "Sure! Here is my analysis of the driver images:\n" + content +
                      "\nLet me know if you need anything else.";
            break;
        case Fault::Fence:
            content = "```json\n" + content + "\n```";
            break;
        case Fault::Invalid:
            content = content.substr(0, content.size() / 2);
            if (!content.empty() && content.back() == '"') {
                content.pop_back();
            }
            content += ", oops";
            break;
        case Fault::Oversize: {
            json::value padded = scripted.answer;
            if (padded.is_object()) {
                padded.get_object()["padding"] = std::string(cfg_.oversizeBytes, 'x');
                content = goMarshal(padded, false);
            } else {
                content += std::string(cfg_.oversizeBytes, ' ');
            }
            pieceChars = 64 * 1024;
            paced = false;
            break;
        }
        default:
            break;
        }
        std::vector<std::string> pieces = splitPieces(content, pieceChars);
        rec.doneReason = "stop";
        if (auto limit = intOption(cr.options, "num_predict", -1);
            limit > 0 && pieces.size() > static_cast<std::size_t>(limit)) {
            pieces.resize(static_cast<std::size_t>(limit));
            rec.doneReason = "length";
        }
        rec.answerChars = 0;
        for (const auto& p : pieces) {
            rec.answerChars += codePoints(p);
        }
        const double promptEvalMs = cfg_.latencyMs + cfg_.perImageMs * rec.images + jitterMs();
        const std::int64_t promptEvalCount = promptTokens;

        auto finalFields = [&](json::object& o, double evalMs) {
            o["done_reason"] = rec.doneReason;
            o["total_duration"] = toNs(nowMs() - rec.tArrival);
            if (auto load = toNs(rec.loadMs); load > 0) {
                o["load_duration"] = load;
            }
            o["prompt_eval_count"] = promptEvalCount;
            o["prompt_eval_duration"] = std::max<std::int64_t>(toNs(promptEvalMs), 1);
            o["eval_count"] = static_cast<std::int64_t>(pieces.size());
            o["eval_duration"] = std::max<std::int64_t>(toNs(evalMs), 1);
        };

        if (cr.stream) {
            co_await sleepMs(promptEvalMs);
            const double evalStart = nowMs();
            NdjsonStream out(sock, keep);
            const bool cut = rec.fault == Fault::Drop || rec.fault == Fault::Midstream;
            const std::size_t count =
                cut ? std::max<std::size_t>(1, pieces.size() / 2) : pieces.size();
            for (std::size_t i = 0; i < count && i < pieces.size(); ++i) {
                if (paced) {
                    co_await sleepMs(cfg_.perCharMs * static_cast<double>(codePoints(pieces[i])));
                }
                co_await out.line(goMarshal(chunk(cr.model, pieces[i], false)));
            }
            rec.status = 200;
            if (rec.fault == Fault::Drop) {
                rec.closedByServer = true;
                rec.error = "connection dropped mid-response (fault)";
                logNow(rec);
                error_code ignored;
                sock.shutdown(tcp::socket::shutdown_both, ignored);
                sock.close(ignored);
                co_return false;
            }
            if (rec.fault == Fault::Midstream) {
                rec.error = std::string(kMidstreamError);
                co_await out.line(goMarshal(singleField("error", json::string(kMidstreamError))));
                logNow(rec);
                co_await out.finish();
                co_return keep;
            }
            json::object last = chunk(cr.model, "", true);
            finalFields(last, nowMs() - evalStart);
            co_await out.line(goMarshal(last));
            logNow(rec);
            co_await out.finish();
            co_return keep;
        }

        const double evalMs = paced ? cfg_.perCharMs * static_cast<double>(rec.answerChars) : 0;
        co_await sleepMs(promptEvalMs + evalMs);
        if (rec.fault == Fault::Midstream) {
            co_await respondError(sock, req, rec, 500, std::string(kMidstreamError));
            co_return keep;
        }
        std::string full;
        for (const auto& p : pieces) {
            full += p;
        }
        std::string text;
        if (rec.openai) {
            text = goMarshal(completion(cr.model, full, rec.doneReason, promptEvalCount,
                                        static_cast<std::int64_t>(pieces.size())));
        } else {
            json::object response = chunk(cr.model, full, true);
            finalFields(response, evalMs);
            text = goMarshal(response);
        }
        if (rec.fault == Fault::Drop) {
            std::string head = "HTTP/1.1 200 OK\r\nContent-Type: " + std::string(kJsonType) +
                               "\r\nDate: " + httpDate() +
                               "\r\nContent-Length: " + std::to_string(text.size()) + "\r\n\r\n";
            head += text.substr(0, text.size() / 2);
            rec.status = 200;
            rec.closedByServer = true;
            rec.error = "connection dropped mid-response (fault)";
            logNow(rec);
            co_await asio::async_write(sock, asio::buffer(head), use_awaitable);
            error_code ignored;
            sock.shutdown(tcp::socket::shutdown_both, ignored);
            sock.close(ignored);
            co_return false;
        }
        co_await respond(sock, req, rec, http::status::ok, kJsonType, std::move(text));
        co_return keep;
    }

    json::object chunk(const std::string& model, std::string_view content, bool done) const {
        return json::object{{"model", model},
                            {"created_at", rfc3339Nano(std::chrono::system_clock::now())},
                            {"message", json::object{{"role", "assistant"}, {"content", content}}},
                            {"done", done}};
    }

    /// An OpenAI `chat.completion` object.
    json::object completion(const std::string& model, std::string_view content,
                            std::string_view finishReason, std::int64_t promptTokens,
                            std::int64_t completionTokens) {
        json::object message{{"role", "assistant"}, {"content", content}};
        json::object choice{
            {"index", 0}, {"message", std::move(message)}, {"finish_reason", finishReason}};
        json::object usage{{"prompt_tokens", promptTokens},
                           {"completion_tokens", completionTokens},
                           {"total_tokens", promptTokens + completionTokens}};
        return json::object{{"id", "chatcmpl-" + std::to_string(++completionIds_)},
                            {"object", "chat.completion"},
                            {"created", std::chrono::duration_cast<std::chrono::seconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count()},
                            {"model", model},
                            {"choices", json::array{std::move(choice)}},
                            {"usage", std::move(usage)}};
    }

    json::object doneOnly(const std::string& model, std::string_view reason) const {
        json::object o = chunk(model, "", true);
        o["done_reason"] = reason;
        return o;
    }

    // ---------------------------------------------------------------- log, stats, config

    /// Writes the request's log line once. Called just before the last byte
    /// of the response is written, so a client holding a complete response
    /// finds its line in the log.
    void logNow(RequestRecord& rec) {
        if (rec.internal || rec.logged) {
            return;
        }
        rec.logged = true;
        rec.tEnd = nowMs();
        finish(rec);
    }

    void finish(const RequestRecord& rec) {
        if (rec.chat) {
            ++byStatus_[std::to_string(rec.status)];
        }
        if (!log_) {
            return;
        }
        json::object line{{"id", rec.id}, {"path", rec.path}, {"method", rec.method}};
        if (rec.chat) {
            line["api"] = rec.openai ? "openai" : "ollama";
            line["analysis"] =
                rec.analysis.empty() ? json::value(nullptr) : json::value(rec.analysis);
            line["model"] = rec.model;
            line["stream"] = rec.stream;
            line["load_only"] = rec.loadOnly;
            line["images"] = rec.images;
            json::array bytes;
            for (auto b : rec.imageBytes) {
                bytes.emplace_back(b);
            }
            line["image_bytes"] = std::move(bytes);
            if (rec.meanRgb) {
                line["mean_rgb"] =
                    json::array{roundMs((*rec.meanRgb)[0]), roundMs((*rec.meanRgb)[1]),
                                roundMs((*rec.meanRgb)[2])};
            } else {
                line["mean_rgb"] = nullptr;
            }
        }
        line["t_arrival_ms"] = roundMs(rec.tArrival);
        if (rec.chat) {
            line["t_start_ms"] =
                rec.tStart ? json::value(roundMs(*rec.tStart)) : json::value(nullptr);
        }
        line["t_end_ms"] = roundMs(rec.tEnd);
        if (rec.chat) {
            line["queued_ms"] = rec.tStart ? json::value(roundMs(*rec.tStart - rec.tArrival))
                                           : json::value(nullptr);
            line["load_ms"] = roundMs(rec.loadMs);
            line["cold_load"] = rec.coldLoad;
            line["concurrency"] = rec.concurrency;
        }
        line["status"] = rec.status;
        if (rec.chat) {
            line["fault"] = faultName(rec.fault);
            line["cancelled"] = rec.cancelled;
            line["done_reason"] =
                rec.doneReason.empty() ? json::value(nullptr) : json::value(rec.doneReason);
            json::array rules;
            for (int r : rec.rules) {
                rules.emplace_back(r);
            }
            line["rules"] = std::move(rules);
            line["answer_chars"] = rec.answerChars;
            line["prompt_tokens"] = rec.promptTokens;
            line["truncated"] = rec.truncated;
            line["images_dropped"] = rec.imagesDropped;
            line["images_ignored"] = rec.imagesIgnored;
            line["prompt_chars"] = rec.promptChars;
            json::array mentions;
            for (const auto& s : rec.promptMentions) {
                mentions.emplace_back(s);
            }
            line["prompt_mentions"] = std::move(mentions);
            line["prompt"] = rec.prompt;
        } else if (!rec.model.empty()) {
            line["model"] = rec.model;
        }
        if (!rec.error.empty()) {
            line["error"] = rec.error;
        }
        log_ << goMarshal(line, false) << '\n';
        log_.flush();
    }

    json::object stats() const {
        json::object byAnalysis;
        for (const auto& [k, v] : byAnalysis_) {
            byAnalysis[k] = v;
        }
        json::object faults;
        for (const auto& [k, v] : faultCounts_) {
            faults[k] = v;
        }
        json::object byStatus;
        for (const auto& [k, v] : byStatus_) {
            byStatus[k] = v;
        }
        json::array loaded;
        for (const auto& m : models_) {
            if (m->loaded) {
                loaded.emplace_back(m->spec.name);
            }
        }
        return json::object{{"requests", chatRequests_},
                            {"http_requests", httpRequests_},
                            {"active", active_},
                            {"queued", queued_},
                            {"pending_loads", pendingLoads_},
                            {"loading", loading_},
                            {"loads", loads_},
                            {"max_concurrency", maxConcurrency_},
                            {"cancelled", cancelled_},
                            {"unauthorized", unauthorized_},
                            {"tls_handshake_failures", tlsHandshakeFailures_},
                            {"by_analysis", std::move(byAnalysis)},
                            {"by_status", std::move(byStatus)},
                            {"faults", std::move(faults)},
                            {"loaded_models", std::move(loaded)},
                            {"uptime_ms", roundMs(nowMs())}};
    }

    json::object configJson() const {
        json::object faults;
        for (Fault f : kAllFaults) {
            faults[faultName(f)] = cfg_.faultRate(f);
        }
        return json::object{{"latency_ms", cfg_.latencyMs},
                            {"per_image_ms", cfg_.perImageMs},
                            {"per_char_ms", cfg_.perCharMs},
                            {"jitter_ms", cfg_.jitterMs},
                            {"load_ms", cfg_.loadMs},
                            {"slots", cfg_.slots},
                            {"queue", cfg_.queue},
                            {"max_images", cfg_.maxImages},
                            {"legacy_errors", legacyErrors_},
                            {"faults", std::move(faults)},
                            {"version", cfg_.version},
                            {"seed", cfg_.seed}};
    }

    awaitable<void> configure(tcp::socket& sock, const Request& req, RequestRecord& rec) {
        auto body = co_await bindJson(sock, req, rec, "emulator config");
        if (!body) {
            co_return;
        }
        EmulatorConfig next = cfg_;
        bool legacy = legacyErrors_;
        std::optional<AnswerScript> script;
        bool unload = false;
        bool reset = false;
        std::string error;
        auto number = [&](const json::value& v, std::string_view key, double& out) {
            if (!v.is_number() || v.to_number<double>() < 0) {
                error = std::string(key) + " must be a number >= 0";
                return;
            }
            out = v.to_number<double>();
        };
        auto integer = [&](const json::value& v, std::string_view key, int min, int& out) {
            if (!v.is_number() || v.to_number<double>() < min ||
                v.to_number<double>() != std::floor(v.to_number<double>())) {
                error = std::string(key) + " must be an integer >= " + std::to_string(min);
                return;
            }
            out = static_cast<int>(v.to_number<double>());
        };
        for (const auto& kv : *body) {
            const auto& v = kv.value();
            std::string_view key = kv.key();
            if (key == "latency_ms") {
                number(v, key, next.latencyMs);
            } else if (key == "per_image_ms") {
                number(v, key, next.perImageMs);
            } else if (key == "per_char_ms") {
                number(v, key, next.perCharMs);
            } else if (key == "jitter_ms") {
                number(v, key, next.jitterMs);
            } else if (key == "load_ms") {
                number(v, key, next.loadMs);
            } else if (key == "slots") {
                integer(v, key, 1, next.slots);
            } else if (key == "queue") {
                integer(v, key, 0, next.queue);
            } else if (key == "max_images") {
                if (v.is_null()) {
                    next.maxImages = 0;
                } else {
                    integer(v, key, 0, next.maxImages);
                }
            } else if (key == "legacy_errors") {
                if (!v.is_bool()) {
                    error = "legacy_errors must be a boolean";
                } else {
                    legacy = v.get_bool();
                }
            } else if (key == "faults") {
                if (!v.is_object()) {
                    error = "faults must be an object {kind: rate}";
                } else {
                    for (const auto& f : v.get_object()) {
                        auto kind = faultFromName(f.key());
                        if (!kind) {
                            error = "faults: unknown kind \"" + std::string(f.key()) +
                                    "\" (busy503, http500, drop, stall, prose, fence, invalid, "
                                    "oversize, midstream)";
                        } else if (!f.value().is_number() || f.value().to_number<double>() < 0 ||
                                   f.value().to_number<double>() > 1) {
                            error = "faults." + std::string(f.key()) + " must be a rate in 0..1";
                        } else {
                            next.setFaultRate(*kind, f.value().to_number<double>());
                        }
                    }
                }
            } else if (key == "script") {
                try {
                    script = AnswerScript::fromJson(v);
                } catch (const std::exception& e) {
                    error = std::string("script: ") + e.what();
                }
            } else if (key == "unload") {
                unload = v.is_bool() && v.get_bool();
            } else if (key == "reset_stats") {
                reset = v.is_bool() && v.get_bool();
            } else {
                error = "unknown key \"" + std::string(key) +
                        "\" (latency_ms, per_image_ms, per_char_ms, jitter_ms, load_ms, slots, "
                        "queue, max_images, faults, legacy_errors, script, unload, reset_stats)";
            }
            if (!error.empty()) {
                co_await respondError(sock, req, rec, 400, error);
                co_return;
            }
        }
        cfg_ = std::move(next);
        legacyErrors_ = legacy;
        if (script) {
            script_ = std::move(*script);
        }
        for (auto& m : models_) {
            m->slots.setCapacity(static_cast<std::size_t>(cfg_.slots));
            if (unload && m->refCount == 0) {
                m->loaded = false;
            }
        }
        if (reset) {
            chatRequests_ = 0;
            httpRequests_ = 0;
            maxConcurrency_ = active_;
            cancelled_ = 0;
            unauthorized_ = 0;
            tlsHandshakeFailures_ = 0;
            loads_ = 0;
            byAnalysis_.clear();
            byStatus_.clear();
            faultCounts_.clear();
        }
        co_await respondJson(sock, req, rec, http::status::ok, configJson());
    }

    asio::io_context& io_;
    EmulatorConfig cfg_;
    AnswerScript script_;
    tcp::acceptor acceptor_;
    tcp::acceptor tlsAcceptor_;             ///< https (--tls-cert): the public port
    std::optional<asio::ssl::context> tls_; ///< https only
    std::uint16_t innerPort_ = 0;           ///< https: the plain server behind it
    std::int64_t tlsHandshakeFailures_ = 0;
    std::mt19937_64 rng_;
    Clock::time_point start_;
    std::ofstream log_;
    JpegProbe probe_;
    std::string hostname_;
    std::string modifiedAt_;
    bool hostCheck_ = true;
    bool legacyErrors_ = cfg_.legacyErrors;
    bool stopping_ = false;
    std::chrono::nanoseconds defaultKeepAlive_{0};
    std::vector<std::unique_ptr<ModelState>> models_;
    std::set<tcp::socket*> sockets_;
    FifoSemaphore loader_{1};

    std::uint64_t nextId_ = 0;
    std::int64_t chatRequests_ = 0;
    std::int64_t httpRequests_ = 0;
    std::int64_t active_ = 0;
    std::int64_t queued_ = 0;
    std::int64_t pendingLoads_ = 0;
    std::int64_t loading_ = 0;
    std::int64_t loads_ = 0;
    std::int64_t maxConcurrency_ = 0;
    std::int64_t cancelled_ = 0;
    std::int64_t unauthorized_ = 0;
    std::uint64_t completionIds_ = 0;
    std::map<std::string, std::int64_t> byAnalysis_;
    std::map<std::string, std::int64_t> byStatus_;
    std::map<std::string, std::int64_t> faultCounts_;
};

EmulatorServer::EmulatorServer(asio::io_context& io, EmulatorConfig config, AnswerScript script)
    : impl_(std::make_unique<Impl>(io, std::move(config), std::move(script))) {
}

EmulatorServer::~EmulatorServer() = default;

std::uint16_t EmulatorServer::listen() {
    return impl_->listen();
}

void EmulatorServer::start() {
    impl_->start();
}

void EmulatorServer::shutdown() {
    impl_->shutdown();
}

} // namespace dmsd::emulator
