#pragma once

/// \file
/// One question the model is asked about a sequence, as a descriptor: its
/// name, built-in prompt, answer shape and JSON schema, the analysis it
/// depends on (asked after it and told its answer), how its answer is read
/// from the model's JSON (tolerant of spelling, strict about types), and how
/// the answer is written out (`analyze` lines, snapshots, GetStatus) and
/// cited as alert evidence. Each analysis is one file under llm/analyses/
/// registered in llm/analysis_list.h; the prompts, the combined question and
/// the parsing below work on any of them through this interface. Nothing here
/// throws on model output: what cannot be recovered is an AnalysisError.

#include <any>
#include <array>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "llm/answers.h"
#include "llm/settings.h"
#include "pipeline/sequence.h"

namespace dmsd {

class Analysis {
public:
    virtual ~Analysis() = default;

    virtual AnalysisKind kind() const = 0;
    /// "face_state": the configuration key, the JSON key, the schema title.
    virtual std::string_view name() const = 0;
    /// The instruction used when `analyses.<name>.prompt` is empty.
    virtual std::string_view defaultPrompt() const = 0;
    /// The answer's shape as the prompt shows it.
    virtual std::string_view answerShape() const = 0;
    /// JSON schema of the answer, sent as `format`; its "title" is name().
    virtual const boost::json::value& schema() const = 0;

    /// The analysis this one is given the answer of (asked after it), if any.
    virtual std::optional<AnalysisKind> dependsOn() const { return std::nullopt; }
    /// For a dependent analysis: what its prompt says of the answers so far.
    virtual std::string dependencyContext(const SequenceAnswers& /*earlier*/) const { return {}; }
    /// Added to this analysis's part of the combined question.
    virtual std::string_view combinedHint() const { return {}; }

    /// Reads the answer object: the typed answer, or nothing with \a error set.
    virtual std::any read(const boost::json::object& object, AnalysisError& error) const = 0;
    /// The answer's fields as `analyze` writes them.
    virtual boost::json::object toJson(const std::any& answer) const = 0;
    /// The fields alerts cite as evidence (without the confidence).
    virtual boost::json::object evidence(const std::any& answer) const = 0;
    /// The answer's self-reported confidence, 0..1, if it has one.
    virtual std::optional<double> confidence(const std::any& answer) const = 0;
};

/// The descriptor of \a kind.
const Analysis& analysis(AnalysisKind kind);

/// The analysis named \a name ("face_state"), if any.
std::optional<AnalysisKind> analysisByName(std::string_view name);

/// Which analyses are asked (index = AnalysisKind).
using AnalysisSet = std::array<bool, kAnalysisCount>;

/// The enabled analyses of \a settings.
AnalysisSet enabledAnalyses(const AnalysesSettings& settings);

/// The system message sent with every request.
std::string_view systemPrompt();

/// The instruction in force: the configured prompt, or the built-in one.
std::string_view effectivePrompt(AnalysisKind kind, const AnalysesSettings& settings);

/// Schema of the combined answer: `{"title":"combined", properties: one per asked analysis}`.
boost::json::value combinedSchema(const AnalysisSet& asked);

/// How the images of a request show the sequence's frames, for the prompt:
/// count, times and, for a mosaic, the grid.
std::string framesDescription(const EncodedSequence& sequence, bool mosaic, std::size_t imageCount);

/// The user message of one analysis: instruction, answer shape, frames and,
/// for a dependent analysis, what \a earlier says of its dependency.
std::string buildUserPrompt(AnalysisKind kind, const AnalysesSettings& settings,
                            std::string_view frames, const SequenceAnswers& earlier = {});

/// The user message of the combined question (all asked analyses in one answer).
std::string buildCombinedPrompt(const AnalysisSet& asked, const AnalysesSettings& settings,
                                std::string_view frames);

/// Finds the answer object in model output: plain JSON, JSON in ``` fences, or
/// the first balanced `{...}` inside prose. On failure returns nullopt and says
/// why in \a why (truncated, no object, invalid JSON).
std::optional<boost::json::object> extractJsonObject(std::string_view content, std::string* why);

/// Parses \a content as \a kind's answer into \a out (the answer, or the error
/// in its place). Returns false when it holds an error.
bool parseAnswerInto(AnalysisKind kind, std::string_view content, SequenceAnswers& out);

/// Parses a combined answer (one object keyed by analysis name) into \a out for
/// every analysis in \a asked; an analysis missing from it gets an error.
/// Returns the number of analyses that got an answer.
int parseCombinedInto(std::string_view content, const AnalysisSet& asked, SequenceAnswers& out);

/// Parses \a content as the answer of \a A's analysis (tests, tools).
template <class A>
Outcome<A> parseAnswer(std::string_view content) {
    SequenceAnswers answers;
    if (parseAnswerInto(A::kKind, content, answers)) {
        return Outcome<A>::success(*answers.get<A>());
    }
    return Outcome<A>::failure(*answers.error(A::kKind));
}

/// The `analyze` form of one analysis: the answer's fields, or
/// `{"error": "..."}`; null when not asked.
boost::json::value answerJson(AnalysisKind kind, const SequenceAnswers& answers);

/// `{"face_state": {...}, ...}` for every asked analysis.
boost::json::object answersJson(const SequenceAnswers& answers);

} // namespace dmsd
