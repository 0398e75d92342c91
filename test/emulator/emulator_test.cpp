// Black-box tests of the ollama-emulator binary: real process, real HTTP.

#include <atomic>
#include <fstream>
#include <regex>
#include <thread>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "test/emulator/test_http.h"
#include "test/support/temp_dir.h"

namespace json = boost::json;
using dmsd::emulator::test::base64;
using dmsd::emulator::test::Emulator;
using dmsd::emulator::test::httpRequest;
using dmsd::emulator::test::HttpResponse;
using dmsd::emulator::test::ndjson;
using dmsd::emulator::test::PendingRequest;
using dmsd::emulator::test::readLog;
using dmsd::emulator::test::solidJpeg;
using namespace std::chrono_literals;

namespace {

const std::string kModel = "llava:7b-v1.6-mistral-q2_K";

json::object schema(const std::string& title) {
    return json::object{{"title", title}, {"type", "object"}};
}

/// A chat body asking \a analysis with \a images (raw JPEG bytes).
std::string chatBody(const std::string& analysis, const std::vector<std::string>& images = {},
                     bool stream = false, const std::string& prompt = "Look at the driver.",
                     json::object options = {}) {
    json::array b64;
    for (const auto& i : images) {
        b64.emplace_back(base64(i));
    }
    json::object user{{"role", "user"}, {"content", prompt}, {"images", b64}};
    json::object body{
        {"model", kModel},
        {"messages",
         json::array{json::object{{"role", "system"}, {"content", "Answer with JSON."}}, user}},
        {"stream", stream},
        {"format", schema(analysis)}};
    if (!options.empty()) {
        body["options"] = options;
    }
    return json::serialize(body);
}

json::object parseObject(const std::string& text) {
    return json::parse(text).as_object();
}

/// The assistant content of a stream:false response, parsed as JSON.
json::object answerOf(const HttpResponse& res) {
    auto doc = parseObject(res.body);
    return json::parse(doc.at("message").at("content").as_string()).as_object();
}

std::string errorOf(const HttpResponse& res) {
    return std::string(parseObject(res.body).at("error").as_string());
}

std::int64_t stat(Emulator& e, const std::string& key) {
    return e.stats().at(key).as_int64();
}

std::vector<json::object> chatLines(const std::string& log) {
    std::vector<json::object> out;
    for (auto& line : readLog(log)) {
        if (line.at("path") == "/api/chat") {
            out.push_back(std::move(line));
        }
    }
    return out;
}

} // namespace

