// The client and scheduler end to end against the Ollama emulator
// (test/emulator): every mode, real overlap, the dependent prompt, faults,
// timeouts freeing the slot, the cache, health messages, mosaic fallback,
// auto mode, cancellation.

#include <filesystem>
#include <fstream>
#include <regex>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <turbojpeg.h>

#include "llm/analyses/attention.h"
#include "llm/analyses/face_state.h"
#include "llm/analysis_scheduler.h"
#include "llm/api_key.h"
#include "llm/context_budget.h"
#include "llm/model_backend.h"
#include "llm/ollama_client.h"
#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
namespace asio = boost::asio;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

/// The emulator as a child process on an ephemeral port.
class Emulator {
public:
    explicit Emulator(std::vector<std::string> args) : process_(argvFor(std::move(args))) {
        auto line = process_.waitForLine(
            [](const std::string& l) { return l.starts_with("listening on "); }, 20s);
        REQUIRE(line);
        url_ = line->substr(std::string("listening on ").size());
        port_ = static_cast<unsigned short>(std::stoi(url_.substr(url_.rfind(':') + 1)));
    }
    const std::string& url() const { return url_; }
    unsigned short port() const { return port_; }
    test::ChildProcess& process() { return process_; }

    /// A small blocking HTTP/1.1 exchange (Connection: close) for stats and config.
    json::value request(const std::string& method, const std::string& path,
                        const std::string& body = {}) const {
        asio::io_context io;
        asio::ip::tcp::socket socket(io);
        socket.connect({asio::ip::make_address("127.0.0.1"), port_});
        const std::string req =
            fmt::format("{} {} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\n"
                        "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                        method, path, port_, body.size(), body);
        asio::write(socket, asio::buffer(req));
        std::string response;
        boost::system::error_code ec;
        asio::read(socket, asio::dynamic_buffer(response), ec);
        const auto split = response.find("\r\n\r\n");
        REQUIRE(split != std::string::npos);
        std::string head = response.substr(0, split);
        std::string content = response.substr(split + 4);
        std::transform(head.begin(), head.end(), head.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (head.find("transfer-encoding: chunked") != std::string::npos) {
            std::string plain;
            std::size_t pos = 0;
            while (pos < content.size()) {
                const auto eol = content.find("\r\n", pos);
                const std::size_t n = std::stoul(content.substr(pos, eol - pos), nullptr, 16);
                if (n == 0) {
                    break;
                }
                plain += content.substr(eol + 2, n);
                pos = eol + 2 + n + 2;
            }
            content = plain;
        }
        return json::parse(content);
    }
    json::value stats() const { return request("GET", "/_emulator/stats"); }
    void configure(const json::object& config) const {
        request("POST", "/_emulator/config", json::serialize(config));
    }

private:
    static std::vector<std::string> argvFor(std::vector<std::string> args) {
        args.insert(args.begin(), DMSD_OLLAMA_EMULATOR);
        return args;
    }
    test::ChildProcess process_;
    std::string url_;
    unsigned short port_ = 0;
};

std::shared_ptr<const std::vector<unsigned char>> solidJpeg(int width, int height, unsigned char r,
                                                            unsigned char g, unsigned char b) {
    std::vector<unsigned char> rgb(static_cast<std::size_t>(width * height * 3));
    for (std::size_t i = 0; i < rgb.size(); i += 3) {
        rgb[i] = r;
        rgb[i + 1] = g;
        rgb[i + 2] = b;
    }
    tjhandle handle = tjInitCompress();
    REQUIRE(handle != nullptr);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    const int rc =
        tjCompress2(handle, rgb.data(), width, 0, height, TJPF_RGB, &out, &size, TJSAMP_420, 85, 0);
    std::vector<unsigned char> bytes;
    if (rc == 0) {
        bytes.assign(out, out + size);
    }
    tjFree(out);
    tjDestroy(handle);
    REQUIRE(rc == 0);
    return std::make_shared<const std::vector<unsigned char>>(std::move(bytes));
}

/// A sequence of \a frames solid-colour frames; \a seed varies the content hashes.
EncodedSequencePtr makeSequence(int frames, std::uint64_t seed = 1, bool withMosaic = true) {
    auto seq = std::make_shared<EncodedSequence>();
    seq->sequenceId = seed;
    for (int i = 0; i < frames; ++i) {
        SampledFrameInfo info;
        info.frameId = seed * 100 + i;
        info.ptsSeconds = 2.0 * double(seed) + 0.5 * i;
        info.contentHash = seed * 1000 + i + 1;
        seq->frames.push_back(info);
        seq->images.push_back(JpegImage{solidJpeg(64, 48, 200, 180, 160), 64, 48});
    }
    if (withMosaic) {
        seq->makeMosaic = []() -> std::optional<JpegImage> {
            return JpegImage{solidJpeg(128, 96, 200, 180, 160), 128, 96};
        };
    }
    return seq;
}

LlmSettings settingsFor(const Emulator& emulator, LlmMode mode, LlmApi api = LlmApi::Ollama) {
    LlmSettings s;
    s.server.url = emulator.url();
    s.server.api = api;
    s.scheduler.mode = mode;
    s.server.timeout = 5000ms;
    s.server.maxInFlight = 4;
    return s;
}

struct Rig {
    asio::io_context io;
    ModelClientPtr client;
    AnalysisSchedulerPtr scheduler;
    Rig(LlmSettings settings, SchedulerOptions options = {},
        AnalysesSettings analyses = AnalysesSettings{}) {
        client = createModelClient(io.get_executor(), settings);
        scheduler = AnalysisScheduler::create(io.get_executor(), client, settings.scheduler,
                                              analyses, options);
    }
    void runUntil(const std::function<bool()>& condition, std::chrono::milliseconds timeout = 30s) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!condition() && std::chrono::steady_clock::now() < deadline) {
            if (io.stopped()) {
                io.restart(); // ran out of work earlier: new work was queued since
            }
            io.run_one_for(20ms);
        }
    }
    SequenceResult analyse(EncodedSequencePtr seq) {
        std::optional<SequenceResult> result;
        scheduler->submit(std::move(seq), [&](SequenceResult r) { result = std::move(r); });
        runUntil([&] { return result.has_value(); });
        REQUIRE(result);
        return std::move(*result);
    }
    template <class T>
    T await(asio::awaitable<T> task) {
        std::optional<T> result;
        asio::co_spawn(io, std::move(task), [&](std::exception_ptr e, T value) {
            if (e) {
                std::rethrow_exception(e);
            }
            result = std::move(value);
        });
        runUntil([&] { return result.has_value(); });
        REQUIRE(result);
        return std::move(*result);
    }
};

