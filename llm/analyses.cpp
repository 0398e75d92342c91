#include "llm/analyses.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "base/json.h"

namespace dmsd {

namespace json = boost::json;

AnalysisSet enabledAnalyses(const AnalysesSettings& settings) {
    AnalysisSet set{};
    for (AnalysisKind kind : kAllAnalyses) {
        set[static_cast<std::size_t>(kind)] = settings[kind].enabled;
    }
    return set;
}

std::string_view systemPrompt() {
    return "You are the vision component of an in-vehicle driver-monitoring system. You are "
           "shown frames from a camera facing the driver of a car, taken a fraction of a second "
           "apart, oldest first. Judge only what is visible in the frames. Answer with exactly one "
           "JSON object that follows the requested schema: no prose, no markdown, no code fences.";
}

std::string_view defaultPrompt(AnalysisKind kind) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return "Assess the driver's face across the frames. state: one of AWAKE, SLEEPY, JOYFUL, "
               "EXHAUSTED, TIRED, ANGRY, NEUTRAL; choose SLEEPY, TIRED or EXHAUSTED when the "
               "eyelids droop, the eyes stay closed longer than a blink, the head nods or the "
               "driver yawns. eyes_closed: true if the eyes are closed in most frames. yawning: "
               "true if the driver yawns in any frame. confidence: how sure you are, 0 to 1.";
    case AnalysisKind::Attention:
        return "Assess where the driver is looking. looking_at_road: true if the driver looks "
               "ahead at the road through the windscreen in most frames. gaze: where the eyes are "
               "directed, one of road, mirror, dashboard, phone, passenger, down, away, unknown. "
               "eyes_open: true if the eyes are open. confidence: how sure you are, 0 to 1.";
    case AnalysisKind::HandPosition:
        return "Assess the driver's hands. hands_on_wheel: how many of the driver's hands are on "
               "the steering wheel, 0, 1 or 2. holding: what the driver holds in a hand, one of "
               "nothing, phone, food, drink, cigarette, other. confidence: how sure you are, 0 to "
               "1.";
    case AnalysisKind::GeneralScene:
        return "Describe the scene in the cabin. description: one short sentence on the driver "
               "and what they are doing. driver_visible: false if no driver can be seen (empty "
               "seat, covered or blacked-out camera, unusable image). occupants: the number of "
               "people visible.";
    case AnalysisKind::ImpairedDriving:
        return "Assess signs that the driver may be impaired by alcohol, drugs, illness or "
               "extreme fatigue: slumped or unusual posture, head drooping, slack face, glazed or "
               "half-closed eyes, erratic movement. concern: LOW, MODERATE or HIGH. indicators: "
               "short phrases naming the signs you see (an empty list if none). confidence: how "
               "sure you are, 0 to 1.";
    }
    return {};
}

std::string_view effectivePrompt(AnalysisKind kind, const AnalysesSettings& settings) {
    const std::string& configured = settings[kind].prompt;
    return configured.empty() ? defaultPrompt(kind) : std::string_view(configured);
}

namespace {

std::string_view answerShape(AnalysisKind kind) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return R"({"state": "AWAKE|SLEEPY|JOYFUL|EXHAUSTED|TIRED|ANGRY|NEUTRAL", "eyes_closed": true|false, "yawning": true|false, "confidence": 0..1})";
    case AnalysisKind::Attention:
        return R"({"looking_at_road": true|false, "gaze": "road|mirror|dashboard|phone|passenger|down|away|unknown", "eyes_open": true|false, "confidence": 0..1})";
    case AnalysisKind::HandPosition:
        return R"({"hands_on_wheel": 0|1|2, "holding": "nothing|phone|food|drink|cigarette|other", "confidence": 0..1})";
    case AnalysisKind::GeneralScene:
        return R"({"description": "...", "driver_visible": true|false, "occupants": 0..})";
    case AnalysisKind::ImpairedDriving:
        return R"({"concern": "LOW|MODERATE|HIGH", "indicators": ["..."], "confidence": 0..1})";
    }
    return {};
}