TEST_CASE("health and metadata routes have Ollama's shapes") {
    Emulator e({"--seed", "1", "--model", "Foo", "--model", kModel + "=completion,vision,tools"});
    const auto port = e.port();

    auto root = httpRequest(port, "GET", "/");
    CHECK(root.status == 200);
    CHECK(root.body == "Ollama is running");
    CHECK(root.header("content-type") == "text/plain; charset=utf-8");
    auto head = httpRequest(port, "HEAD", "/");
    CHECK(head.status == 200);
    CHECK(head.body.empty());

    auto version = httpRequest(port, "GET", "/api/version");
    CHECK(version.status == 200);
    CHECK(version.header("content-type") == "application/json; charset=utf-8");
    CHECK(version.body == R"({"version":"0.12.6"})");

    auto tags = parseObject(httpRequest(port, "GET", "/api/tags").body);
    const auto& models = tags.at("models").as_array();
    REQUIRE(models.size() == 2);
    CHECK(models[0].at("name") == "Foo:latest");
    CHECK(models[1].at("name").as_string() == kModel);
    CHECK(models[1].at("details").at("format") == "gguf");

    SECTION("show lists capabilities; x matches x:latest case-insensitively") {
        auto show = httpRequest(port, "POST", "/api/show", R"({"model":"foo"})");
        REQUIRE(show.status == 200);
        auto doc = parseObject(show.body);
        CHECK(doc.at("capabilities") == json::array{"completion", "vision"});
        CHECK(doc.at("model_info").as_object().contains("general.architecture"));
        auto tools = parseObject(
            httpRequest(port, "POST", "/api/show", R"({"name":")" + kModel + R"("})").body);
        CHECK(tools.at("capabilities") == json::array{"completion", "vision", "tools"});
        auto missing = httpRequest(port, "POST", "/api/show", R"({"model":"bar"})");
        CHECK(missing.status == 404);
        CHECK(errorOf(missing) == "model 'bar' not found");
    }
    SECTION("ps lists a model once loaded") {
        CHECK(
            parseObject(httpRequest(port, "GET", "/api/ps").body).at("models").as_array().empty());
        auto load = e.chat(R"({"model":"FOO:latest"})");
        REQUIRE(load.status == 200);
        auto ps = parseObject(httpRequest(port, "GET", "/api/ps").body);
        REQUIRE(ps.at("models").as_array().size() == 1);
        CHECK(ps.at("models").as_array()[0].at("name") == "Foo:latest");
    }
    SECTION("unknown route, wrong method, foreign Host") {
        auto unknown = httpRequest(port, "GET", "/api/nothing");
        CHECK(unknown.status == 404);
        CHECK(unknown.body == "404 page not found");
        auto wrong = httpRequest(port, "GET", "/api/chat");
        CHECK(wrong.status == 405);
        CHECK(wrong.body == "405 method not allowed");
        auto foreign = httpRequest(port, "GET", "/api/version", {}, {{"Host", "evil.example.com"}});
        CHECK(foreign.status == 403);
        CHECK(foreign.body.empty());
        auto local = httpRequest(port, "GET", "/api/version", {}, {{"Host", "localhost:11434"}});
        CHECK(local.status == 200);
    }
}

TEST_CASE("chat request errors carry Ollama's statuses and texts") {
    Emulator e({"--seed", "1"});
    auto empty = e.chat("");
    CHECK(empty.status == 400);
    CHECK(errorOf(empty) == "missing request body");

    auto bad = e.chat("{x");
    CHECK(bad.status == 400);
    CHECK(errorOf(bad) == "invalid character 'x' looking for beginning of object key string");

    auto dataUri = e.chat(
        R"({"model":")" + kModel +
        R"(","messages":[{"role":"user","content":"hi","images":["data:image/jpeg;base64,/9j/4AAQ"]}]})");
    CHECK(dataUri.status == 400);
    CHECK(errorOf(dataUri) == "illegal base64 data at input byte 4");

    auto unknown = e.chat(R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})");
    CHECK(unknown.status == 404);
    CHECK(errorOf(unknown) == "model 'nope' not found");

    auto noModel = e.chat(R"({"messages":[]})");
    CHECK(noModel.status == 400);
    CHECK(errorOf(noModel) == "model is required");

    auto optionType =
        e.chat(chatBody("face_state", {}, false, "x", json::object{{"temperature", "hot"}}));
    CHECK(optionType.status == 500);
    CHECK(errorOf(optionType) == "option \"temperature\" must be of type float32");

    auto format =
        e.chat(R"({"model":")" + kModel +
               R"(","stream":false,"format":"yaml","messages":[{"role":"user","content":"hi"}]})");
    CHECK(format.status == 500);
    CHECK(errorOf(format).rfind("invalid format:", 0) == 0);

    auto think = e.chat(R"({"model":")" + kModel +
                        R"(","think":true,"messages":[{"role":"user","content":"hi"}]})");
    CHECK(think.status == 400);
    CHECK(errorOf(think) == "\"" + kModel + "\" does not support thinking");

    auto keepAlive = e.chat(R"({"model":")" + kModel + R"(","keep_alive":"-1","messages":[]})");
    CHECK(keepAlive.status == 400);
    CHECK(errorOf(keepAlive) == "time: missing unit in duration \"-1\"");
}