void requireAllAnswered(const SequenceResult& r) {
    const SequenceAnswers& a = r.answers;
    for (AnalysisKind kind : kAllAnalyses) {
        INFO(analysisName(kind));
        const AnalysisError* e = a.error(kind);
        INFO((e != nullptr ? e->message : std::string("ok")));
        CHECK(a.asked(kind));
        CHECK(e == nullptr);
    }
    REQUIRE(a.get<FaceStateAnswer>() != nullptr);
    CHECK(a.get<FaceStateAnswer>()->state == FaceState::Awake);
    REQUIRE(a.get<AttentionAnswer>() != nullptr);
    CHECK(a.get<AttentionAnswer>()->lookingAtRoad);
}

bool drained(const Emulator& emulator) {
    json::value s = emulator.stats();
    return s.at("active").to_number<std::int64_t>() == 0 &&
           s.at("queued").to_number<std::int64_t>() == 0;
}

std::vector<json::object> readLog(const std::string& path) {
    std::vector<json::object> lines;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        if (!line.empty()) {
            lines.push_back(json::parse(line).as_object());
        }
    }
    return lines;
}

} // namespace

TEST_CASE("every mode returns all five typed answers", "[e2e]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4", "--latency-ms", "20"});
    for (LlmMode mode :
         {LlmMode::Parallel, LlmMode::Combined, LlmMode::Sequential, LlmMode::Auto}) {
        INFO(llmModeName(mode));
        Rig rig(settingsFor(emulator, mode, api));
        SequenceResult r = rig.analyse(makeSequence(4));
        requireAllAnswered(r);
        CHECK(r.metrics.mode != LlmMode::Auto);
        CHECK_FALSE(r.metrics.cancelled);
        CHECK(r.metrics.requests == (r.metrics.mode == LlmMode::Combined ? 1 : 5));
        LlmMetricsSnapshot m = rig.scheduler->metrics();
        CHECK(m.sequences == 1);
        CHECK(m.requestErrors == 0);
        CHECK(m.sequenceP50Ms > 0);
    }
}

TEST_CASE("streamed requests give the same answers and a time to first token", "[e2e]") {
    Emulator emulator({"--slots", "4"});
    SchedulerOptions options;
    options.stream = true;
    Rig rig(settingsFor(emulator, LlmMode::Parallel), options);
    SequenceResult r = rig.analyse(makeSequence(4));
    requireAllAnswered(r);
    CHECK(r.metrics.analyses[0].firstToken.has_value());
    CHECK(r.metrics.analyses[0].promptTokens > 0);
}

