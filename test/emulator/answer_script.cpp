#include "test/emulator/answer_script.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <boost/json.hpp>

namespace dmsd::emulator {
namespace json = boost::json;

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

/// Recognises a single analysis from a set of property names.
std::optional<Analysis> fromProperties(const json::object& properties) {
    int named = 0;
    for (Analysis a : kSingleAnalyses) {
        if (properties.contains(analysisName(a))) {
            ++named;
        }
    }
    if (named >= 2) {
        return Analysis::Combined;
    }
    struct Hint {
        std::string_view property;
        Analysis analysis;
    };
    // Most specific first: several analyses share words like "confidence".
    static constexpr Hint hints[] = {
        {"eyes_closed", Analysis::FaceState},       {"yawning", Analysis::FaceState},
        {"looking_at_road", Analysis::Attention},   {"gaze", Analysis::Attention},
        {"hands_on_wheel", Analysis::HandPosition}, {"holding", Analysis::HandPosition},
        {"driver_visible", Analysis::GeneralScene}, {"occupants", Analysis::GeneralScene},
        {"concern", Analysis::ImpairedDriving},     {"indicators", Analysis::ImpairedDriving},
        {"eyes_open", Analysis::Attention},         {"state", Analysis::FaceState},
        {"description", Analysis::GeneralScene},
    };
    for (const auto& hint : hints) {
        if (properties.contains(hint.property)) {
            return hint.analysis;
        }
    }
    if (named == 1) {
        for (Analysis a : kSingleAnalyses) {
            if (properties.contains(analysisName(a))) {
                return a;
            }
        }
    }
    return std::nullopt;
}

Analysis fromPrompt(std::string_view prompt) {
    std::string p = lower(prompt);
    auto has = [&](std::string_view word) {
        return p.find(word) != std::string::npos;
    };
    if (has("combined") || has("all five")) {
        return Analysis::Combined;
    }
    // The dependent question quotes the face state, so it is checked first.
    if (has("impair") || has("intoxicat") || has("drunk")) {
        return Analysis::ImpairedDriving;
    }
    if (has("hand")) {
        return Analysis::HandPosition;
    }
    if (has("attention") || has("gaze") || has("looking")) {
        return Analysis::Attention;
    }
    if (has("scene") || has("occupant")) {
        return Analysis::GeneralScene;
    }
    if (has("face") || has("drows") || has("sleepy") || has("yawn")) {
        return Analysis::FaceState;
    }
    return Analysis::Unknown;
}

double distance(const Rgb& a, const Rgb& b) {
    double sum = 0;
    for (std::size_t i = 0; i < 3; ++i) {
        sum += (a[i] - b[i]) * (a[i] - b[i]);
    }
    return std::sqrt(sum);
}

double number(const json::value& v, const std::string& where) {
    if (v.is_double()) {
        return v.get_double();
    }
    if (v.is_int64()) {
        return static_cast<double>(v.get_int64());
    }
    if (v.is_uint64()) {
        return static_cast<double>(v.get_uint64());
    }
    throw std::runtime_error(where + " must be a number");
}

} // namespace

std::string_view analysisName(Analysis analysis) {
    switch (analysis) {
    case Analysis::FaceState:
        return "face_state";
    case Analysis::Attention:
        return "attention";
    case Analysis::HandPosition:
        return "hand_position";
    case Analysis::GeneralScene:
        return "general_scene";
    case Analysis::ImpairedDriving:
        return "impaired_driving";
    case Analysis::Combined:
        return "combined";
    case Analysis::Unknown:
        break;
    }
    return "unknown";
}

std::optional<Analysis> analysisFromName(std::string_view name) {
    for (Analysis a : {Analysis::FaceState, Analysis::Attention, Analysis::HandPosition,
                       Analysis::GeneralScene, Analysis::ImpairedDriving, Analysis::Combined}) {
        if (lower(name) == analysisName(a)) {
            return a;
        }
    }
    return std::nullopt;
}

Analysis detectAnalysis(const json::value* format, std::string_view prompt) {
    if (format != nullptr && format->is_object()) {
        const auto& schema = format->get_object();
        if (const auto* title = schema.if_contains("title"); title && title->is_string()) {
            if (auto a = analysisFromName(title->get_string())) {
                return *a;
            }
        }
        if (const auto* props = schema.if_contains("properties"); props && props->is_object()) {
            if (auto a = fromProperties(props->get_object())) {
                return *a;
            }
        }
    }
    return fromPrompt(prompt);
}