TEST_CASE("streaming chat is NDJSON with a final done line and nanosecond metrics") {
    Emulator e({"--seed", "1"});
    auto res = e.chat(chatBody("face_state", {solidJpeg(64, 48, 200, 200, 200)}, true));
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/x-ndjson");
    CHECK(res.header("transfer-encoding") == "chunked");
    auto lines = ndjson(res.body);
    REQUIRE(lines.size() >= 3);
    std::string content;
    const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z)");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const auto& o = lines[i].as_object();
        CHECK(o.at("model").as_string() == kModel);
        CHECK(std::regex_match(std::string(o.at("created_at").as_string()), rfc3339));
        content += std::string(o.at("message").at("content").as_string());
        CHECK(o.at("done").as_bool() == (i + 1 == lines.size()));
    }
    const auto& last = lines.back().as_object();
    CHECK(last.at("done_reason") == "stop");
    for (const char* metric : {"total_duration", "load_duration", "prompt_eval_count",
                               "prompt_eval_duration", "eval_count", "eval_duration"}) {
        INFO(metric);
        REQUIRE(last.contains(metric));
        CHECK(last.at(metric).is_int64());
        CHECK(last.at(metric).as_int64() > 0);
    }
    CHECK(last.at("eval_count").as_int64() == static_cast<std::int64_t>(lines.size() - 1));
    auto answer = json::parse(content).as_object();
    CHECK(answer.at("state") == "AWAKE");
    CHECK(answer.at("eyes_closed") == false);
}

TEST_CASE("non-streaming chat answers one object, HTML-escaped like Go") {
    dmsd::test::TempDir dir;
    const auto script = (dir / "script.json").string();
    std::ofstream(script)
        << R"({"defaults":{"general_scene":{"description":"a <b> & c","driver_visible":true,"occupants":2}}})";
    Emulator e({"--seed", "1", "--script", script});
    auto res = e.chat(chatBody("general_scene"));
    REQUIRE(res.status == 200);
    CHECK(res.header("content-type") == "application/json; charset=utf-8");
    CHECK(res.body.find("\\u003cb\\u003e \\u0026 c") != std::string::npos);
    auto doc = parseObject(res.body);
    CHECK(doc.at("done") == true);
    CHECK(doc.at("done_reason") == "stop");
    auto answer = answerOf(res);
    CHECK(answer.at("description") == "a <b> & c");
    CHECK(answer.at("occupants") == 2);
}

TEST_CASE("load-only and unload requests") {
    Emulator e({"--seed", "1", "--load-ms", "5"});
    auto load = e.chat(R"({"model":")" + kModel + R"(","messages":[]})");
    REQUIRE(load.status == 200);
    CHECK(load.header("content-type") == "application/json; charset=utf-8");
    auto doc = parseObject(load.body);
    CHECK(doc.at("done_reason") == "load");
    CHECK(doc.at("message").at("content") == "");
    CHECK(stat(e, "loads") == 1);
    CHECK(
        parseObject(httpRequest(e.port(), "GET", "/api/ps").body).at("models").as_array().size() ==
        1);

    auto unload = e.chat(R"({"model":")" + kModel + R"(","messages":[],"keep_alive":0})");
    REQUIRE(unload.status == 200);
    CHECK(parseObject(unload.body).at("done_reason") == "unload");
    CHECK(
        parseObject(httpRequest(e.port(), "GET", "/api/ps").body).at("models").as_array().empty());
}