TEST_CASE("parallel overlaps requests and impaired_driving follows face_state with its result",
          "[e2e]") {
    test::TempDir dir;
    const std::string log = (dir.path() / "emulator.log").string();
    Emulator emulator({"--slots", "4", "--latency-ms", "300", "--log", log});
    Rig rig(settingsFor(emulator, LlmMode::Parallel));
    SequenceResult r = rig.analyse(makeSequence(4));
    requireAllAnswered(r);
    json::value stats = emulator.stats();
    CHECK(stats.at("max_concurrency").to_number<std::int64_t>() >= 4);

    std::vector<json::object> lines;
    rig.runUntil(
        [&] {
            lines = readLog(log);
            return std::count_if(lines.begin(), lines.end(),
                                 [](const json::object& l) { return l.contains("analysis"); }) >= 5;
        },
        5s);
    const json::object* face = nullptr;
    const json::object* impaired = nullptr;
    for (const auto& l : lines) {
        if (l.contains("analysis") && l.at("analysis") == "face_state") {
            face = &l;
        }
        if (l.contains("analysis") && l.at("analysis") == "impaired_driving") {
            impaired = &l;
        }
    }
    REQUIRE(face != nullptr);
    REQUIRE(impaired != nullptr);
    CHECK(impaired->at("images") == 4);
    CHECK_THAT(std::string(impaired->at("prompt").as_string()), Catch::Contains("AWAKE"));
    CHECK(impaired->at("t_arrival_ms").to_number<double>() >=
          face->at("t_end_ms").to_number<double>());
}

TEST_CASE("every fault class ends as a classified error or a successful retry, no leak", "[e2e]") {
    using K = AnalysisError::Kind;
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4"});
    const std::vector<std::pair<std::string, std::vector<K>>> cases = {
        {"busy503", {K::HttpStatus}},
        {"http500", {K::HttpStatus}},
        {"stall", {K::Timeout}},
        {"drop", {K::ConnectionFailed, K::MalformedBody}},
        {"midstream", {K::ServerError, K::HttpStatus}},
        {"oversize", {K::MalformedBody}},
        {"invalid", {K::InvalidAnswer}},
        {"prose", {}},
        {"fence", {}},
    };
    for (bool stream : {false, true}) {
        for (const auto& [fault, kinds] : cases) {
            INFO(fault << (stream ? " streamed" : " not streamed"));
            json::object faults;
            for (const auto& [name, unused] : cases) {
                faults[name] = name == fault ? 1.0 : 0.0;
            }
            emulator.configure({{"faults", faults}});
            LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
            // Stall and busy run into the deadline; the 8 MiB oversize answer
            // needs seconds to be produced on a loaded machine.
            s.server.timeout = fault == "stall" || fault == "busy503" ? 800ms : 20000ms;
            // No rate floor here: under the sanitizers the emulator itself
            // can take seconds to produce the 8 MiB answer after its first
            // line, which the floor would (rightly) call a stall. The floor
            // has its own tests (client_test, the hostile fault matrix).
            s.server.minResponseRate = 0;
            SchedulerOptions options;
            options.stream = stream;
            // impaired_driving off: the chain after face_state would double the time.
            AnalysesSettings analyses;
            analyses[AnalysisKind::ImpairedDriving].enabled = false;
            Rig rig(s, options, analyses);
            SequenceResult r = rig.analyse(makeSequence(4));
            for (AnalysisKind kind : kAllAnalyses) {
                INFO(analysisName(kind));
                const AnalysisError* e = r.answers.error(kind);
                if (kind == AnalysisKind::ImpairedDriving) {
                    CHECK_FALSE(r.answers.asked(kind));
                    continue;
                }
                if (kinds.empty()) {
                    CHECK(e == nullptr); // recovered from prose / fences
                } else {
                    REQUIRE(e != nullptr);
                    INFO(e->message);
                    CHECK(std::find(kinds.begin(), kinds.end(), e->kind) != kinds.end());
                    CHECK_FALSE(e->message.empty());
                }
            }
            if (fault == "oversize") {
                CHECK_THAT(r.answers.error(AnalysisKind::FaceState)->message,
                           Catch::Contains("larger than"));
            }
            // No leak: the server has nothing open for us, the client holds no
            // more sockets than its pool allows and no slot.
            rig.runUntil([&] { return drained(emulator); }, 20s);
            CHECK(drained(emulator));
            ClientStats c = rig.client->stats();
            CHECK(c.inFlight == 0);
            CHECK(c.queued == 0);
            CHECK(c.openConnections <= 4);
            CHECK(c.openConnections == c.idleConnections);
        }
    }
}

TEST_CASE("a timeout frees the server slot", "[e2e]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "1", "--fault", "stall=1"});
    LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
    s.server.timeout = 400ms;
    Rig rig(s);
    ChatRequest q;
    q.label = "face_state";
    q.systemPrompt = "sys";
    q.userPrompt = "user";
    q.format = &analysis(AnalysisKind::FaceState).schema();
    ChatOutcome out = rig.await(rig.client->chat(q));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::Timeout);
    rig.runUntil([&] { return drained(emulator); }, 10s);
    json::value stats = emulator.stats();
    CHECK(stats.at("active").to_number<std::int64_t>() == 0);
    CHECK(stats.at("cancelled").to_number<std::int64_t>() >= 1);
    CHECK(rig.client->stats().openConnections == 0);
}

