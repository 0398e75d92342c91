#pragma once

/// \file
/// What the emulated model answers: the analysis a request asks for
/// (recognised from the `format` schema or the prompt) and the scripted answer
/// for it, chosen by the mean colour of the request's images.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

namespace dmsd::emulator {

/// The analyses of docs/interfaces.md section 7, plus `combined` and "not recognised".
enum class Analysis {
    FaceState,
    Attention,
    HandPosition,
    GeneralScene,
    ImpairedDriving,
    Combined,
    Unknown
};

inline constexpr std::array<Analysis, 5> kSingleAnalyses = {
    Analysis::FaceState, Analysis::Attention, Analysis::HandPosition, Analysis::GeneralScene,
    Analysis::ImpairedDriving};

/// "face_state", ..., "combined", "unknown".
std::string_view analysisName(Analysis analysis);
/// Inverse of analysisName for the five analyses and "combined"; nullopt otherwise.
std::optional<Analysis> analysisFromName(std::string_view name);

/// Recognises the analysis: the schema's top-level "title", else its property
/// names, else keywords of \a prompt (system + user text).
Analysis detectAnalysis(const boost::json::value* format, std::string_view prompt);

using Rgb = std::array<double, 3>;

/// Face state words (AWAKE, SLEEPY, ...) that occur in \a text as whole words, case-insensitively.
std::vector<std::string> faceStatesMentioned(std::string_view text);

/// The answer chosen for one request.
struct ScriptedAnswer {
    boost::json::value answer;
    /// Per single analysis answered (one, or five for combined): index of the
    /// matching rule, -1 for the script's default, -2 for the built-in default.
    std::vector<int> rules;
};

/// Rules and defaults loaded from the `--script` JSON (see docs/emulator.md).
class AnswerScript {
public:
    /// Built-in defaults only: an awake, attentive driver.
    AnswerScript() = default;

    /// Parses a script; throws std::runtime_error naming the offending key.
    static AnswerScript fromJson(const boost::json::value& script);
    /// Reads and parses \a path; throws std::runtime_error naming the file.
    static AnswerScript fromFile(const std::string& path);

    /// The answer for \a analysis given the images' mean colour (nullopt: no
    /// decodable image) and the user prompt. For Unknown, \a format (if an
    /// object schema) is filled deterministically.
    ScriptedAnswer answer(Analysis analysis, const std::optional<Rgb>& meanRgb,
                          std::string_view userPrompt, const boost::json::value* format) const;

    /// The built-in default answer of a single analysis.
    static boost::json::object builtinDefault(Analysis analysis);

private:
    struct Rule {
        std::string analysis; ///< a name or "*"
        std::optional<Rgb> color;
        double tolerance = 60;
        std::string promptContains; ///< optional, case-insensitive substring of the user prompt
        boost::json::value answer;
    };

    boost::json::value single(Analysis analysis, const std::optional<Rgb>& meanRgb,
                              std::string_view userPrompt, int& rule) const;

    std::vector<Rule> rules_;
    boost::json::object defaults_;
};

/// A deterministic value valid against a (simple) JSON schema: first enum
/// value, minimum of numbers, false, "", [], objects filled recursively.
boost::json::value fillSchema(const boost::json::value& schema, int depth = 0);

} // namespace dmsd::emulator