TEST_CASE("changed load-time options reload the model") {
    dmsd::test::TempDir dir;
    const auto log = (dir / "log.jsonl").string();
    Emulator e({"--seed", "1", "--load-ms", "5", "--log", log});
    REQUIRE(
        e.chat(chatBody("face_state", {}, false, "x", json::object{{"num_ctx", 4096}})).status ==
        200);
    REQUIRE(
        e.chat(chatBody("face_state", {}, false, "x", json::object{{"num_ctx", 4096}})).status ==
        200);
    REQUIRE(
        e.chat(chatBody("face_state", {}, false, "x", json::object{{"num_ctx", 8192}})).status ==
        200);
    auto lines = chatLines(log);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0].at("cold_load") == true);
    CHECK(lines[1].at("cold_load") == false);
    CHECK(lines[2].at("cold_load") == true);
    CHECK(stat(e, "loads") == 2);
}

TEST_CASE("one slot serializes concurrent requests") {
    dmsd::test::TempDir dir;
    const auto log = (dir / "log.jsonl").string();
    Emulator e({"--seed", "1", "--slots", "1", "--latency-ms", "30", "--log", log});
    std::vector<std::thread> threads;
    std::atomic<int> ok{0};
    for (int i = 0; i < 3; ++i) {
        threads.emplace_back([&] {
            if (e.chat(chatBody("attention")).status == 200) {
                ++ok;
            }
        });
    }
    for (auto& t : threads) {
        t.join();
    }
    CHECK(ok == 3);
    CHECK(stat(e, "max_concurrency") == 1);
    for (const auto& line : chatLines(log)) {
        CHECK(line.at("concurrency") == 1);
        CHECK(line.at("analysis") == "attention");
    }
}

TEST_CASE("four slots run four requests at once and a fifth waits") {
    Emulator e({"--seed", "1", "--slots", "4", "--latency-ms", "60000"});
    std::vector<PendingRequest> pending;
    for (int i = 0; i < 5; ++i) {
        pending.emplace_back(e.port(), "POST", "/api/chat", chatBody("hand_position"));
    }
    REQUIRE(e.waitForStat("active", 4));
    REQUIRE(e.waitForStat("queued", 1));
    CHECK(stat(e, "max_concurrency") == 4);
    for (auto& p : pending) {
        p.close();
    }
    REQUIRE(e.waitForStat("cancelled", 5));
    CHECK(e.waitForStat("active", 0));
    CHECK(stat(e, "queued") == 0);
}

TEST_CASE("a closed connection cancels the request and frees its slot") {
    dmsd::test::TempDir dir;
    const auto log = (dir / "log.jsonl").string();
    Emulator e({"--seed", "1", "--slots", "1", "--latency-ms", "60000", "--log", log});
    PendingRequest first(e.port(), "POST", "/api/chat", chatBody("face_state"));
    REQUIRE(e.waitForStat("active", 1));
    PendingRequest second(e.port(), "POST", "/api/chat", chatBody("attention"));
    REQUIRE(e.waitForStat("queued", 1));
    CHECK(first.available() == 0); // nothing is sent before the first token

    first.close(); // cancelled while generating: the queued one gets the slot
    REQUIRE(e.waitForStat("cancelled", 1));
    REQUIRE(e.waitForStat("queued", 0));
    CHECK(stat(e, "active") == 1);

    REQUIRE(e.configure(R"({"latency_ms":0})") == 200);
    PendingRequest third(e.port(), "POST", "/api/chat", chatBody("general_scene"));
    REQUIRE(e.waitForStat("queued", 1));
    third.close(); // cancelled while queued
    REQUIRE(e.waitForStat("cancelled", 2));
    second.close();
    REQUIRE(e.waitForStat("cancelled", 3));
    REQUIRE(e.waitForStat("active", 0));

    auto fourth = e.chat(chatBody("face_state"));
    CHECK(fourth.status == 200);
    auto lines = chatLines(log);
    REQUIRE(lines.size() == 4);
    int cancelled = 0;
    for (const auto& line : lines) {
        if (line.at("cancelled").as_bool()) {
            ++cancelled;
            CHECK(line.at("status") == 499);
        }
    }
    CHECK(cancelled == 3);
}

