#include "llm/analyses/general_scene.h"

#include <boost/json/parse.hpp>

#include "llm/analyses/answer_reader.h"

namespace dmsd {
namespace {

namespace json = boost::json;

class GeneralSceneAnalysis final : public AnalysisOf<GeneralSceneAnswer> {
public:
    std::string_view name() const override { return "general_scene"; }

    std::string_view defaultPrompt() const override {
        return "Describe the scene in the cabin. description: one short sentence on the driver "
               "and what they are doing. driver_visible: false if no driver can be seen (empty "
               "seat, covered or blacked-out camera, unusable image). occupants: the number of "
               "people visible.";
    }

    std::string_view answerShape() const override {
        return R"({"description": "...", "driver_visible": true|false, "occupants": 0..})";
    }

    const json::value& schema() const override { return schema_; }

protected:
    GeneralSceneAnswer readAnswer(FieldReader& r) const override {
        GeneralSceneAnswer a;
        if (auto d = r.text("description", false)) {
            a.description = std::move(*d);
        }
        r.boolean("driver_visible", true, a.driverVisible);
        r.integer("occupants", false, 0, 100, a.occupants);
        return a;
    }

    json::object write(const GeneralSceneAnswer& a) const override {
        return {{"description", a.description},
                {"driver_visible", a.driverVisible},
                {"occupants", a.occupants}};
    }

    json::object cite(const GeneralSceneAnswer& a) const override {
        return {{"driver_visible", a.driverVisible}, {"occupants", a.occupants}};
    }

private:
    const json::value schema_ =
        json::parse(R"({"title":"general_scene","type":"object","properties":{
        "description":{"type":"string"},"driver_visible":{"type":"boolean"},
        "occupants":{"type":"integer","minimum":0}},
        "required":["description","driver_visible","occupants"]})");
};

} // namespace

const Analysis& generalSceneAnalysis() {
    static const GeneralSceneAnalysis instance;
    return instance;
}

} // namespace dmsd