TEST_CASE("the cache answers repeated frames without a request", "[e2e]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4"});
    Rig rig(settingsFor(emulator, LlmMode::Parallel, api));
    SequenceResult first = rig.analyse(makeSequence(4, 7));
    requireAllAnswered(first);
    SequenceResult second = rig.analyse(makeSequence(4, 7));
    requireAllAnswered(second);
    CHECK(second.metrics.requests == 0);
    CHECK(second.metrics.cacheHits == 5);
    SequenceResult other = rig.analyse(makeSequence(4, 8));
    CHECK(other.metrics.requests == 5);
    LlmMetricsSnapshot m = rig.scheduler->metrics();
    CHECK(m.cacheHits == 5);
    CHECK(m.cacheMisses == 10);
    CHECK(m.requests == 10);
    CHECK(emulator.stats().at("requests").to_number<std::int64_t>() == 10);
}

TEST_CASE("health: model missing, no vision, server down give clear messages", "[e2e]") {
    Emulator emulator({"--model", "llava:7b", "--model", "textonly:1b=completion"});
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        s.model.name = "llava:7b";
        Rig rig(s);
        HealthReport ok = rig.await(rig.client->checkHealth());
        CHECK(ok.usable());
        CHECK_FALSE(ok.version.empty());
        CHECK(rig.await(rig.client->warmUp()) == std::nullopt);
    }
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        s.model.name = "absent:3b";
        Rig rig(s);
        HealthReport missing = rig.await(rig.client->checkHealth());
        CHECK_FALSE(missing.modelPresent);
        CHECK(missing.problem == fmt::format("model 'absent:3b' is not available on {}: run "
                                             "`ollama pull absent:3b`",
                                             emulator.url()));
        SequenceResult r = rig.analyse(makeSequence(2));
        const AnalysisError* e = r.answers.error(AnalysisKind::FaceState);
        REQUIRE(e != nullptr);
        CHECK(e->httpStatus == 404);
        CHECK_THAT(e->message, Catch::Contains("ollama pull absent:3b"));
    }
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        s.model.name = "textonly:1b";
        Rig rig(s);
        HealthReport blind = rig.await(rig.client->checkHealth());
        CHECK(blind.modelPresent);
        CHECK_FALSE(blind.vision);
        CHECK_THAT(blind.problem, Catch::Contains("cannot see images"));
    }
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        emulator.process().terminate();
        s.server.timeout = 500ms;
        Rig rig(s);
        HealthReport down = rig.await(rig.client->checkHealth());
        CHECK_FALSE(down.serverReachable);
        CHECK_THAT(down.problem,
                   Catch::Contains("cannot reach the model server at " + s.server.url));
        SequenceResult r = rig.analyse(makeSequence(2));
        const AnalysisError* e = r.answers.error(AnalysisKind::Attention);
        REQUIRE(e != nullptr);
        CHECK(e->kind == AnalysisError::Kind::ConnectionFailed);
        CHECK_THAT(e->message, Catch::Contains(s.server.url));
    }
}

TEST_CASE("a server taking one image per request gets the mosaic", "[e2e]") {
    test::TempDir dir;
    const std::string log = (dir.path() / "emulator.log").string();
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4", "--max-images", "1", "--log", log});
    Rig rig(settingsFor(emulator, LlmMode::Parallel, api));
    SequenceResult first = rig.analyse(makeSequence(4, 1));
    requireAllAnswered(first);
    CHECK(first.metrics.mosaic);
    CHECK(rig.scheduler->metrics().mosaicFallback);
    const auto before = emulator.stats().at("requests").to_number<std::int64_t>();
    SequenceResult second = rig.analyse(makeSequence(4, 2));
    requireAllAnswered(second);
    CHECK(second.metrics.mosaic);
    // The second sequence went straight to the mosaic: five requests, no refusal.
    CHECK(emulator.stats().at("requests").to_number<std::int64_t>() - before == 5);
}

TEST_CASE("auto mode settles on combined with one server slot, parallel with four", "[e2e]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    {
        Emulator emulator({"--slots", "1", "--latency-ms", "60"});
        Rig rig(settingsFor(emulator, LlmMode::Auto, api));
        SequenceResult first = rig.analyse(makeSequence(4, 1));
        CHECK(first.metrics.mode == LlmMode::Parallel); // the first sequence measures
        CHECK(rig.scheduler->activeMode() == LlmMode::Combined);
        SequenceResult second = rig.analyse(makeSequence(4, 2));
        CHECK(second.metrics.mode == LlmMode::Combined);
        requireAllAnswered(second);
        CHECK(rig.scheduler->metrics().concurrencyGain < 1.5);
    }
    {
        // Latency long enough that a loaded machine's scheduling jitter cannot
        // hide the four slots' speed-up (with the emulator's default latency,
        // auto measured 1.43 against four slots on this machine under load).
        Emulator emulator({"--slots", "4", "--latency-ms", "500"});
        Rig rig(settingsFor(emulator, LlmMode::Auto, api));
        rig.analyse(makeSequence(4, 1));
        SequenceResult second = rig.analyse(makeSequence(4, 2));
        CHECK(second.metrics.mode == LlmMode::Parallel);
        CHECK(rig.scheduler->activeMode() == LlmMode::Parallel);
    }
}

