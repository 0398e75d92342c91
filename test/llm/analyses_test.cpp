// Parser on real-world model output shapes, prompts and schemas, the request
// body (base64 against a reference encoder), the response cache.

#include <boost/beast/core/detail/base64.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "llm/analyses/attention.h"
#include "llm/analyses/face_state.h"
#include "llm/analyses/general_scene.h"
#include "llm/analyses/hand_position.h"
#include "llm/analyses/impaired_driving.h"
#include "llm/analysis.h"
#include "llm/ollama_body.h"
#include "llm/response_cache.h"

using namespace dmsd;
namespace json = boost::json;

namespace {

std::string referenceBase64(const std::vector<unsigned char>& bytes) {
    namespace b64 = boost::beast::detail::base64;
    std::string out(b64::encoded_size(bytes.size()), '\0');
    out.resize(b64::encode(out.data(), bytes.data(), bytes.size()));
    return out;
}

JpegImage imageOf(std::vector<unsigned char> bytes) {
    return JpegImage{std::make_shared<const std::vector<unsigned char>>(std::move(bytes)), 4, 4};
}

} // namespace

TEST_CASE("face_state: plain JSON", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(
        R"({"state":"SLEEPY","eyes_closed":true,"yawning":false,"confidence":0.8})");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Sleepy);
    CHECK(o.answer->eyesClosed);
    CHECK_FALSE(o.answer->yawning);
    CHECK(o.answer->confidence == Approx(0.8));
}

TEST_CASE("face_state: JSON wrapped in prose", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(
        "Sure! Here is my assessment of the driver:\n"
        R"({"state": "TIRED", "eyes_closed": false, "yawning": true, "confidence": 0.6})"
        "\nLet me know if you need anything else.");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Tired);
    CHECK(o.answer->yawning);
}

TEST_CASE("face_state: JSON in a code fence", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>("```json\n{\"state\": \"AWAKE\", \"eyes_closed\": false, "
                                          "\"yawning\": false, \"confidence\": 0.95}\n```");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Awake);
    CHECK(o.answer->confidence == Approx(0.95));
}

TEST_CASE("face_state: fence without language tag and prose around", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(
        "The driver looks fine.\n```\n{\"state\":\"neutral\"}\n```\nDone.");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Neutral);
}

TEST_CASE("face_state: wrong case in enum and keys, extra keys, strings for numbers", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(
        R"({"State":"sleepy","Eyes_Closed":"true","yawning":"no",)"
        R"("confidence":"0.7","reasoning":"eyelids droop","extra":{"a":1}})");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Sleepy);
    CHECK(o.answer->eyesClosed);
    CHECK_FALSE(o.answer->yawning);
    CHECK(o.answer->confidence == Approx(0.7));
}

TEST_CASE("face_state: synonyms and a percentage confidence", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(R"({"state":"Drowsy","confidence":85})");
    REQUIRE(o.ok());
    CHECK(o.answer->state == FaceState::Sleepy);
    CHECK(o.answer->confidence == Approx(0.85));
}

TEST_CASE("face_state: missing required field is an error naming it", "[parser]") {
    auto o = parseAnswer<FaceStateAnswer>(R"({"eyes_closed":true,"confidence":0.5})");
    REQUIRE_FALSE(o.ok());
    CHECK(o.error->kind == AnalysisError::Kind::InvalidAnswer);
    CHECK_THAT(o.error->message, Catch::Contains("face_state") && Catch::Contains("'state'"));
}

TEST_CASE("face_state: wrong types are errors", "[parser]") {
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":"AWAKE","eyes_closed":"maybe"})").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":3})").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":"AWAKE","confidence":"high"})").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":"AWAKE","confidence":-2})").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":"HUNGRY"})").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(R"({"state":"AWAKE","eyes_closed":1})").ok());
}