TEST_CASE("the pending-load queue gives 503 only while a load is pending") {
    SECTION("cold load") {
        Emulator e({"--seed", "1", "--queue", "1", "--load-ms", "60000"});
        PendingRequest loading(e.port(), "POST", "/api/chat", chatBody("face_state"));
        REQUIRE(e.waitForStat("loading", 1));
        PendingRequest pending(e.port(), "POST", "/api/chat", chatBody("face_state"));
        REQUIRE(e.waitForStat("pending_loads", 1));
        auto busy = e.chat(chatBody("face_state"));
        CHECK(busy.status == 503);
        CHECK(errorOf(busy) == "server busy, please try again.  maximum pending requests exceeded");
    }
    SECTION("a loaded model queues without bound") {
        Emulator e({"--seed", "1", "--queue", "0", "--preloaded", "--latency-ms", "60000"});
        std::vector<PendingRequest> pending;
        for (int i = 0; i < 4; ++i) {
            pending.emplace_back(e.port(), "POST", "/api/chat", chatBody("face_state"));
        }
        REQUIRE(e.waitForStat("queued", 3));
        CHECK(stat(e, "active") == 1);
        CHECK(e.stats().at("by_status").as_object().empty());
    }
}

TEST_CASE("injected faults are observable") {
    Emulator e({"--seed", "7", "--oversize-bytes", "1000000"});
    auto only = [&](const std::string& kind) {
        json::object faults;
        for (const char* k : {"busy503", "http500", "stall", "drop", "midstream", "oversize",
                              "invalid", "prose", "fence"}) {
            faults[k] = k == kind ? 1.0 : 0.0;
        }
        REQUIRE(e.configure(json::serialize(json::object{{"faults", faults}})) == 200);
    };
    SECTION("http500") {
        only("http500");
        auto res = e.chat(chatBody("face_state"));
        CHECK(res.status == 500);
        CHECK(errorOf(res).find("model runner has unexpectedly stopped") == 0);
        auto streamed = e.chat(chatBody("face_state", {}, true));
        CHECK(streamed.status == 500);
    }
    SECTION("busy503") {
        only("busy503");
        auto res = e.chat(chatBody("face_state"));
        CHECK(res.status == 503);
        CHECK(errorOf(res).find("server busy") == 0);
    }
    SECTION("drop") {
        only("drop");
        auto res = e.chat(chatBody("face_state"));
        CHECK(res.status == 200);
        CHECK_FALSE(res.complete);
        auto streamed = e.chat(chatBody("face_state", {}, true));
        CHECK(streamed.status == 200);
        CHECK_FALSE(streamed.complete);
    }
    SECTION("stall holds the slot until the client closes") {
        only("stall");
        PendingRequest stalled(e.port(), "POST", "/api/chat", chatBody("face_state"));
        REQUIRE(e.waitForStat("active", 1));
        CHECK(stalled.available() == 0);
        stalled.close();
        REQUIRE(e.waitForStat("cancelled", 1));
        CHECK(e.waitForStat("active", 0));
    }
    SECTION("midstream") {
        only("midstream");
        auto streamed = e.chat(chatBody("face_state", {}, true));
        CHECK(streamed.status == 200);
        auto lines = ndjson(streamed.body);
        REQUIRE(lines.size() >= 2);
        CHECK(lines.back().as_object().contains("error"));
        for (const auto& l : lines) {
            CHECK_FALSE(l.as_object().contains("done_reason"));
        }
        auto whole = e.chat(chatBody("face_state"));
        CHECK(whole.status == 500);
    }
    SECTION("oversize") {
        only("oversize");
        auto res = e.chat(chatBody("face_state"));
        CHECK(res.status == 200);
        CHECK(res.body.size() > 1000000);
    }
    SECTION("invalid, prose and fence content") {
        only("invalid");
        auto invalid = parseObject(e.chat(chatBody("face_state")).body);
        std::string content(invalid.at("message").at("content").as_string());
        boost::system::error_code ec;
        json::parse(content, ec);
        CHECK(ec);

        only("prose");
        auto prose = parseObject(e.chat(chatBody("face_state")).body);
        content = std::string(prose.at("message").at("content").as_string());
        CHECK(content.front() != '{');
        auto open = content.find('{');
        auto close = content.rfind('}');
        REQUIRE(open != std::string::npos);
        CHECK(json::parse(content.substr(open, close - open + 1)).as_object().at("state") ==
              "AWAKE");

        only("fence");
        auto fence = parseObject(e.chat(chatBody("face_state")).body);
        content = std::string(fence.at("message").at("content").as_string());
        CHECK(content.rfind("```json\n", 0) == 0);
    }
    auto faults = e.stats().at("faults").as_object();
    CHECK_FALSE(faults.empty());
}

