#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "test/emulator/answer_script.h"

using namespace dmsd::emulator;
namespace json = boost::json;

TEST_CASE("the analysis is recognised from title, properties, then prompt") {
    json::value titled = json::parse(R"({"title":"hand_position","type":"object"})");
    CHECK(detectAnalysis(&titled, "") == Analysis::HandPosition);
    json::value byProperty =
        json::parse(R"({"type":"object","properties":{"concern":{},"confidence":{}}})");
    CHECK(detectAnalysis(&byProperty, "") == Analysis::ImpairedDriving);
    json::value byEyes = json::parse(R"({"properties":{"state":{},"eyes_closed":{}}})");
    CHECK(detectAnalysis(&byEyes, "") == Analysis::FaceState);
    json::value combined =
        json::parse(R"({"properties":{"face_state":{},"attention":{},"hand_position":{}}})");
    CHECK(detectAnalysis(&combined, "") == Analysis::Combined);
    json::value plain("json");
    CHECK(detectAnalysis(&plain, "Where are the driver's hands?") == Analysis::HandPosition);
    CHECK(detectAnalysis(nullptr, "The face state is SLEEPY. Is the driver impaired?") ==
          Analysis::ImpairedDriving);
    CHECK(detectAnalysis(nullptr, "hello") == Analysis::Unknown);
}

TEST_CASE("rules match analysis, colour within tolerance and prompt, then defaults") {
    auto script = AnswerScript::fromJson(json::parse(R"({
      "rules": [
        {"analysis": "face_state", "color": [255,0,0], "tolerance": 30, "answer": {"state":"SLEEPY"}},
        {"analysis": "*", "prompt_contains": "magic", "answer": {"any": true}}
      ],
      "defaults": {"face_state": {"state": "TIRED"}}})"));
    auto red = script.answer(Analysis::FaceState, Rgb{250, 10, 5}, "", nullptr);
    CHECK(red.answer.at("state") == "SLEEPY");
    CHECK(red.rules == std::vector<int>{0});
    auto far = script.answer(Analysis::FaceState, Rgb{200, 60, 60}, "", nullptr);
    CHECK(far.answer.at("state") == "TIRED");
    CHECK(far.rules == std::vector<int>{-1});
    auto noImage = script.answer(Analysis::FaceState, std::nullopt, "", nullptr);
    CHECK(noImage.answer.at("state") == "TIRED");
    auto wildcard = script.answer(Analysis::Attention, std::nullopt, "A MAGIC prompt", nullptr);
    CHECK(wildcard.answer.at("any") == true);
    auto builtin = script.answer(Analysis::Attention, std::nullopt, "", nullptr);
    CHECK(builtin.answer.at("looking_at_road") == true);
    CHECK(builtin.rules == std::vector<int>{-2});
    auto combined = script.answer(Analysis::Combined, Rgb{255, 0, 0}, "", nullptr);
    CHECK(combined.answer.at("face_state").at("state") == "SLEEPY");
    CHECK(combined.answer.at("impaired_driving").at("concern") == "LOW");
    CHECK(combined.rules.size() == 5);
}

TEST_CASE("script errors name the culprit") {
    auto message = [](const char* text) {
        try {
            AnswerScript::fromJson(json::parse(text));
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(message(R"({"rules":[{"analysis":"faces","answer":{}}]})").find("rules[0].analysis") !=
          std::string::npos);
    CHECK(message(R"({"rules":[{"analysis":"face_state","color":[1,2],"answer":{}}]})")
              .find("rules[0].color") != std::string::npos);
    CHECK(message(R"({"rules":[{"analysis":"face_state"}]})").find("rules[0].answer") !=
          std::string::npos);
    CHECK(message(R"({"defaults":{"nope":{}}})").find("nope") != std::string::npos);
    CHECK(message(R"({"extra":1})").find("extra") != std::string::npos);
}

TEST_CASE("face states mentioned in a prompt and schema filling") {
    CHECK(faceStatesMentioned("Face state: sleepy; not AWAKENED") ==
          std::vector<std::string>{"SLEEPY"});
    auto filled = fillSchema(json::parse(
        R"({"type":"object","properties":{"s":{"type":"string","enum":["A","B"]},"n":{"type":"integer","minimum":1},"b":{"type":"boolean"},"l":{"type":"array"}}})"));
    CHECK(filled == json::parse(R"({"s":"A","n":1,"b":false,"l":[]})"));
}
