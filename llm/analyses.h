#pragma once

/// \file
/// The five analyses of CONTRACT.md section 7: built-in prompts, the JSON
/// schemas sent as `format`, and the tolerant-but-type-strict parsing of what a
/// model answers into the typed answers of llm/answers.h. Nothing here throws
/// on model output: what cannot be recovered becomes an AnalysisError value.

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

/// Which analyses are asked (index = AnalysisKind).
using AnalysisSet = std::array<bool, kAnalysisCount>;

/// The enabled analyses of \a settings.
AnalysisSet enabledAnalyses(const AnalysesSettings& settings);

/// The system message sent with every request.
std::string_view systemPrompt();

/// Built-in instruction of \a kind (used when `analyses.<kind>.prompt` is empty).
std::string_view defaultPrompt(AnalysisKind kind);

/// The instruction in force: the configured prompt, or the built-in one.
std::string_view effectivePrompt(AnalysisKind kind, const AnalysesSettings& settings);

/// JSON schema of \a kind's answer; its top-level `"title"` is the analysis name
/// (the Ollama emulator, and people reading logs, recognise the analysis by it).
const boost::json::value& analysisSchema(AnalysisKind kind);

/// Schema of the combined answer: `{"title":"combined", properties: one per asked analysis}`.
boost::json::value combinedSchema(const AnalysisSet& asked);

/// How the images of a request show the sequence's frames, for the prompt:
/// count, times and, for a mosaic, the grid.
std::string framesDescription(const EncodedSequence& sequence, bool mosaic, std::size_t imageCount);

/// "the driver's face state is SLEEPY, eyes closed: yes, ..." (for impaired_driving).
std::string faceStateContext(const std::optional<Outcome<FaceStateAnswer>>& faceState);

/// The user message of one analysis: instruction, answer shape, frames and,
/// for impaired_driving, the face state found for the same frames.
std::string buildUserPrompt(AnalysisKind kind, const AnalysesSettings& settings,
                            std::string_view frames,
                            const std::optional<Outcome<FaceStateAnswer>>& faceState = {});

/// The user message of the combined question (all asked analyses in one answer).
std::string buildCombinedPrompt(const AnalysisSet& asked, const AnalysesSettings& settings,
                                std::string_view frames);

/// Finds the answer object in model output: plain JSON, JSON in ``` fences, or
/// the first balanced `{...}` inside prose. On failure returns nullopt and says
/// why in \a why (truncated, no object, invalid JSON).
std::optional<boost::json::object> extractJsonObject(std::string_view content, std::string* why);

/// Typed parsers of one analysis's model output.
Outcome<FaceStateAnswer> parseFaceState(std::string_view content);
Outcome<AttentionAnswer> parseAttention(std::string_view content);
Outcome<HandPositionAnswer> parseHandPosition(std::string_view content);
Outcome<GeneralSceneAnswer> parseGeneralScene(std::string_view content);
Outcome<ImpairedDrivingAnswer> parseImpairedDriving(std::string_view content);

/// Parses \a content as \a kind's answer into the matching member of \a out.
/// Returns false when it holds an error instead.
bool parseAnswerInto(AnalysisKind kind, std::string_view content, SequenceAnswers& out);

/// Parses a combined answer (one object keyed by analysis name) into \a out for
/// every analysis in \a asked; an analysis missing from it gets an error.
/// Returns the number of analyses that got an answer.
int parseCombinedInto(std::string_view content, const AnalysisSet& asked, SequenceAnswers& out);

/// Puts \a error in place of \a kind's answer.
void setAnalysisError(AnalysisKind kind, AnalysisError error, SequenceAnswers& out);

/// The error in place of \a kind's answer, or null (answered or not asked).
const AnalysisError* analysisError(AnalysisKind kind, const SequenceAnswers& answers);

/// True when \a kind was asked (has an answer or an error).
bool analysisAsked(AnalysisKind kind, const SequenceAnswers& answers);

/// CONTRACT.md section 6 form of one analysis: the answer's fields, or
/// `{"error": "..."}`; null when not asked.
boost::json::value answerJson(AnalysisKind kind, const SequenceAnswers& answers);

/// `{"face_state": {...}, ...}` for every asked analysis.
boost::json::object answersJson(const SequenceAnswers& answers);

} // namespace dmsd
