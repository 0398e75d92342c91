#include "llm/analyses/hand_position.h"

#include <boost/json/parse.hpp>

#include "base/json.h"
#include "llm/analyses/answer_reader.h"

namespace dmsd {
namespace {

namespace json = boost::json;

class HandPositionAnalysis final : public AnalysisOf<HandPositionAnswer> {
public:
    std::string_view name() const override { return "hand_position"; }

    std::string_view defaultPrompt() const override {
        return "Assess the driver's hands. hands_on_wheel: how many of the driver's hands are on "
               "the steering wheel, 0, 1 or 2. holding: what the driver holds in a hand, one of "
               "nothing, phone, food, drink, cigarette, other. confidence: how sure you are, 0 to "
               "1.";
    }

    std::string_view answerShape() const override {
        return R"({"hands_on_wheel": 0|1|2, "holding": "nothing|phone|food|drink|cigarette|other", "confidence": 0..1})";
    }

    const json::value& schema() const override { return schema_; }

protected:
    HandPositionAnswer readAnswer(FieldReader& r) const override {
        HandPositionAnswer a;
        const json::value* hands = r.get("hands_on_wheel", true);
        if (hands != nullptr && hands->is_string()) {
            const std::string s = normaliseAnswerWord(hands->get_string());
            if (s == "both" || s == "two") {
                a.handsOnWheel = 2;
            } else if (s == "one") {
                a.handsOnWheel = 1;
            } else if (s == "none" || s == "zero") {
                a.handsOnWheel = 0;
            } else {
                r.integer("hands_on_wheel", true, 0, 2, a.handsOnWheel);
            }
        } else if (hands != nullptr && hands->is_bool()) {
            r.fail(fmt::format("field 'hands_on_wheel' is not a count: {}", writeJson(*hands)));
        } else if (hands != nullptr) {
            r.integer("hands_on_wheel", true, 0, 2, a.handsOnWheel);
        }
        static constexpr std::array<std::string_view, 6> names = {"nothing", "phone",     "food",
                                                                  "drink",   "cigarette", "other"};
        static constexpr std::array<std::pair<std::string_view, Holding>, 11> synonyms = {{
            {"none", Holding::Nothing},
            {"empty", Holding::Nothing},
            {"no", Holding::Nothing},
            {"cell_phone", Holding::Phone},
            {"cellphone", Holding::Phone},
            {"mobile_phone", Holding::Phone},
            {"smartphone", Holding::Phone},
            {"cup", Holding::Drink},
            {"bottle", Holding::Drink},
            {"coffee", Holding::Drink},
            {"vape", Holding::Cigarette},
        }};
        r.enumeration(std::string_view("holding"), true, names, a.holding, synonyms);
        r.confidence("confidence", a.confidence);
        return a;
    }

    json::object write(const HandPositionAnswer& a) const override {
        return {{"hands_on_wheel", a.handsOnWheel},
                {"holding", holdingName(a.holding)},
                {"confidence", a.confidence}};
    }

    json::object cite(const HandPositionAnswer& a) const override {
        return {{"hands_on_wheel", a.handsOnWheel}, {"holding", holdingName(a.holding)}};
    }

private:
    const json::value schema_ =
        json::parse(R"({"title":"hand_position","type":"object","properties":{
        "hands_on_wheel":{"type":"integer","minimum":0,"maximum":2},
        "holding":{"type":"string","enum":["nothing","phone","food","drink","cigarette","other"]},
        "confidence":{"type":"number","minimum":0,"maximum":1}},
        "required":["hands_on_wheel","holding","confidence"]})");
};

} // namespace

const Analysis& handPositionAnalysis() {
    static const HandPositionAnalysis instance;
    return instance;
}

} // namespace dmsd