TEST_CASE("cancelling a sequence closes its requests on the server", "[e2e]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4", "--latency-ms", "5000"});
    Rig rig(settingsFor(emulator, LlmMode::Parallel, api));
    std::optional<SequenceResult> result;
    const auto ticket =
        rig.scheduler->submit(makeSequence(4), [&](SequenceResult r) { result = std::move(r); });
    rig.runUntil([&] { return emulator.stats().at("active").to_number<std::int64_t>() == 4; }, 10s);
    REQUIRE(emulator.stats().at("active").to_number<std::int64_t>() == 4);
    CHECK(rig.scheduler->cancel(ticket));
    rig.runUntil([&] { return result.has_value(); }, 5s);
    REQUIRE(result);
    CHECK(result->metrics.cancelled);
    const AnalysisError* e = result->answers.error(AnalysisKind::Attention);
    REQUIRE(e != nullptr);
    CHECK(e->kind == AnalysisError::Kind::Cancelled);
    rig.runUntil([&] { return drained(emulator); }, 10s);
    CHECK(drained(emulator));
    CHECK(emulator.stats().at("cancelled").to_number<std::int64_t>() >= 4);
    CHECK(rig.scheduler->metrics().sequencesCancelled == 1);
    CHECK(rig.client->stats().openConnections == 0);
}

// ---------------------------------------------------------------------------
// OpenAI-compatible servers, a path prefix, API keys, https, truncation.

namespace {

ChatRequest faceQuestion(int images = 4) {
    ChatRequest q;
    q.label = "face_state";
    q.systemPrompt = "sys";
    q.userPrompt = "user";
    q.format = &analysis(AnalysisKind::FaceState).schema();
    for (int i = 0; i < images; ++i) {
        q.images.push_back(JpegImage{solidJpeg(64, 48, 200, 180, 160), 64, 48});
    }
    return q;
}

/// A key file as the service would have it (mode 0600).
std::string writeKeyFile(const test::TempDir& dir, const std::string& key, int mode = 0600) {
    const std::string path = (dir.path() / "api.key").string();
    std::ofstream(path) << key << '\n';
    std::filesystem::permissions(path, static_cast<std::filesystem::perms>(mode));
    return path;
}

/// A self-signed certificate for \a subjectAltName made with the openssl
/// command; returns {certificate, key} paths under \a dir, named after \a name.
std::pair<std::string, std::string> makeCertificate(const test::TempDir& dir,
                                                    const std::string& name,
                                                    const std::string& subjectAltName) {
    const std::string cert = (dir.path() / (name + ".crt")).string();
    const std::string key = (dir.path() / (name + ".key")).string();
    const auto [code, output] = test::runCommand(
        {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=" + name, "-addext",
         "subjectAltName=" + subjectAltName, "-keyout", key, "-out", cert},
        30s);
    INFO(output);
    REQUIRE(code == 0);
    return {cert, key};
}

} // namespace

TEST_CASE("OpenAI requests carry the frames as data URLs, the schema and the options",
          "[e2e][openai]") {
    test::TempDir dir;
    const std::string log = (dir.path() / "emulator.log").string();
    Emulator emulator({"--slots", "4", "--log", log});
    LlmSettings s = settingsFor(emulator, LlmMode::Parallel, LlmApi::OpenAi);
    s.model.options.seed = 7;
    Rig rig(s);
    ChatOutcome out = rig.await(rig.client->chat(faceQuestion()));
    REQUIRE(out.ok());
    CHECK(out.result->doneReason == "stop");
    CHECK(out.result->promptTokens > 4 * 256);
    CHECK(out.result->evalTokens > 0);
    CHECK(json::parse(out.result->content).as_object().contains("state"));
    std::vector<json::object> lines;
    rig.runUntil([&] { return !(lines = readLog(log)).empty(); }, 5s);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].at("path") == "/v1/chat/completions");
    CHECK(lines[0].at("api") == "openai");
    CHECK(lines[0].at("images") == 4);
    CHECK(lines[0].at("analysis") == "face_state"); // found by its schema
    CHECK(lines[0].at("status") == 200);
    // The model is listed by /v1/models; another is not.
    CHECK(rig.await(rig.client->checkHealth()).usable());
    CHECK(rig.await(rig.client->warmUp()) == std::nullopt);
    s.model.name = "absent:3b";
    Rig missing(s);
    HealthReport report = missing.await(missing.client->checkHealth());
    CHECK(report.serverReachable);
    CHECK_FALSE(report.modelPresent);
    CHECK(report.problem ==
          fmt::format("model 'absent:3b' is not available on {} (it serves: "
                      "llava:7b-v1.6-mistral-q2_K): set llm.model to one of them, or load it on "
                      "the server",
                      emulator.url()));
    ChatOutcome refused = missing.await(missing.client->chat(faceQuestion()));
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error->httpStatus == 404);
    CHECK_THAT(refused.error->message, Catch::Contains("model 'absent:3b' is not available"));
}