const char* schemaText(AnalysisKind kind) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return R"({"title":"face_state","type":"object","properties":{
            "state":{"type":"string","enum":["AWAKE","SLEEPY","JOYFUL","EXHAUSTED","TIRED","ANGRY","NEUTRAL"]},
            "eyes_closed":{"type":"boolean"},"yawning":{"type":"boolean"},
            "confidence":{"type":"number","minimum":0,"maximum":1}},
            "required":["state","eyes_closed","yawning","confidence"]})";
    case AnalysisKind::Attention:
        return R"({"title":"attention","type":"object","properties":{
            "looking_at_road":{"type":"boolean"},
            "gaze":{"type":"string","enum":["road","mirror","dashboard","phone","passenger","down","away","unknown"]},
            "eyes_open":{"type":"boolean"},
            "confidence":{"type":"number","minimum":0,"maximum":1}},
            "required":["looking_at_road","gaze","eyes_open","confidence"]})";
    case AnalysisKind::HandPosition:
        return R"({"title":"hand_position","type":"object","properties":{
            "hands_on_wheel":{"type":"integer","minimum":0,"maximum":2},
            "holding":{"type":"string","enum":["nothing","phone","food","drink","cigarette","other"]},
            "confidence":{"type":"number","minimum":0,"maximum":1}},
            "required":["hands_on_wheel","holding","confidence"]})";
    case AnalysisKind::GeneralScene:
        return R"({"title":"general_scene","type":"object","properties":{
            "description":{"type":"string"},"driver_visible":{"type":"boolean"},
            "occupants":{"type":"integer","minimum":0}},
            "required":["description","driver_visible","occupants"]})";
    case AnalysisKind::ImpairedDriving:
        return R"({"title":"impaired_driving","type":"object","properties":{
            "concern":{"type":"string","enum":["LOW","MODERATE","HIGH"]},
            "indicators":{"type":"array","items":{"type":"string"}},
            "confidence":{"type":"number","minimum":0,"maximum":1}},
            "required":["concern","indicators","confidence"]})";
    }
    return "{}";
}

} // namespace

const json::value& analysisSchema(AnalysisKind kind) {
    static const std::array<json::value, kAnalysisCount> schemas = [] {
        std::array<json::value, kAnalysisCount> s;
        for (AnalysisKind k : kAllAnalyses) {
            s[static_cast<std::size_t>(k)] = json::parse(schemaText(k));
        }
        return s;
    }();
    return schemas[static_cast<std::size_t>(kind)];
}

json::value combinedSchema(const AnalysisSet& asked) {
    json::object properties;
    json::array required;
    for (AnalysisKind kind : kAllAnalyses) {
        if (asked[static_cast<std::size_t>(kind)]) {
            properties[analysisName(kind)] = analysisSchema(kind);
            required.emplace_back(analysisName(kind));
        }
    }
    json::object schema;
    schema["title"] = "combined";
    schema["type"] = "object";
    schema["properties"] = std::move(properties);
    schema["required"] = std::move(required);
    return schema;
}

std::string framesDescription(const EncodedSequence& sequence, bool mosaic,
                              std::size_t imageCount) {
    const std::size_t frames = sequence.frames.empty() ? imageCount : sequence.frames.size();
    std::string times;
    for (std::size_t i = 0; i < sequence.frames.size(); ++i) {
        times += fmt::format("{}{:.2f} s", i == 0 ? "" : ", ", sequence.frames[i].ptsSeconds);
    }
    const std::string when = times.empty() ? std::string() : fmt::format(", taken at {}", times);
    if (mosaic || (imageCount == 1 && frames > 1)) {
        const auto cols = static_cast<std::size_t>(std::ceil(std::sqrt(double(frames))));
        const std::size_t rows = cols == 0 ? 0 : (frames + cols - 1) / cols;
        return fmt::format("The image is a mosaic of {} consecutive frames of the driver camera "
                           "tiled in a grid of {} columns and {} rows, read row by row from the "
                           "top left, oldest first{}.",
                           frames, cols, rows, when);
    }
    if (imageCount == 1) {
        return fmt::format("The image is a frame of the driver camera{}.", when);
    }
    return fmt::format("The {} images are consecutive frames of the driver camera, oldest "
                       "first{}.",
                       imageCount, when);
}

