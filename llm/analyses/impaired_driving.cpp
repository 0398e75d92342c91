#include "llm/analyses/impaired_driving.h"

#include <boost/json/array.hpp>
#include <boost/json/parse.hpp>

#include "base/json.h"
#include "llm/analyses/answer_reader.h"
#include "llm/analyses/face_state.h"

namespace dmsd {
namespace {

namespace json = boost::json;

class ImpairedDrivingAnalysis final : public AnalysisOf<ImpairedDrivingAnswer> {
public:
    std::string_view name() const override { return "impaired_driving"; }

    std::string_view defaultPrompt() const override {
        return "Assess signs that the driver may be impaired by alcohol, drugs, illness or "
               "extreme fatigue: slumped or unusual posture, head drooping, slack face, glazed or "
               "half-closed eyes, erratic movement. concern: LOW, MODERATE or HIGH. indicators: "
               "short phrases naming the signs you see (an empty list if none). confidence: how "
               "sure you are, 0 to 1.";
    }

    std::string_view answerShape() const override {
        return R"({"concern": "LOW|MODERATE|HIGH", "indicators": ["..."], "confidence": 0..1})";
    }

    const json::value& schema() const override { return schema_; }

    std::optional<AnalysisKind> dependsOn() const override { return AnalysisKind::FaceState; }

    std::string dependencyContext(const SequenceAnswers& earlier) const override {
        const FaceStateAnswer* face = earlier.get<FaceStateAnswer>();
        if (face == nullptr) {
            return "The driver's face state could not be assessed for these frames.";
        }
        return fmt::format("An earlier assessment of the same frames found the driver's face "
                           "state {} (eyes closed: {}, yawning: {}, confidence {:.2f}); take it "
                           "into account.",
                           faceStateName(face->state), face->eyesClosed ? "yes" : "no",
                           face->yawning ? "yes" : "no", face->confidence);
    }

    std::string_view combinedHint() const override {
        return " Judge it together with the face state you found.";
    }

protected:
    ImpairedDrivingAnswer readAnswer(FieldReader& r) const override {
        ImpairedDrivingAnswer a;
        static constexpr std::array<std::string_view, 3> names = {"low", "moderate", "high"};
        static constexpr std::array<std::pair<std::string_view, Concern>, 3> synonyms = {{
            {"none", Concern::Low},
            {"medium", Concern::Moderate},
            {"severe", Concern::High},
        }};
        r.enumeration(std::string_view("concern"), true, names, a.concern, synonyms);
        if (const json::value* v = r.get("indicators", false)) {
            if (v->is_string()) {
                if (!normaliseAnswerWord(v->get_string()).empty()) {
                    a.indicators.emplace_back(v->get_string());
                }
            } else if (v->is_array()) {
                for (const json::value& item : v->get_array()) {
                    if (!item.is_string()) {
                        r.fail(fmt::format("field 'indicators' holds a non-string: {}",
                                           writeJson(item)));
                        break;
                    }
                    a.indicators.emplace_back(item.get_string());
                }
            } else {
                r.fail(fmt::format("field 'indicators' is not a list: {}", writeJson(*v)));
            }
        }
        r.confidence("confidence", a.confidence);
        return a;
    }

    json::object write(const ImpairedDrivingAnswer& a) const override {
        return {{"concern", concernName(a.concern)},
                {"indicators", indicatorsJson(a)},
                {"confidence", a.confidence}};
    }

    json::object cite(const ImpairedDrivingAnswer& a) const override {
        return {{"concern", concernName(a.concern)}, {"indicators", indicatorsJson(a)}};
    }

private:
    static json::array indicatorsJson(const ImpairedDrivingAnswer& a) {
        json::array indicators;
        for (const std::string& indicator : a.indicators) {
            indicators.emplace_back(indicator);
        }
        return indicators;
    }

    const json::value schema_ =
        json::parse(R"({"title":"impaired_driving","type":"object","properties":{
        "concern":{"type":"string","enum":["LOW","MODERATE","HIGH"]},
        "indicators":{"type":"array","items":{"type":"string"}},
        "confidence":{"type":"number","minimum":0,"maximum":1}},
        "required":["concern","indicators","confidence"]})");
};

} // namespace

const Analysis& impairedDrivingAnalysis() {
    static const ImpairedDrivingAnalysis instance;
    return instance;
}

} // namespace dmsd