TEST_CASE("an OpenAI client where no /v1 route answers says which API it expected",
          "[e2e][openai]") {
    Emulator emulator({"--path-prefix", "/ollama"});
    LlmSettings s = settingsFor(emulator, LlmMode::Parallel, LlmApi::OpenAi);
    Rig rig(s);
    HealthReport report = rig.await(rig.client->checkHealth());
    CHECK_FALSE(report.usable());
    CHECK_THAT(report.problem, Catch::Contains("/v1/models answered HTTP 404"));
    CHECK_THAT(report.problem, Catch::Contains("llm.api: openai"));
}

TEST_CASE("llm.url with a path prefix: requests go below it, for both APIs", "[e2e][prefix]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4", "--path-prefix", "/models/vision"});
    LlmSettings s = settingsFor(emulator, LlmMode::Combined, api);
    s.server.url = emulator.url() + "/models/vision/";
    Rig rig(s);
    CHECK(rig.await(rig.client->checkHealth()).usable());
    requireAllAnswered(rig.analyse(makeSequence(4)));
    // The same server without the prefix: not found, and said so.
    LlmSettings bare = settingsFor(emulator, LlmMode::Combined, api);
    Rig other(bare);
    ChatOutcome out = other.await(other.client->chat(faceQuestion()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->httpStatus == 404);
}

TEST_CASE("an API key is sent as a bearer token, and without it the server's 401 is final",
          "[e2e][key]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    test::TempDir dir;
    const std::string secret = "sk-test-0123456789abcdef";
    Emulator emulator({"--slots", "4", "--api-key", secret});
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
        s.server.apiKeyFile = writeKeyFile(dir, secret);
        std::string problem;
        const auto key = readApiKeyFile(s.server.apiKeyFile, problem);
        REQUIRE(key);
        s.server.apiKey = *key;
        Rig rig(s);
        CHECK(rig.await(rig.client->checkHealth()).usable());
        requireAllAnswered(rig.analyse(makeSequence(4)));
    }
    for (const std::string& wrong : {std::string(), std::string("sk-wrong")}) {
        INFO("key: " << wrong);
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
        s.server.apiKey = wrong;
        s.server.apiKeyFile = wrong.empty() ? "" : "/run/credentials/dmsd.service/model-key";
        Rig rig(s);
        ChatOutcome out = rig.await(rig.client->chat(faceQuestion()));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error->httpStatus == 401);
        CHECK(out.attempts == 1); // the same key would be refused again
        CHECK_THAT(out.error->message, Catch::Contains("refused the request (HTTP 401"));
        CHECK_THAT(out.error->message,
                   Catch::Contains(wrong.empty() ? "set llm.api_key_file"
                                                 : "check the key in llm.api_key_file"));
        CHECK(out.error->message.find(secret) == std::string::npos);
        HealthReport report = rig.await(rig.client->checkHealth());
        CHECK_FALSE(report.usable());
        CHECK_THAT(report.problem, Catch::Contains("llm.api_key_file"));
    }
    CHECK(emulator.stats().at("unauthorized").to_number<std::int64_t>() >= 4);
}