std::string faceStateContext(const std::optional<Outcome<FaceStateAnswer>>& faceState) {
    if (!faceState || !faceState->ok()) {
        return "The driver's face state could not be assessed for these frames.";
    }
    const FaceStateAnswer& a = *faceState->answer;
    return fmt::format("An earlier assessment of the same frames found the driver's face state "
                       "{} (eyes closed: {}, yawning: {}, confidence {:.2f}); take it into "
                       "account.",
                       faceStateName(a.state), a.eyesClosed ? "yes" : "no",
                       a.yawning ? "yes" : "no", a.confidence);
}

std::string buildUserPrompt(AnalysisKind kind, const AnalysesSettings& settings,
                            std::string_view frames,
                            const std::optional<Outcome<FaceStateAnswer>>& faceState) {
    std::string prompt(frames);
    prompt += ' ';
    if (kind == AnalysisKind::ImpairedDriving) {
        prompt += faceStateContext(faceState);
        prompt += ' ';
    }
    prompt += effectivePrompt(kind, settings);
    prompt += " Answer only with JSON of this shape: ";
    prompt += answerShape(kind);
    return prompt;
}

std::string buildCombinedPrompt(const AnalysisSet& asked, const AnalysesSettings& settings,
                                std::string_view frames) {
    std::string keys;
    for (AnalysisKind kind : kAllAnalyses) {
        if (asked[static_cast<std::size_t>(kind)]) {
            keys += fmt::format("{}{}", keys.empty() ? "" : ", ", analysisName(kind));
        }
    }
    std::string prompt(frames);
    prompt += fmt::format(" Answer several questions about the driver in one JSON object with the "
                          "keys {}, each holding the answer object described below.",
                          keys);
    for (AnalysisKind kind : kAllAnalyses) {
        if (!asked[static_cast<std::size_t>(kind)]) {
            continue;
        }
        prompt += fmt::format("\n\n{}: {}", analysisName(kind), effectivePrompt(kind, settings));
        if (kind == AnalysisKind::ImpairedDriving) {
            prompt += " Judge it together with the face state you found.";
        }
        prompt += fmt::format(" Shape: {}", answerShape(kind));
    }
    return prompt;
}

// ---------------------------------------------------------------------------
// Extraction of the answer object from model output.

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) {
        s.remove_prefix(1);
    }
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) {
        s.remove_suffix(1);
    }
    return s;
}

std::optional<json::object> parseObject(std::string_view text) {
    json::parse_options opt;
    opt.allow_comments = true;
    opt.allow_trailing_commas = true;
    opt.allow_invalid_utf8 = true;
    boost::system::error_code ec;
    json::value v = json::parse(text, ec, {}, opt);
    if (ec || !v.is_object()) {
        return std::nullopt;
    }
    return std::move(v.as_object());
}

/// Index of the '}' closing the '{' at \a open, honouring strings; npos if none.
std::size_t matchBrace(std::string_view s, std::size_t open) {
    int depth = 0;
    bool inString = false;
    for (std::size_t i = open; i < s.size(); ++i) {
        const char c = s[i];
        if (inString) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                inString = false;
            }
            continue;
        }
        if (c == '"') {
            inString = true;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}') {
            if (--depth == 0) {
                return i;
            }
        }
    }
    return std::string_view::npos;
}

std::string snippet(std::string_view content) {
    constexpr std::size_t kMax = 80;
    std::string s(trim(content).substr(0, kMax));
    std::replace(s.begin(), s.end(), '\n', ' ');
    if (trim(content).size() > kMax) {
        s += "...";
    }
    return s;
}

} // namespace