TEST_CASE("legacy errors: a streaming error before output is HTTP 200 and an error line") {
    Emulator e({"--seed", "1", "--legacy-errors", "--fault", "http500=1"});
    auto streamed = e.chat(chatBody("face_state", {}, true));
    CHECK(streamed.status == 200);
    auto lines = ndjson(streamed.body);
    REQUIRE(lines.size() == 1);
    CHECK(lines[0].as_object().contains("error"));
    auto whole = e.chat(chatBody("face_state"));
    CHECK(whole.status == 500);
}

TEST_CASE("script rules pick answers by image colour and prompt") {
    dmsd::test::TempDir dir;
    const auto script = (dir / "script.json").string();
    const auto log = (dir / "log.jsonl").string();
    std::ofstream(script) << R"({
      "rules": [
        {"analysis": "face_state", "color": [255, 0, 0], "tolerance": 60,
         "answer": {"state": "SLEEPY", "eyes_closed": true, "yawning": true, "confidence": 0.8}},
        {"analysis": "attention", "color": [0, 255, 0], "tolerance": 60,
         "answer": {"looking_at_road": false, "gaze": "phone", "eyes_open": true, "confidence": 0.7}},
        {"analysis": "impaired_driving", "prompt_contains": "SLEEPY",
         "answer": {"concern": "HIGH", "indicators": ["eyes closed"], "confidence": 0.9}}
      ]})";
    Emulator e({"--seed", "1", "--script", script, "--log", log});
    const auto red = solidJpeg(64, 48, 255, 0, 0);
    const auto green = solidJpeg(64, 48, 0, 255, 0);
    const auto blue = solidJpeg(64, 48, 0, 0, 255);

    CHECK(answerOf(e.chat(chatBody("face_state", {red, red, red, red}))).at("state") == "SLEEPY");
    CHECK(answerOf(e.chat(chatBody("face_state", {blue, blue}))).at("state") == "AWAKE");
    CHECK(answerOf(e.chat(chatBody("attention", {green}))).at("gaze") == "phone");
    CHECK(answerOf(e.chat(chatBody("attention", {red}))).at("gaze") == "road");

    auto combined = answerOf(e.chat(chatBody("combined", {red, red})));
    CHECK(combined.at("face_state").at("state") == "SLEEPY");
    CHECK(combined.at("attention").at("gaze") == "road");
    CHECK(combined.at("hand_position").at("hands_on_wheel") == 2);
    CHECK(combined.at("impaired_driving").at("concern") == "LOW");

    auto impaired = answerOf(e.chat(chatBody("impaired_driving", {red}, false,
                                             "The face state is SLEEPY. Is the driver impaired?")));
    CHECK(impaired.at("concern") == "HIGH");

    auto lines = chatLines(log);
    REQUIRE(lines.size() == 6);
    const auto& first = lines[0];
    CHECK(first.at("images") == 4);
    CHECK(first.at("image_bytes").as_array().size() == 4);
    const auto& rgb = first.at("mean_rgb").as_array();
    CHECK(rgb[0].to_number<double>() > 200);
    CHECK(rgb[1].to_number<double>() < 50);
    CHECK(first.at("rules") == json::array{0});
    CHECK(lines[4].at("analysis") == "combined");
    CHECK(lines[5].at("prompt_mentions") == json::array{"SLEEPY"});
    CHECK(std::string(lines[5].at("prompt").as_string()).find("SLEEPY") != std::string::npos);
}