TEST_CASE("https trusts a private CA through llm.ca_file and refuses a wrong CA, a wrong name "
          "and a plain server at once",
          "[e2e][tls]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    test::TempDir dir;
    const auto [cert, key] = makeCertificate(dir, "localhost", "DNS:localhost,IP:127.0.0.1");
    const auto [otherCert, otherKey] = makeCertificate(dir, "other", "DNS:other.example");
    Emulator emulator({"--slots", "4", "--tls-cert", cert, "--tls-key", key});
    REQUIRE(emulator.url().starts_with("https://127.0.0.1:"));
    const std::string byName = fmt::format("https://localhost:{}", emulator.port());
    for (const std::string& url : {emulator.url(), byName}) {
        INFO(url);
        LlmSettings s = settingsFor(emulator, LlmMode::Combined, api);
        s.server.url = url;
        s.server.caFile = cert;
        Rig rig(s);
        CHECK(rig.await(rig.client->checkHealth()).usable());
        requireAllAnswered(rig.analyse(makeSequence(4)));
        CHECK(rig.client->stats().connectionsOpened == 1); // kept alive over TLS
    }
    auto refusal = [&](LlmSettings s) {
        Rig rig(std::move(s));
        ChatOutcome out = rig.await(rig.client->chat(faceQuestion()));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error->kind == AnalysisError::Kind::ConnectionFailed);
        CHECK(out.attempts == 1);
        return out.error->message;
    };
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Combined, api);
        s.server.caFile = otherCert; // not the CA that signed the server's certificate
        const std::string message = refusal(s);
        CHECK_THAT(message,
                   Catch::Contains("the certificate of " + emulator.url() + " was refused"));
        CHECK_THAT(message, Catch::Contains("llm.ca_file"));
    }
    {
        // The system's store knows nothing of this self-signed certificate.
        const std::string message = refusal(settingsFor(emulator, LlmMode::Combined, api));
        CHECK_THAT(message, Catch::Contains("was refused"));
        CHECK_THAT(message, Catch::Contains("system's CA store"));
    }
    {
        Emulator wrongName({"--tls-cert", otherCert, "--tls-key", otherKey});
        LlmSettings s = settingsFor(wrongName, LlmMode::Combined, api);
        s.server.caFile = otherCert; // trusted, but made for other.example
        s.server.url = fmt::format("https://localhost:{}", wrongName.port());
        const std::string message = refusal(s);
        CHECK_THAT(message, Catch::Contains("hostname mismatch"));
    }
    {
        Emulator plain({});
        LlmSettings s = settingsFor(plain, LlmMode::Combined, api);
        s.server.url = fmt::format("https://127.0.0.1:{}", plain.port());
        s.server.caFile = cert;
        const std::string message = refusal(s);
        CHECK_THAT(message, Catch::Contains("TLS handshake with"));
        CHECK_THAT(message, Catch::Contains("is it an https server?"));
    }
}

TEST_CASE("an answer cut at the token limit is counted and never used", "[e2e][truncation]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    Emulator emulator({"--slots", "4"});
    LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
    s.model.options.numPredict = 3; // pieces of three characters: the answer is cut
    Rig rig(s);
    ChatOutcome out = rig.await(rig.client->chat(faceQuestion()));
    REQUIRE_FALSE(out.ok());
    CHECK(out.error->kind == AnalysisError::Kind::InvalidAnswer);
    CHECK_THAT(out.error->message, Catch::Contains("\"length\""));
    CHECK(out.attempts == 1);
    CHECK(rig.client->stats().truncatedAnswers == 1);
    CHECK(rig.await(rig.client->warmUp()) == std::nullopt); // one token asked, one given
}

TEST_CASE("a prompt beyond the context: Ollama's truncation is detected, OpenAI's error is final",
          "[e2e][truncation]") {
    test::TempDir dir;
    const std::string log = (dir.path() / "emulator.log").string();
    // Two models: one costing 600 tokens per image (llava-1.6-like), one 100.
    Emulator emulator({"--slots", "4", "--log", log, "--model", "big:7b", "--model", "small:7b",
                       "--tokens-per-image", "big:7b=600", "--tokens-per-image", "100", "--context",
                       "2048"});
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, LlmApi::Ollama);
        s.model.name = "big:7b";
        s.model.options.numCtx = 2048;
        Rig rig(s);
        ChatOutcome out = rig.await(rig.client->chat(faceQuestion(4)));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error->kind == AnalysisError::Kind::InvalidAnswer);
        CHECK_THAT(out.error->message, Catch::Contains("reports 2048 prompt tokens, "
                                                       "llm.options.num_ctx is 2048"));
        CHECK(rig.client->stats().truncatedAnswers == 1);
        // Three images fit: answered.
        CHECK(rig.await(rig.client->chat(faceQuestion(3))).ok());
        CHECK(rig.client->stats().truncatedAnswers == 1);
    }
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, LlmApi::Ollama);
        s.model.name = "small:7b";
        s.model.options.numCtx = 2048;
        Rig rig(s);
        CHECK(rig.await(rig.client->chat(faceQuestion(4))).ok());
    }
    {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, LlmApi::OpenAi);
        s.model.name = "big:7b";
        Rig rig(s);
        ChatOutcome out = rig.await(rig.client->chat(faceQuestion(4)));
        REQUIRE_FALSE(out.ok());
        CHECK(out.error->httpStatus == 400);
        CHECK(out.attempts == 1);
        CHECK_THAT(out.error->message, Catch::Contains("exceeds the available context size"));
    }
    std::vector<json::object> lines = readLog(log);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0].at("truncated") == true);
    CHECK(lines[0].at("images_dropped") == 1);
    CHECK(lines[0].at("prompt_tokens") == 2048);
    CHECK(lines[1].at("truncated") == false);
    CHECK(lines[2].at("truncated") == false);
    CHECK(lines[3].at("status") == 400);
}