std::optional<json::object> extractJsonObject(std::string_view content, std::string* why) {
    const std::string_view text = trim(content);
    if (text.empty()) {
        if (why != nullptr) {
            *why = "empty answer";
        }
        return std::nullopt;
    }
    if (auto o = parseObject(text)) {
        return o;
    }
    // ```json ... ``` (models add fences even when told not to).
    if (auto fence = text.find("```"); fence != std::string_view::npos) {
        std::size_t start = text.find('\n', fence);
        if (start != std::string_view::npos) {
            ++start;
            const std::size_t end = text.find("```", start);
            const std::string_view inner = end == std::string_view::npos
                                               ? text.substr(start)
                                               : text.substr(start, end - start);
            if (auto o = parseObject(trim(inner))) {
                return o;
            }
        }
    }
    // The first balanced object in prose. Bounded attempts keep pathological
    // input ("{{{{...") linear enough for the fuzzer and for runaway models.
    constexpr int kMaxCandidates = 16;
    int candidates = 0;
    bool truncated = false;
    for (std::size_t open = text.find('{');
         open != std::string_view::npos && candidates < kMaxCandidates;
         open = text.find('{', open + 1), ++candidates) {
        const std::size_t close = matchBrace(text, open);
        if (close == std::string_view::npos) {
            truncated = true;
            break;
        }
        if (auto o = parseObject(text.substr(open, close - open + 1))) {
            return o;
        }
    }
    if (why != nullptr) {
        if (truncated) {
            *why = fmt::format("truncated JSON: \"{}\"", snippet(content));
        } else if (text.find('{') == std::string_view::npos) {
            *why = fmt::format("no JSON object in \"{}\"", snippet(content));
        } else {
            *why = fmt::format("invalid JSON: \"{}\"", snippet(content));
        }
    }
    return std::nullopt;
}

// ---------------------------------------------------------------------------
// Typed field access: tolerant of spelling, strict about types.

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

/// Lower case, trimmed, spaces and hyphens as underscores: "Looking-At Road" -> "looking_at_road".
std::string normalise(std::string_view s) {
    s = trim(s);
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == ' ' || c == '-') {
            out += '_';
        } else {
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
    }
    return out;
}

const json::value* findKey(const json::object& o, std::string_view key) {
    if (auto it = o.find(key); it != o.end()) {
        return &it->value();
    }
    for (const auto& kv : o) {
        if (iequals(kv.key(), key) || normalise(kv.key()) == key) {
            return &kv.value();
        }
    }
    return nullptr;
}

/// Collects the first problem; later fields are still read so the message is the earliest.
class FieldReader {
public:
    FieldReader(const json::object& o, AnalysisKind kind) : o_(o), kind_(kind) {}

    bool failed() const { return !error_.empty(); }
    AnalysisError error() const {
        return AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                             fmt::format("{}: {}", analysisName(kind_), error_)};
    }
    bool has(std::string_view key) const { return findKey(o_, key) != nullptr; }

    void fail(std::string message) {
        if (error_.empty()) {
            error_ = std::move(message);
        }
    }

    const json::value* get(std::string_view key, bool required) {
        const json::value* v = findKey(o_, key);
        if (v == nullptr || v->is_null()) {
            if (required) {
                fail(fmt::format("missing field '{}'", key));
            }
            return nullptr;
        }
        return v;
    }

    void boolean(std::string_view key, bool required, bool& out) {
        const json::value* v = get(key, required);
        if (v == nullptr) {
            return;
        }
        if (v->is_bool()) {
            out = v->get_bool();
            return;
        }
        if (v->is_string()) {
            const std::string s = normalise(v->get_string());
            if (s == "true" || s == "yes") {
                out = true;
                return;
            }
            if (s == "false" || s == "no") {
                out = false;
                return;
            }
        }
        fail(fmt::format("field '{}' is not a boolean: {}", key, writeJson(*v)));
    }

    std::optional<double> number(std::string_view key, bool required) {
        const json::value* v = get(key, required);
        if (v == nullptr) {
            return std::nullopt;
        }
        if (v->is_number()) {
            boost::system::error_code ec;
            const double d = v->to_number<double>(ec);
            if (!ec && std::isfinite(d)) {
                return d;
            }
        }
        if (v->is_string()) {
            // "0.8" is harmless; "high" is not a number.
            const std::string_view s = trim(v->get_string());
            double d = 0;
            auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
            if (ec == std::errc() && ptr == s.data() + s.size() && std::isfinite(d)) {
                return d;
            }
        }
        fail(fmt::format("field '{}' is not a number: {}", key, writeJson(*v)));
        return std::nullopt;
    }

    void confidence(std::string_view key, double& out) {
        auto d = number(key, false);
        if (!d) {
            return;
        }
        if (*d >= 0.0 && *d <= 1.0) {
            out = *d;
        } else if (*d > 1.0 && *d <= 100.0) {
            out = *d / 100.0; // a percentage
        } else {
            fail(fmt::format("field '{}' out of range 0..1: {}", key, *d));
        }
    }

    void integer(std::string_view key, bool required, int lo, int hi, int& out) {
        const json::value* v = get(key, required);
        if (v == nullptr) {
            return;
        }
        auto d = number(key, required);
        if (!d) {
            return;
        }
        if (std::floor(*d) != *d) {
            fail(fmt::format("field '{}' is not an integer: {}", key, *d));
            return;
        }
        if (*d < lo || *d > hi) {
            fail(fmt::format("field '{}' out of range {}..{}: {}", key, lo, hi, *d));
            return;
        }
        out = static_cast<int>(*d);
    }

    std::optional<std::string> text(std::string_view key, bool required) {
        const json::value* v = get(key, required);
        if (v == nullptr) {
            return std::nullopt;
        }
        if (!v->is_string()) {
            fail(fmt::format("field '{}' is not a string: {}", key, writeJson(*v)));
            return std::nullopt;
        }
        return std::string(v->get_string());
    }

    /// Matches a string field against \a names (normalised), then \a synonyms.
    template <class E, std::size_t N, std::size_t M = 0>
    bool enumeration(std::string_view key, bool required,
                     const std::array<std::string_view, N>& names, E& out,
                     const std::array<std::pair<std::string_view, E>, M>& synonyms = {}) {
        auto s = text(key, required);
        if (!s) {
            return false;
        }
        const std::string n = normalise(*s);
        for (std::size_t i = 0; i < N; ++i) {
            if (n == normalise(names[i])) {
                out = static_cast<E>(i);
                return true;
            }
        }
        for (const auto& [name, value] : synonyms) {
            if (n == name) {
                out = value;
                return true;
            }
        }
        fail(fmt::format("field '{}' has an unknown value \"{}\"", key, *s));
        return false;
    }