TEST_CASE("truncated and non-JSON output are errors, never crashes", "[parser]") {
    auto t = parseAnswer<FaceStateAnswer>(R"({"state":"AWAKE","eyes_closed":tr)");
    REQUIRE_FALSE(t.ok());
    CHECK_THAT(t.error->message, Catch::Contains("truncated"));
    auto p =
        parseAnswer<FaceStateAnswer>("I cannot determine the driver's state from these images.");
    REQUIRE_FALSE(p.ok());
    CHECK_THAT(p.error->message, Catch::Contains("no JSON object"));
    CHECK_FALSE(parseAnswer<FaceStateAnswer>("").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>("{not json at all}").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>("[1,2,3]").ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>(std::string(5000, '{')).ok());
    CHECK_FALSE(parseAnswer<FaceStateAnswer>("\"AWAKE\"").ok());
}

TEST_CASE("prose containing braces before the answer", "[parser]") {
    auto o = parseAnswer<AttentionAnswer>(
        "Gaze options {road, mirror} considered. Answer: "
        R"({"looking_at_road": false, "gaze": "Phone", "eyes_open": true, "confidence": 0.9})");
    REQUIRE(o.ok());
    CHECK(o.answer->gaze == Gaze::Phone);
    CHECK_FALSE(o.answer->lookingAtRoad);
}

TEST_CASE("attention: one of looking_at_road/gaze derives the other", "[parser]") {
    auto g = parseAnswer<AttentionAnswer>(R"({"gaze":"road"})");
    REQUIRE(g.ok());
    CHECK(g.answer->lookingAtRoad);
    auto l = parseAnswer<AttentionAnswer>(R"({"looking_at_road":false})");
    REQUIRE(l.ok());
    CHECK(l.answer->gaze == Gaze::Unknown);
    CHECK_FALSE(parseAnswer<AttentionAnswer>(R"({"eyes_open":true})").ok());
    auto s = parseAnswer<AttentionAnswer>(R"({"looking_at_road":true,"gaze":"straight ahead"})");
    REQUIRE(s.ok());
    CHECK(s.answer->gaze == Gaze::Road);
}

TEST_CASE("hand_position: counts and holding", "[parser]") {
    auto o = parseAnswer<HandPositionAnswer>(
        R"({"hands_on_wheel":1,"holding":"Cell Phone","confidence":0.7})");
    REQUIRE(o.ok());
    CHECK(o.answer->handsOnWheel == 1);
    CHECK(o.answer->holding == Holding::Phone);
    auto w = parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":"both","holding":"nothing"})");
    REQUIRE(w.ok());
    CHECK(w.answer->handsOnWheel == 2);
    CHECK(parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":2.0,"holding":"drink"})").ok());
    CHECK_FALSE(
        parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":3,"holding":"nothing"})").ok());
    CHECK_FALSE(
        parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":1.5,"holding":"nothing"})").ok());
    CHECK_FALSE(
        parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":true,"holding":"nothing"})").ok());
    CHECK_FALSE(parseAnswer<HandPositionAnswer>(R"({"hands_on_wheel":2})").ok());
}

TEST_CASE("general_scene and impaired_driving", "[parser]") {
    auto s = parseAnswer<GeneralSceneAnswer>(
        R"({"description":"A driver holds the wheel.","driver_visible":true,"occupants":"1"})");
    REQUIRE(s.ok());
    CHECK(s.answer->occupants == 1);
    CHECK(s.answer->description == "A driver holds the wheel.");
    CHECK_FALSE(
        parseAnswer<GeneralSceneAnswer>(R"({"description":42,"driver_visible":true})").ok());
    CHECK_FALSE(parseAnswer<GeneralSceneAnswer>(
                    R"({"description":"x","driver_visible":true,"occupants":-1})")
                    .ok());

    auto i = parseAnswer<ImpairedDrivingAnswer>(
        R"({"concern":"high","indicators":["slumped posture","head drooping"],"confidence":0.9})");
    REQUIRE(i.ok());
    CHECK(i.answer->concern == Concern::High);
    CHECK(i.answer->indicators.size() == 2);
    auto one =
        parseAnswer<ImpairedDrivingAnswer>(R"({"concern":"Medium","indicators":"glazed eyes"})");
    REQUIRE(one.ok());
    CHECK(one.answer->concern == Concern::Moderate);
    CHECK(one.answer->indicators == std::vector<std::string>{"glazed eyes"});
    CHECK_FALSE(parseAnswer<ImpairedDrivingAnswer>(R"({"concern":"LOW","indicators":[1,2]})").ok());
}

