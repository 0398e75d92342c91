#include "llm/analyses/face_state.h"

#include <boost/json/parse.hpp>

#include "llm/analyses/answer_reader.h"

namespace dmsd {
namespace {

namespace json = boost::json;

class FaceStateAnalysis final : public AnalysisOf<FaceStateAnswer> {
public:
    std::string_view name() const override { return "face_state"; }

    std::string_view defaultPrompt() const override {
        return "Assess the driver's face across the frames. state: one of AWAKE, SLEEPY, JOYFUL, "
               "EXHAUSTED, TIRED, ANGRY, NEUTRAL; choose SLEEPY, TIRED or EXHAUSTED when the "
               "eyelids droop, the eyes stay closed longer than a blink, the head nods or the "
               "driver yawns. eyes_closed: true if the eyes are closed in most frames. yawning: "
               "true if the driver yawns in any frame. confidence: how sure you are, 0 to 1.";
    }

    std::string_view answerShape() const override {
        return R"({"state": "AWAKE|SLEEPY|JOYFUL|EXHAUSTED|TIRED|ANGRY|NEUTRAL", "eyes_closed": true|false, "yawning": true|false, "confidence": 0..1})";
    }

    const json::value& schema() const override { return schema_; }

protected:
    FaceStateAnswer readAnswer(FieldReader& r) const override {
        FaceStateAnswer a;
        // Index = FaceState value - 1 (UNKNOWN is not a model answer).
        static constexpr std::array<std::string_view, 7> names = {
            "awake", "sleepy", "joyful", "exhausted", "tired", "angry", "neutral"};
        static constexpr std::array<std::pair<std::string_view, int>, 6> synonyms = {{
            {"drowsy", 1},
            {"alert", 0},
            {"happy", 2},
            {"fatigued", 4},
            {"calm", 6},
            {"unknown", -1},
        }};
        int index = 0;
        if (r.enumeration(std::string_view("state"), true, names, index, synonyms)) {
            a.state = static_cast<FaceState>(index + 1);
        }
        r.boolean("eyes_closed", false, a.eyesClosed);
        r.boolean("yawning", false, a.yawning);
        r.confidence("confidence", a.confidence);
        return a;
    }

    json::object write(const FaceStateAnswer& a) const override {
        return {{"state", faceStateName(a.state)},
                {"eyes_closed", a.eyesClosed},
                {"yawning", a.yawning},
                {"confidence", a.confidence}};
    }

    json::object cite(const FaceStateAnswer& a) const override {
        return {{"state", faceStateName(a.state)},
                {"eyes_closed", a.eyesClosed},
                {"yawning", a.yawning}};
    }

private:
    const json::value schema_ = json::parse(R"({"title":"face_state","type":"object","properties":{
        "state":{"type":"string","enum":["AWAKE","SLEEPY","JOYFUL","EXHAUSTED","TIRED","ANGRY","NEUTRAL"]},
        "eyes_closed":{"type":"boolean"},"yawning":{"type":"boolean"},
        "confidence":{"type":"number","minimum":0,"maximum":1}},
        "required":["state","eyes_closed","yawning","confidence"]})");
};

} // namespace

const Analysis& faceStateAnalysis() {
    static const FaceStateAnalysis instance;
    return instance;
}

} // namespace dmsd