private:
    const json::object& o_;
    AnalysisKind kind_;
    std::string error_;
};

template <class T>
Outcome<T> finish(FieldReader& r, T answer) {
    if (r.failed()) {
        return Outcome<T>::failure(r.error());
    }
    return Outcome<T>::success(std::move(answer));
}

Outcome<FaceStateAnswer> faceStateFrom(const json::object& o) {
    FieldReader r(o, AnalysisKind::FaceState);
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
    return finish(r, a);
}

Outcome<AttentionAnswer> attentionFrom(const json::object& o) {
    FieldReader r(o, AnalysisKind::Attention);
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
    return finish(r, a);
}

Outcome<HandPositionAnswer> handPositionFrom(const json::object& o) {
    FieldReader r(o, AnalysisKind::HandPosition);
    HandPositionAnswer a;
    const json::value* hands = r.get("hands_on_wheel", true);
    if (hands != nullptr && hands->is_string()) {
        const std::string s = normalise(hands->get_string());
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
    return finish(r, a);
}

Outcome<GeneralSceneAnswer> generalSceneFrom(const json::object& o) {
    FieldReader r(o, AnalysisKind::GeneralScene);
    GeneralSceneAnswer a;
    if (auto d = r.text("description", false)) {
        a.description = std::move(*d);
    }
    r.boolean("driver_visible", true, a.driverVisible);
    r.integer("occupants", false, 0, 100, a.occupants);
    return finish(r, a);
}

Outcome<ImpairedDrivingAnswer> impairedDrivingFrom(const json::object& o) {
    FieldReader r(o, AnalysisKind::ImpairedDriving);
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
            if (!trim(v->get_string()).empty()) {
                a.indicators.emplace_back(v->get_string());
            }
        } else if (v->is_array()) {
            for (const json::value& item : v->get_array()) {
                if (!item.is_string()) {
                    r.fail(
                        fmt::format("field 'indicators' holds a non-string: {}", writeJson(item)));
                    break;
                }
                a.indicators.emplace_back(item.get_string());
            }
        } else {
            r.fail(fmt::format("field 'indicators' is not a list: {}", writeJson(*v)));
        }
    }
    r.confidence("confidence", a.confidence);
    return finish(r, a);
}

template <class T, class F>
Outcome<T> parseWith(AnalysisKind kind, std::string_view content, F from) {
    std::string why;
    auto o = extractJsonObject(content, &why);
    if (!o) {
        return Outcome<T>::failure(AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                                 fmt::format("{}: {}", analysisName(kind), why)});
    }
    return from(*o);
}