TEST_CASE("combined answer keyed by analysis name", "[parser]") {
    const std::string content =
        R"(Here you go: {"face_state":{"state":"AWAKE","eyes_closed":false,"yawning":false,"confidence":0.9},
        "Attention":{"looking_at_road":true,"gaze":"road","eyes_open":true,"confidence":0.8},
        "hand_position":{"hands_on_wheel":2,"holding":"nothing","confidence":0.7},
        "general_scene":{"description":"driver","driver_visible":true,"occupants":1}})";
    AnalysisSet all{};
    all.fill(true);
    SequenceAnswers answers;
    CHECK(parseCombinedInto(content, all, answers) == 4);
    CHECK(answers.get<FaceStateAnswer>() != nullptr);
    CHECK(answers.get<AttentionAnswer>() != nullptr);
    REQUIRE(answers.asked(AnalysisKind::ImpairedDriving));
    REQUIRE(answers.error(AnalysisKind::ImpairedDriving) != nullptr);
    CHECK_THAT(answers.error(AnalysisKind::ImpairedDriving)->message,
               Catch::Contains("impaired_driving"));

    SequenceAnswers wrapped;
    AnalysisSet onlyFace{};
    onlyFace[0] = true;
    CHECK(parseCombinedInto(R"({"analyses":{"face_state":{"state":"SLEEPY"}}})", onlyFace,
                            wrapped) == 1);
    CHECK_FALSE(wrapped.asked(AnalysisKind::Attention));

    SequenceAnswers broken;
    CHECK(parseCombinedInto("no json", all, broken) == 0);
    for (AnalysisKind kind : kAllAnalyses) {
        CHECK(broken.error(kind) != nullptr);
    }
}

TEST_CASE("answersJson gives the shapes of analyze output", "[parser]") {
    SequenceAnswers a;
    parseAnswerInto(AnalysisKind::FaceState, R"({"state":"SLEEPY","eyes_closed":true})", a);
    a.setError(AnalysisKind::Attention, {AnalysisError::Kind::Timeout, 0, "attention: timed out"});
    json::object o = answersJson(a);
    CHECK(o.at("face_state").at("state") == "SLEEPY");
    CHECK(o.at("attention").at("error") == "attention: timed out");
    CHECK_FALSE(o.contains("hand_position"));
}

TEST_CASE("schemas carry the analysis name as title", "[prompts]") {
    for (AnalysisKind kind : kAllAnalyses) {
        const json::value& s = analysis(kind).schema();
        CHECK(s.at("title").as_string() == analysisName(kind));
        CHECK(s.at("type") == "object");
    }
    AnalysisSet some{};
    some[0] = some[4] = true;
    json::value c = combinedSchema(some);
    CHECK(c.at("title") == "combined");
    CHECK(c.at("properties").as_object().size() == 2);
    CHECK(c.at("properties").at("impaired_driving").at("title") == "impaired_driving");
}