std::vector<std::string> faceStatesMentioned(std::string_view text) {
    static constexpr std::string_view states[] = {"AWAKE", "SLEEPY", "JOYFUL", "EXHAUSTED",
                                                  "TIRED", "ANGRY",  "NEUTRAL"};
    std::string upper(text);
    std::transform(upper.begin(), upper.end(), upper.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    auto isWord = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
    };
    std::vector<std::string> found;
    for (auto state : states) {
        for (std::size_t pos = upper.find(state); pos != std::string::npos;
             pos = upper.find(state, pos + 1)) {
            bool startOk = pos == 0 || !isWord(upper[pos - 1]);
            std::size_t end = pos + state.size();
            bool endOk = end >= upper.size() || !isWord(upper[end]);
            if (startOk && endOk) {
                found.emplace_back(state);
                break;
            }
        }
    }
    return found;
}

json::object AnswerScript::builtinDefault(Analysis analysis) {
    switch (analysis) {
    case Analysis::FaceState:
        return {
            {"state", "AWAKE"}, {"eyes_closed", false}, {"yawning", false}, {"confidence", 0.9}};
    case Analysis::Attention:
        return {
            {"looking_at_road", true}, {"gaze", "road"}, {"eyes_open", true}, {"confidence", 0.9}};
    case Analysis::HandPosition:
        return {{"hands_on_wheel", 2}, {"holding", "nothing"}, {"confidence", 0.9}};
    case Analysis::GeneralScene:
        return {{"description", "One driver, seated upright, both hands on the wheel, eyes on "
                                "the road."},
                {"driver_visible", true},
                {"occupants", 1}};
    case Analysis::ImpairedDriving:
        return {{"concern", "LOW"}, {"indicators", json::array()}, {"confidence", 0.9}};
    case Analysis::Combined:
    case Analysis::Unknown:
        break;
    }
    return {};
}

AnswerScript AnswerScript::fromJson(const json::value& script) {
    if (!script.is_object()) {
        throw std::runtime_error("the script must be a JSON object with \"rules\" and/or "
                                 "\"defaults\"");
    }
    AnswerScript result;
    const auto& root = script.get_object();
    for (const auto& kv : root) {
        if (kv.key() != "rules" && kv.key() != "defaults") {
            throw std::runtime_error("unknown top-level key \"" + std::string(kv.key()) +
                                     "\" (expected \"rules\" and \"defaults\")");
        }
    }
    if (const auto* rules = root.if_contains("rules")) {
        if (!rules->is_array()) {
            throw std::runtime_error("\"rules\" must be an array");
        }
        std::size_t index = 0;
        for (const auto& r : rules->get_array()) {
            const std::string where = "rules[" + std::to_string(index++) + "]";
            if (!r.is_object()) {
                throw std::runtime_error(where + " must be an object");
            }
            const auto& o = r.get_object();
            Rule rule;
            const auto* analysis = o.if_contains("analysis");
            if (analysis == nullptr || !analysis->is_string()) {
                throw std::runtime_error(where + ".analysis must be a string: an analysis name "
                                                 "or \"*\"");
            }
            rule.analysis = std::string(analysis->get_string());
            auto parsed = analysisFromName(rule.analysis);
            if (rule.analysis != "*" && (!parsed || *parsed == Analysis::Combined)) {
                throw std::runtime_error(where + ".analysis \"" + rule.analysis +
                                         "\" is not one of face_state, attention, "
                                         "hand_position, general_scene, impaired_driving, *");
            }
            if (parsed) {
                rule.analysis = std::string(analysisName(*parsed));
            }
            if (const auto* color = o.if_contains("color"); color && !color->is_null()) {
                if (!color->is_array() || color->get_array().size() != 3) {
                    throw std::runtime_error(where + ".color must be [r, g, b]");
                }
                Rgb rgb{};
                for (std::size_t i = 0; i < 3; ++i) {
                    rgb[i] = number(color->get_array()[i], where + ".color");
                }
                rule.color = rgb;
            }
            if (const auto* tolerance = o.if_contains("tolerance")) {
                rule.tolerance = number(*tolerance, where + ".tolerance");
            }
            if (const auto* contains = o.if_contains("prompt_contains")) {
                if (!contains->is_string()) {
                    throw std::runtime_error(where + ".prompt_contains must be a string");
                }
                rule.promptContains = lower(contains->get_string());
            }
            const auto* answer = o.if_contains("answer");
            if (answer == nullptr || !answer->is_object()) {
                throw std::runtime_error(where + ".answer must be an object (the answer JSON)");
            }
            rule.answer = *answer;
            for (const auto& key : o) {
                static constexpr std::string_view known[] = {"analysis", "color", "tolerance",
                                                             "prompt_contains", "answer"};
                if (std::find(std::begin(known), std::end(known), key.key()) == std::end(known)) {
                    throw std::runtime_error(where + " has an unknown key \"" +
                                             std::string(key.key()) + "\"");
                }
            }
            result.rules_.push_back(std::move(rule));
        }
    }
    if (const auto* defaults = root.if_contains("defaults")) {
        if (!defaults->is_object()) {
            throw std::runtime_error("\"defaults\" must be an object keyed by analysis name");
        }
        for (const auto& kv : defaults->get_object()) {
            auto parsed = analysisFromName(kv.key());
            if (!parsed || *parsed == Analysis::Combined) {
                throw std::runtime_error("defaults.\"" + std::string(kv.key()) +
                                         "\" is not an analysis name");
            }
            if (!kv.value().is_object()) {
                throw std::runtime_error("defaults." + std::string(kv.key()) +
                                         " must be an object (the answer JSON)");
            }
            result.defaults_[analysisName(*parsed)] = kv.value();
        }
    }
    return result;
}

