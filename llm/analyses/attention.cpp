#include "llm/analyses/attention.h"

#include <boost/json/parse.hpp>

#include "llm/analyses/answer_reader.h"

namespace dmsd {
namespace {

namespace json = boost::json;

class AttentionAnalysis final : public AnalysisOf<AttentionAnswer> {
public:
    std::string_view name() const override { return "attention"; }

    std::string_view defaultPrompt() const override {
        return "Assess where the driver is looking. looking_at_road: true if the driver looks "
               "ahead at the road through the windscreen in most frames. gaze: where the eyes are "
               "directed, one of road, mirror, dashboard, phone, passenger, down, away, unknown. "
               "eyes_open: true if the eyes are open. confidence: how sure you are, 0 to 1.";
    }

    std::string_view answerShape() const override {
        return R"({"looking_at_road": true|false, "gaze": "road|mirror|dashboard|phone|passenger|down|away|unknown", "eyes_open": true|false, "confidence": 0..1})";
    }

    const json::value& schema() const override { return schema_; }

protected:
    AttentionAnswer readAnswer(FieldReader& r) const override {
        AttentionAnswer a;
        static constexpr std::array<std::string_view, 8> names = {
            "road", "mirror", "dashboard", "phone", "passenger", "down", "away", "unknown"};
        static constexpr std::array<std::pair<std::string_view, Gaze>, 9> synonyms = {{
            {"forward", Gaze::Road},
            {"ahead", Gaze::Road},
            {"straight_ahead", Gaze::Road},
            {"windshield", Gaze::Road},
            {"mirrors", Gaze::Mirror},
            {"rearview_mirror", Gaze::Mirror},
            {"side", Gaze::Away},
            {"window", Gaze::Away},
            {"lap", Gaze::Down},
        }};
        const bool hasLooking = r.has("looking_at_road");
        const bool hasGaze = r.has("gaze");
        if (!hasLooking && !hasGaze) {
            r.fail("missing fields 'looking_at_road' and 'gaze'");
        }
        if (hasGaze) {
            r.enumeration(std::string_view("gaze"), false, names, a.gaze, synonyms);
        }
        if (hasLooking) {
            r.boolean("looking_at_road", false, a.lookingAtRoad);
            if (!hasGaze) {
                a.gaze = a.lookingAtRoad ? Gaze::Road : Gaze::Unknown;
            }
        } else {
            a.lookingAtRoad = a.gaze == Gaze::Road;
        }
        r.boolean("eyes_open", false, a.eyesOpen);
        r.confidence("confidence", a.confidence);
        return a;
    }

    json::object write(const AttentionAnswer& a) const override {
        return {{"looking_at_road", a.lookingAtRoad},
                {"gaze", gazeName(a.gaze)},
                {"eyes_open", a.eyesOpen},
                {"confidence", a.confidence}};
    }

    json::object cite(const AttentionAnswer& a) const override {
        return {{"looking_at_road", a.lookingAtRoad},
                {"gaze", gazeName(a.gaze)},
                {"eyes_open", a.eyesOpen}};
    }

private:
    const json::value schema_ = json::parse(R"({"title":"attention","type":"object","properties":{
        "looking_at_road":{"type":"boolean"},
        "gaze":{"type":"string","enum":["road","mirror","dashboard","phone","passenger","down","away","unknown"]},
        "eyes_open":{"type":"boolean"},
        "confidence":{"type":"number","minimum":0,"maximum":1}},
        "required":["looking_at_road","gaze","eyes_open","confidence"]})");
};

} // namespace

const Analysis& attentionAnalysis() {
    static const AttentionAnalysis instance;
    return instance;
}

} // namespace dmsd