TEST_CASE("prompts: overrides, frames and the dependent face state", "[prompts]") {
    EncodedSequence seq;
    seq.frames.resize(4);
    for (int i = 0; i < 4; ++i) {
        seq.frames[i].ptsSeconds = 4.0 + i * 0.5;
    }
    AnalysesSettings settings;
    settings[AnalysisKind::Attention].prompt = "CUSTOM ATTENTION PROMPT";
    const std::string frames = framesDescription(seq, false, 4);
    CHECK_THAT(frames, Catch::Contains("4 images") && Catch::Contains("5.50 s"));
    CHECK_THAT(framesDescription(seq, true, 1),
               Catch::Contains("mosaic") && Catch::Contains("2 columns and 2 rows"));
    CHECK_THAT(buildUserPrompt(AnalysisKind::Attention, settings, frames),
               Catch::Contains("CUSTOM ATTENTION PROMPT"));
    CHECK_THAT(buildUserPrompt(AnalysisKind::FaceState, settings, frames),
               Catch::Contains(std::string(analysis(AnalysisKind::FaceState).defaultPrompt())));
    SequenceAnswers face;
    face.set(FaceStateAnswer{FaceState::Exhausted, true, false, 0.75});
    const std::string impaired =
        buildUserPrompt(AnalysisKind::ImpairedDriving, settings, frames, face);
    CHECK_THAT(impaired, Catch::Contains("EXHAUSTED") && Catch::Contains("eyes closed: yes"));
    CHECK_THAT(buildUserPrompt(AnalysisKind::ImpairedDriving, settings, frames, {}),
               Catch::Contains("could not be assessed"));
    AnalysisSet all{};
    all.fill(true);
    const std::string combined = buildCombinedPrompt(all, settings, frames);
    for (AnalysisKind kind : kAllAnalyses) {
        CHECK_THAT(combined, Catch::Contains(std::string(analysisName(kind))));
    }
}

TEST_CASE("base64 matches a reference encoder at every length", "[body]") {
    std::vector<unsigned char> bytes;
    for (int n = 0; n < 300; ++n) {
        std::string ours;
        appendBase64(ours, bytes.data(), bytes.size());
        REQUIRE(ours == referenceBase64(bytes));
        REQUIRE(ours.size() == base64EncodedSize(bytes.size()));
        bytes.push_back(static_cast<unsigned char>((n * 151 + 7) & 0xff));
    }
    std::string rfc;
    const std::string foobar = "foobar";
    appendBase64(rfc, reinterpret_cast<const unsigned char*>(foobar.data()), 4);
    CHECK(rfc == "Zm9vYg==");
}

TEST_CASE("chat body shape: messages, images, format, options, keep_alive", "[body]") {
    std::vector<JpegImage> images = {imageOf({0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10}),
                                     imageOf({0xff, 0xd8, 0x01})};
    ModelOptions opts;
    opts.seed = 42;
    const json::object options = optionsJson(opts);
    const json::value keepAlive = keepAliveJson(Millis(300000));
    ChatBodyParts parts;
    parts.model = "llava:7b";
    parts.systemPrompt = "system \"quoted\"";
    parts.userPrompt = "user\nprompt";
    parts.images = &images;
    parts.format = &analysis(AnalysisKind::HandPosition).schema();
    parts.options = &options;
    parts.keepAlive = &keepAlive;
    const std::string body = buildChatBody(parts);
    json::value v = json::parse(body);
    CHECK(v.at("model") == "llava:7b");
    CHECK(v.at("stream") == false);
    CHECK(v.at("think") == false);
    CHECK(v.at("keep_alive") == "300s");
    CHECK(v.at("format").at("title") == "hand_position");
    CHECK(v.at("options").at("temperature").as_double() == Approx(0.1));
    CHECK(v.at("options").at("top_k") == 10);
    CHECK(v.at("options").at("top_p").as_double() == Approx(0.5));
    CHECK(v.at("options").at("num_ctx") == 8192);
    CHECK(v.at("options").at("num_predict") == 256);
    CHECK(v.at("options").at("seed") == 42);
    const json::array& messages = v.at("messages").as_array();
    REQUIRE(messages.size() == 2);
    CHECK(messages[0].at("role") == "system");
    CHECK(messages[0].at("content") == "system \"quoted\"");
    CHECK(messages[1].at("role") == "user");
    CHECK(messages[1].at("content") == "user\nprompt");
    const json::array& imgs = messages[1].at("images").as_array();
    REQUIRE(imgs.size() == 2);
    CHECK(imgs[0].as_string() == referenceBase64(*images[0].bytes));
    CHECK(imgs[1].as_string() == referenceBase64(*images[1].bytes));
    CHECK(body.find("data:") == std::string::npos);
    CHECK(imgs[0].as_string().starts_with("/9j/"));
}