TEST_CASE("a last-image-only model answers from the last image, which alone costs tokens") {
    dmsd::test::TempDir dir;
    const auto script = (dir / "script.json").string();
    const auto log = (dir / "log.jsonl").string();
    std::ofstream(script) << R"({"rules": [
        {"analysis": "face_state", "color": [255, 0, 0], "tolerance": 60,
         "answer": {"state": "SLEEPY", "eyes_closed": true, "yawning": false, "confidence": 0.8}}]})";
    Emulator e({"--seed", "1", "--script", script, "--log", log, "--model", kModel,
                "--last-image-only", kModel, "--tokens-per-image", "100"});
    const auto red = solidJpeg(64, 48, 255, 0, 0);
    const auto blue = solidJpeg(64, 48, 0, 0, 255);
    // Two blue frames, then red: the model sees the red one only.
    CHECK(answerOf(e.chat(chatBody("face_state", {blue, blue, red}))).at("state") == "SLEEPY");
    // Red, then blue: the red frames go unseen.
    CHECK(answerOf(e.chat(chatBody("face_state", {red, red, blue}))).at("state") == "AWAKE");
    const auto lines = chatLines(log);
    REQUIRE(lines.size() == 2);
    CHECK(lines[0].at("images") == 3);
    CHECK(lines[0].at("images_ignored") == 2);
    const auto oneImage = lines[0].at("prompt_tokens").to_number<std::int64_t>();
    // The text costs a token per 4 bytes, the one image seen 100.
    CHECK(oneImage < 100 + 20);
    CHECK(oneImage >= 100);

    // Without the flag the same model sees all three (mean colour: not red).
    Emulator all({"--seed", "1", "--script", script, "--model", kModel});
    CHECK(answerOf(all.chat(chatBody("face_state", {blue, blue, red}))).at("state") == "AWAKE");
}

TEST_CASE("max-images 1 rejects several images per message like mllama") {
    Emulator e({"--seed", "1", "--max-images", "1"});
    const auto img = solidJpeg(32, 32, 10, 10, 10);
    auto two = e.chat(chatBody("face_state", {img, img}));
    CHECK(two.status == 500);
    CHECK(errorOf(two) == "this model only supports one image while more than one image requested");
    CHECK(e.chat(chatBody("face_state", {img})).status == 200);
}

TEST_CASE("command line errors exit 2 and SIGTERM exits 0") {
    using dmsd::test::runCommand;
    for (std::vector<std::string> bad : {std::vector<std::string>{"--fault", "bogus=1"},
                                         {"--slots", "0"},
                                         {"--script", "/nonexistent/script.json"},
                                         {"--model", "a:b:c"},
                                         {"--no-such-option"}}) {
        std::vector<std::string> argv{DMSD_OLLAMA_EMULATOR};
        argv.insert(argv.end(), bad.begin(), bad.end());
        auto [code, output] = runCommand(argv, 20s);
        INFO(output);
        CHECK(code == 2);
        CHECK(output.find("ollama-emulator:") != std::string::npos);
    }
    auto [helpCode, help] = runCommand({DMSD_OLLAMA_EMULATOR, "--help"}, 20s);
    CHECK(helpCode == 0);
    CHECK(help.find("--slots") != std::string::npos);

    Emulator e({"--seed", "1", "--latency-ms", "60000"});
    PendingRequest inFlight(e.port(), "POST", "/api/chat", chatBody("face_state"));
    REQUIRE(e.waitForStat("active", 1));
    CHECK(e.process().terminate(10s) == 0);
}