template <class T>
void store(std::optional<Outcome<T>>& slot, Outcome<T> outcome, bool& ok) {
    ok = outcome.ok();
    slot = std::move(outcome);
}

/// Parses an answer given as a JSON value (combined mode) into \a out.
bool parseValueInto(AnalysisKind kind, const json::object& o, SequenceAnswers& out) {
    bool ok = false;
    switch (kind) {
    case AnalysisKind::FaceState:
        store(out.faceState, faceStateFrom(o), ok);
        break;
    case AnalysisKind::Attention:
        store(out.attention, attentionFrom(o), ok);
        break;
    case AnalysisKind::HandPosition:
        store(out.handPosition, handPositionFrom(o), ok);
        break;
    case AnalysisKind::GeneralScene:
        store(out.generalScene, generalSceneFrom(o), ok);
        break;
    case AnalysisKind::ImpairedDriving:
        store(out.impairedDriving, impairedDrivingFrom(o), ok);
        break;
    }
    return ok;
}

} // namespace

Outcome<FaceStateAnswer> parseFaceState(std::string_view content) {
    return parseWith<FaceStateAnswer>(AnalysisKind::FaceState, content, faceStateFrom);
}
Outcome<AttentionAnswer> parseAttention(std::string_view content) {
    return parseWith<AttentionAnswer>(AnalysisKind::Attention, content, attentionFrom);
}
Outcome<HandPositionAnswer> parseHandPosition(std::string_view content) {
    return parseWith<HandPositionAnswer>(AnalysisKind::HandPosition, content, handPositionFrom);
}
Outcome<GeneralSceneAnswer> parseGeneralScene(std::string_view content) {
    return parseWith<GeneralSceneAnswer>(AnalysisKind::GeneralScene, content, generalSceneFrom);
}
Outcome<ImpairedDrivingAnswer> parseImpairedDriving(std::string_view content) {
    return parseWith<ImpairedDrivingAnswer>(AnalysisKind::ImpairedDriving, content,
                                            impairedDrivingFrom);
}

bool parseAnswerInto(AnalysisKind kind, std::string_view content, SequenceAnswers& out) {
    std::string why;
    auto o = extractJsonObject(content, &why);
    if (!o) {
        setAnalysisError(kind,
                         AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                       fmt::format("{}: {}", analysisName(kind), why)},
                         out);
        return false;
    }
    return parseValueInto(kind, *o, out);
}

int parseCombinedInto(std::string_view content, const AnalysisSet& asked, SequenceAnswers& out) {
    std::string why;
    auto o = extractJsonObject(content, &why);
    if (!o) {
        for (AnalysisKind kind : kAllAnalyses) {
            if (asked[static_cast<std::size_t>(kind)]) {
                setAnalysisError(
                    kind,
                    AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                  fmt::format("{} (combined): {}", analysisName(kind), why)},
                    out);
            }
        }
        return 0;
    }
    const json::object* container = &*o;
    bool anyKey = false;
    for (AnalysisKind kind : kAllAnalyses) {
        anyKey = anyKey || findKey(*container, analysisName(kind)) != nullptr;
    }
    // Some models wrap the answer once more: {"analyses": {...}} or {"answer": {...}}.
    if (!anyKey && container->size() == 1 && container->begin()->value().is_object()) {
        container = &container->begin()->value().get_object();
    }
    int answered = 0;
    for (AnalysisKind kind : kAllAnalyses) {
        if (!asked[static_cast<std::size_t>(kind)]) {
            continue;
        }
        const json::value* v = findKey(*container, analysisName(kind));
        if (v != nullptr && v->is_object()) {
            answered += parseValueInto(kind, v->get_object(), out) ? 1 : 0;
        } else if (v != nullptr && v->is_string()) {
            answered += parseAnswerInto(kind, v->get_string(), out) ? 1 : 0;
        } else {
            setAnalysisError(kind,
                             AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                           fmt::format("{}: missing from the combined answer",
                                                       analysisName(kind))},
                             out);
        }
    }
    return answered;
}