AnswerScript AnswerScript::fromFile(const std::string& path) {
    std::ifstream in(path);
    if (!in) {
        throw std::runtime_error("cannot read script file " + path);
    }
    std::stringstream text;
    text << in.rdbuf();
    json::error_code ec;
    json::value value = json::parse(text.str(), ec);
    if (ec) {
        throw std::runtime_error("script file " + path + " is not valid JSON: " + ec.message());
    }
    try {
        return fromJson(value);
    } catch (const std::exception& e) {
        throw std::runtime_error("script file " + path + ": " + e.what());
    }
}

json::value AnswerScript::single(Analysis analysis, const std::optional<Rgb>& meanRgb,
                                 std::string_view userPrompt, int& rule) const {
    const auto name = analysisName(analysis);
    const std::string prompt = lower(userPrompt);
    for (std::size_t i = 0; i < rules_.size(); ++i) {
        const Rule& r = rules_[i];
        if (r.analysis != "*" && r.analysis != name) {
            continue;
        }
        if (r.color && (!meanRgb || distance(*r.color, *meanRgb) > r.tolerance)) {
            continue;
        }
        if (!r.promptContains.empty() && prompt.find(r.promptContains) == std::string::npos) {
            continue;
        }
        rule = static_cast<int>(i);
        return r.answer;
    }
    if (const auto* d = defaults_.if_contains(name)) {
        rule = -1;
        return *d;
    }
    rule = -2;
    return builtinDefault(analysis);
}

ScriptedAnswer AnswerScript::answer(Analysis analysis, const std::optional<Rgb>& meanRgb,
                                    std::string_view userPrompt, const json::value* format) const {
    ScriptedAnswer result;
    if (analysis == Analysis::Combined) {
        json::object all;
        for (Analysis a : kSingleAnalyses) {
            int rule = -2;
            all[analysisName(a)] = single(a, meanRgb, userPrompt, rule);
            result.rules.push_back(rule);
        }
        result.answer = std::move(all);
        return result;
    }
    if (analysis == Analysis::Unknown) {
        result.answer = format != nullptr && format->is_object() ? fillSchema(*format)
                                                                 : json::value(json::object());
        return result;
    }
    int rule = -2;
    result.answer = single(analysis, meanRgb, userPrompt, rule);
    result.rules.push_back(rule);
    return result;
}

json::value fillSchema(const json::value& schema, int depth) {
    if (!schema.is_object() || depth > 16) {
        return nullptr;
    }
    const auto& s = schema.get_object();
    if (const auto* e = s.if_contains("enum"); e && e->is_array() && !e->get_array().empty()) {
        return e->get_array().front();
    }
    if (const auto* c = s.if_contains("const")) {
        return *c;
    }
    std::string type;
    if (const auto* t = s.if_contains("type")) {
        if (t->is_string()) {
            type = std::string(t->get_string());
        } else if (t->is_array() && !t->get_array().empty() && t->get_array()[0].is_string()) {
            type = std::string(t->get_array()[0].get_string());
        }
    }
    if (type.empty() && s.contains("properties")) {
        type = "object";
    }
    if (type == "object") {
        json::object out;
        if (const auto* props = s.if_contains("properties"); props && props->is_object()) {
            for (const auto& kv : props->get_object()) {
                out[kv.key()] = fillSchema(kv.value(), depth + 1);
            }
        }
        return out;
    }
    if (type == "array") {
        return json::array();
    }
    if (type == "string") {
        return "";
    }
    if (type == "boolean") {
        return false;
    }
    if (type == "integer" || type == "number") {
        if (const auto* m = s.if_contains("minimum"); m && m->is_number()) {
            return *m;
        }
        return 0;
    }
    return nullptr;
}

} // namespace dmsd::emulator