TEST_CASE("chat body copies a frame's ready base64 and encodes only frames without it", "[body]") {
    std::vector<JpegImage> images = {imageOf({0xff, 0xd8, 0xff}), imageOf({0xff, 0xd8, 0x01})};
    // A marker that is not the bytes' encoding proves the body copies the
    // frame path's base64 instead of encoding the bytes again.
    images[0].base64 = std::make_shared<const std::string>("QUJD");
    ChatBodyParts parts;
    parts.model = "m";
    parts.images = &images;
    const json::value v = json::parse(buildChatBody(parts));
    const json::array& imgs = v.at("messages").at(1).at("images").as_array();
    REQUIRE(imgs.size() == 2);
    CHECK(imgs[0].as_string() == "QUJD");
    CHECK(imgs[1].as_string() == referenceBase64(*images[1].bytes));
}

TEST_CASE("keep_alive and warm-up body", "[body]") {
    CHECK(keepAliveJson(Millis(1500)) == "1500ms");
    CHECK(keepAliveJson(Millis(-1)) == -1);
    const json::object options = optionsJson(ModelOptions{});
    json::value w = json::parse(buildWarmUpBody("m", options, keepAliveJson(Millis(60000))));
    CHECK(w.at("messages").as_array().empty());
    CHECK(w.at("options") == options);
    CHECK(w.at("keep_alive") == "60s");
}

TEST_CASE("num_gpu and num_thread are sent only when set", "[body]") {
    CHECK_FALSE(optionsJson(ModelOptions{}).contains("num_gpu"));
    CHECK_FALSE(optionsJson(ModelOptions{}).contains("num_thread"));
    ModelOptions set;
    set.numGpu = 0;
    set.numThread = 6;
    const json::object options = optionsJson(set);
    CHECK(options.at("num_gpu") == 0);
    CHECK(options.at("num_thread") == 6);
}

TEST_CASE("response cache: LRU, TTL, counters, keys", "[cache]") {
    using namespace std::chrono_literals;
    ResponseCache cache(2, 1000ms);
    const auto t0 = ResponseCache::Clock::now();
    CHECK_FALSE(cache.find("a", t0));
    cache.insert("a", "A", t0);
    cache.insert("b", "B", t0);
    CHECK(cache.find("a", t0 + 10ms) == std::optional<std::string>("A"));
    cache.insert("c", "C", t0 + 20ms); // evicts b, the least recently used
    CHECK_FALSE(cache.find("b", t0 + 30ms));
    CHECK(cache.find("c", t0 + 30ms));
    CHECK_FALSE(cache.find("a", t0 + 1500ms)); // expired
    CHECK(cache.hits() == 2);
    CHECK(cache.misses() == 3);

    ResponseCache off(0, 1000ms);
    off.insert("a", "A", t0);
    CHECK_FALSE(off.find("a", t0));

    EncodedSequence s1, s2;
    s1.frames.resize(2);
    s2.frames.resize(2);
    s1.frames[0].contentHash = s2.frames[0].contentHash = 11;
    s1.frames[1].contentHash = s2.frames[1].contentHash = 12;
    CHECK(ResponseCache::makeKey("m", "face_state", "p", false, s1) ==
          ResponseCache::makeKey("m", "face_state", "p", false, s2));
    s2.frames[1].contentHash = 13;
    CHECK(ResponseCache::makeKey("m", "face_state", "p", false, s1) !=
          ResponseCache::makeKey("m", "face_state", "p", false, s2));
    CHECK(ResponseCache::makeKey("m", "face_state", "p", false, s1) !=
          ResponseCache::makeKey("m", "face_state", "p2", false, s1));
    CHECK(ResponseCache::makeKey("m", "face_state", "p", false, s1) !=
          ResponseCache::makeKey("m", "face_state", "p", true, s1));
    CHECK(ResponseCache::makeKey("m", "face_state", "p", false, s1) !=
          ResponseCache::makeKey("m2", "face_state", "p", false, s1));
}