void setAnalysisError(AnalysisKind kind, AnalysisError error, SequenceAnswers& out) {
    switch (kind) {
    case AnalysisKind::FaceState:
        out.faceState = Outcome<FaceStateAnswer>::failure(std::move(error));
        break;
    case AnalysisKind::Attention:
        out.attention = Outcome<AttentionAnswer>::failure(std::move(error));
        break;
    case AnalysisKind::HandPosition:
        out.handPosition = Outcome<HandPositionAnswer>::failure(std::move(error));
        break;
    case AnalysisKind::GeneralScene:
        out.generalScene = Outcome<GeneralSceneAnswer>::failure(std::move(error));
        break;
    case AnalysisKind::ImpairedDriving:
        out.impairedDriving = Outcome<ImpairedDrivingAnswer>::failure(std::move(error));
        break;
    }
}

namespace {

template <class T>
const AnalysisError* errorIn(const std::optional<Outcome<T>>& slot) {
    return slot && slot->error ? &*slot->error : nullptr;
}

} // namespace

const AnalysisError* analysisError(AnalysisKind kind, const SequenceAnswers& answers) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return errorIn(answers.faceState);
    case AnalysisKind::Attention:
        return errorIn(answers.attention);
    case AnalysisKind::HandPosition:
        return errorIn(answers.handPosition);
    case AnalysisKind::GeneralScene:
        return errorIn(answers.generalScene);
    case AnalysisKind::ImpairedDriving:
        return errorIn(answers.impairedDriving);
    }
    return nullptr;
}

bool analysisAsked(AnalysisKind kind, const SequenceAnswers& answers) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return answers.faceState.has_value();
    case AnalysisKind::Attention:
        return answers.attention.has_value();
    case AnalysisKind::HandPosition:
        return answers.handPosition.has_value();
    case AnalysisKind::GeneralScene:
        return answers.generalScene.has_value();
    case AnalysisKind::ImpairedDriving:
        return answers.impairedDriving.has_value();
    }
    return false;
}

namespace {

json::value toJson(const FaceStateAnswer& a) {
    return {{"state", faceStateName(a.state)},
            {"eyes_closed", a.eyesClosed},
            {"yawning", a.yawning},
            {"confidence", a.confidence}};
}
json::value toJson(const AttentionAnswer& a) {
    return {{"looking_at_road", a.lookingAtRoad},
            {"gaze", gazeName(a.gaze)},
            {"eyes_open", a.eyesOpen},
            {"confidence", a.confidence}};
}
json::value toJson(const HandPositionAnswer& a) {
    return {{"hands_on_wheel", a.handsOnWheel},
            {"holding", holdingName(a.holding)},
            {"confidence", a.confidence}};
}
json::value toJson(const GeneralSceneAnswer& a) {
    return {{"description", a.description},
            {"driver_visible", a.driverVisible},
            {"occupants", a.occupants}};
}
json::value toJson(const ImpairedDrivingAnswer& a) {
    json::array indicators;
    for (const auto& s : a.indicators) {
        indicators.emplace_back(s);
    }
    return {{"concern", concernName(a.concern)},
            {"indicators", std::move(indicators)},
            {"confidence", a.confidence}};
}

template <class T>
json::value slotJson(const std::optional<Outcome<T>>& slot) {
    if (!slot) {
        return nullptr;
    }
    if (slot->answer) {
        return toJson(*slot->answer);
    }
    return {{"error", slot->error ? slot->error->message : std::string("no answer")}};
}

} // namespace

json::value answerJson(AnalysisKind kind, const SequenceAnswers& answers) {
    switch (kind) {
    case AnalysisKind::FaceState:
        return slotJson(answers.faceState);
    case AnalysisKind::Attention:
        return slotJson(answers.attention);
    case AnalysisKind::HandPosition:
        return slotJson(answers.handPosition);
    case AnalysisKind::GeneralScene:
        return slotJson(answers.generalScene);
    case AnalysisKind::ImpairedDriving:
        return slotJson(answers.impairedDriving);
    }
    return nullptr;
}

json::object answersJson(const SequenceAnswers& answers) {
    json::object o;
    for (AnalysisKind kind : kAllAnalyses) {
        json::value v = answerJson(kind, answers);
        if (!v.is_null()) {
            o[analysisName(kind)] = std::move(v);
        }
    }
    return o;
}

} // namespace dmsd