TEST_CASE("tokens per image are learned from the server, per model, for both APIs",
          "[e2e][budget]") {
    const LlmApi api = GENERATE(LlmApi::Ollama, LlmApi::OpenAi);
    INFO(llmApiName(api));
    test::TempDir dir;
    const std::string log = (dir.path() / "emulator.log").string();
    Emulator emulator({"--log", log, "--model", "big:7b", "--model", "small:7b",
                       "--tokens-per-image", "big:7b=2880", "--tokens-per-image", "576",
                       "--num-ctx", "8192", "--context", "8192"});
    const BudgetPrompt prompt = budgetPrompt(AnalysesSettings{}, 4);
    const JpegImage image{solidJpeg(64, 48, 200, 180, 160), 64, 48};
    std::int64_t text = 0;
    for (const auto& [model, perImage] : {std::pair{"big:7b", 2880}, std::pair{"small:7b", 576}}) {
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel, api);
        s.model.name = model;
        s.model.options.numCtx = 8192;
        Rig rig(s);
        const PromptMeasurement m =
            rig.await(rig.client->measurePrompt(prompt.system, prompt.user, image));
        INFO(model);
        REQUIRE(m.ok());
        CHECK(m.tokensPerImage() == perImage);
        // One token per 4 bytes of text in the emulator: the measured text is the prompt's.
        CHECK(m.textTokens >=
              static_cast<std::int64_t>(prompt.system.size() + prompt.user.size()) / 4);
        CHECK(m.textTokens <=
              static_cast<std::int64_t>(prompt.system.size() + prompt.user.size()) / 4 + 8);
        text = text == 0 ? m.textTokens : text;
        CHECK(m.textTokens == text); // the same text costs the same whatever the model
        CHECK(rig.client->stats().truncatedAnswers == 0); // one token asked: not a truncation
    }
    // Two requests per model, the image first, each asking for one token.
    std::vector<json::object> lines = readLog(log);
    REQUIRE(lines.size() == 4);
    for (const json::object& line : lines) {
        CHECK(line.at("truncated") == false);
    }
    CHECK(lines[0].at("prompt_tokens").to_number<std::int64_t>() == text + 2880);
    CHECK(lines[1].at("prompt_tokens").to_number<std::int64_t>() == text);

    // A context the image alone fills: no figure rather than a wrong one.
    Emulator tight({"--tokens-per-image", "2880", "--num-ctx", "2048", "--context", "2048",
                    "--overflow", "truncate"});
    LlmSettings s = settingsFor(tight, LlmMode::Parallel, api);
    s.model.options.numCtx = 2048;
    s.model.context.size = 2048;
    Rig rig(s);
    const PromptMeasurement m =
        rig.await(rig.client->measurePrompt(prompt.system, prompt.user, image));
    REQUIRE_FALSE(m.ok());
    CHECK_THAT(m.error->message, Catch::Contains("fill the context"));
}

TEST_CASE("num_gpu and num_thread reach Ollama, and /api/ps tells a model not wholly in GPU "
          "memory",
          "[e2e][gpu]") {
    {
        Emulator emulator({"--vram-bytes", "1000000000"});
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        s.model.options.numThread = 4;
        Rig rig(s);
        auto ollama = std::dynamic_pointer_cast<OllamaClient>(rig.client);
        REQUIRE(ollama);
        REQUIRE(rig.await(ollama->warmUp()) == std::nullopt);
        REQUIRE(ollama->placement());
        CHECK(ollama->placement()->sizeVram == 1000000000);
        CHECK(ollama->placement()->size > 1000000000);
        CHECK_FALSE(ollama->placement()->wholeInGpu());
        // The same in the client's figures (GetStatus model.gpu).
        REQUIRE(ollama->stats().placement);
        CHECK(ollama->stats().placement->sizeVram == 1000000000);
    }
    {
        Emulator emulator({});
        LlmSettings s = settingsFor(emulator, LlmMode::Parallel);
        Rig rig(s);
        auto ollama = std::dynamic_pointer_cast<OllamaClient>(rig.client);
        REQUIRE(rig.await(ollama->warmUp()) == std::nullopt);
        REQUIRE(ollama->placement());
        CHECK(ollama->placement()->wholeInGpu());
        // num_gpu 0: everything on the CPU (a new load, the options changed).
        s.model.options.numGpu = 0;
        Rig cpu(s);
        auto onCpu = std::dynamic_pointer_cast<OllamaClient>(cpu.client);
        REQUIRE(cpu.await(onCpu->warmUp()) == std::nullopt);
        REQUIRE(onCpu->placement());
        CHECK(onCpu->placement()->sizeVram == 0);
    }
}
