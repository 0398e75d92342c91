#include "llm/analysis.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "llm/analyses/answer_reader.h"

namespace dmsd {

namespace json = boost::json;

AnalysisSet enabledAnalyses(const AnalysesSettings& settings) {
    AnalysisSet set{};
    for (AnalysisKind kind : kAllAnalyses) {
        set[analysisIndex(kind)] = settings[kind].enabled;
    }
    return set;
}

std::string_view systemPrompt() {
    return "You are the vision component of an in-vehicle driver-monitoring system. You are "
           "shown frames from a camera facing the driver of a car, taken a fraction of a second "
           "apart, oldest first. Judge only what is visible in the frames. Answer with exactly one "
           "JSON object that follows the requested schema: no prose, no markdown, no code fences.";
}

std::string_view effectivePrompt(AnalysisKind kind, const AnalysesSettings& settings) {
    const std::string& configured = settings[kind].prompt;
    return configured.empty() ? analysis(kind).defaultPrompt() : std::string_view(configured);
}

json::value combinedSchema(const AnalysisSet& asked) {
    json::object properties;
    json::array required;
    for (AnalysisKind kind : kAllAnalyses) {
        if (asked[analysisIndex(kind)]) {
            properties[analysisName(kind)] = analysis(kind).schema();
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

std::string buildUserPrompt(AnalysisKind kind, const AnalysesSettings& settings,
                            std::string_view frames, const SequenceAnswers& earlier) {
    const Analysis& a = analysis(kind);
    std::string prompt(frames);
    prompt += ' ';
    if (a.dependsOn()) {
        prompt += a.dependencyContext(earlier);
        prompt += ' ';
    }
    prompt += effectivePrompt(kind, settings);
    prompt += " Answer only with JSON of this shape: ";
    prompt += a.answerShape();
    return prompt;
}

std::string buildCombinedPrompt(const AnalysisSet& asked, const AnalysesSettings& settings,
                                std::string_view frames) {
    std::string keys;
    for (AnalysisKind kind : kAllAnalyses) {
        if (asked[analysisIndex(kind)]) {
            keys += fmt::format("{}{}", keys.empty() ? "" : ", ", analysisName(kind));
        }
    }
    std::string prompt(frames);
    prompt += fmt::format(" Answer several questions about the driver in one JSON object with the "
                          "keys {}, each holding the answer object described below.",
                          keys);
    for (AnalysisKind kind : kAllAnalyses) {
        if (!asked[analysisIndex(kind)]) {
            continue;
        }
        const Analysis& a = analysis(kind);
        prompt += fmt::format("\n\n{}: {}", a.name(), effectivePrompt(kind, settings));
        prompt += a.combinedHint();
        prompt += fmt::format(" Shape: {}", a.answerShape());
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
// Answers.

namespace {

/// Reads \a o as \a kind's answer into \a out; false when it holds an error.
bool readInto(AnalysisKind kind, const json::object& o, SequenceAnswers& out) {
    AnalysisError error;
    std::any answer = analysis(kind).read(o, error);
    if (!answer.has_value()) {
        out.setError(kind, std::move(error));
        return false;
    }
    out.setAnswer(kind, std::move(answer));
    return true;
}

} // namespace

bool parseAnswerInto(AnalysisKind kind, std::string_view content, SequenceAnswers& out) {
    std::string why;
    auto o = extractJsonObject(content, &why);
    if (!o) {
        out.setError(kind, AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                         fmt::format("{}: {}", analysisName(kind), why)});
        return false;
    }
    return readInto(kind, *o, out);
}

int parseCombinedInto(std::string_view content, const AnalysisSet& asked, SequenceAnswers& out) {
    std::string why;
    auto o = extractJsonObject(content, &why);
    if (!o) {
        for (AnalysisKind kind : kAllAnalyses) {
            if (asked[analysisIndex(kind)]) {
                out.setError(
                    kind, AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                        fmt::format("{} (combined): {}", analysisName(kind), why)});
            }
        }
        return 0;
    }
    const json::object* container = &*o;
    bool anyKey = false;
    for (AnalysisKind kind : kAllAnalyses) {
        anyKey = anyKey || findAnswerKey(*container, analysisName(kind)) != nullptr;
    }
    // Some models wrap the answer once more: {"analyses": {...}} or {"answer": {...}}.
    if (!anyKey && container->size() == 1 && container->begin()->value().is_object()) {
        container = &container->begin()->value().get_object();
    }
    int answered = 0;
    for (AnalysisKind kind : kAllAnalyses) {
        if (!asked[analysisIndex(kind)]) {
            continue;
        }
        const json::value* v = findAnswerKey(*container, analysisName(kind));
        if (v != nullptr && v->is_object()) {
            answered += readInto(kind, v->get_object(), out) ? 1 : 0;
        } else if (v != nullptr && v->is_string()) {
            answered += parseAnswerInto(kind, v->get_string(), out) ? 1 : 0;
        } else {
            out.setError(kind, AnalysisError{AnalysisError::Kind::InvalidAnswer, 0,
                                             fmt::format("{}: missing from the combined answer",
                                                         analysisName(kind))});
        }
    }
    return answered;
}

json::value answerJson(AnalysisKind kind, const SequenceAnswers& answers) {
    if (!answers.asked(kind)) {
        return nullptr;
    }
    if (answers.answered(kind)) {
        return analysis(kind).toJson(answers.answer(kind));
    }
    const AnalysisError* error = answers.error(kind);
    return {{"error", error != nullptr ? error->message : std::string("no answer")}};
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
