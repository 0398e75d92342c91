#pragma once

/// \file
/// The answers of one sequence, indexed by analysis: for each analysis asked,
/// its typed answer (the struct its own file under llm/analyses/ declares) or
/// the error in its place. A failed request is a value here, never thrown.
/// Free of HTTP and JSON: the decision engine reads answers from here.

#include <any>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "llm/analysis_list.h"

namespace dmsd {

/// The analyses, in output order (llm/analysis_list.h).
enum class AnalysisKind : std::uint8_t {
#define DMSD_ANALYSIS_KIND(kind, factory) kind,
    DMSD_ANALYSES(DMSD_ANALYSIS_KIND)
#undef DMSD_ANALYSIS_KIND
};

inline constexpr std::size_t kAnalysisCount = 0
#define DMSD_ANALYSIS_COUNT(kind, factory) +1
    DMSD_ANALYSES(DMSD_ANALYSIS_COUNT)
#undef DMSD_ANALYSIS_COUNT
    ;

inline constexpr std::array<AnalysisKind, kAnalysisCount> kAllAnalyses = {
#define DMSD_ANALYSIS_ENTRY(kind, factory) AnalysisKind::kind,
    DMSD_ANALYSES(DMSD_ANALYSIS_ENTRY)
#undef DMSD_ANALYSIS_ENTRY
};

/// Index 0..kAnalysisCount-1 for per-analysis arrays.
constexpr std::size_t analysisIndex(AnalysisKind kind) {
    return static_cast<std::size_t>(kind);
}

/// "face_state", ...: the configuration key under `analyses:`, the JSON key
/// in output, the schema title (its descriptor's name, llm/analysis.h).
std::string_view analysisName(AnalysisKind kind);

/// Why an analysis has no answer.
struct AnalysisError {
    enum class Kind : std::uint8_t {
        ConnectionFailed, ///< refused, reset, DNS
        Timeout,          ///< connect, first byte, idle gap or overall deadline
        HttpStatus,       ///< 4xx/5xx with the server's error text
        ServerError,      ///< an error reported after output started
        MalformedBody,    ///< not HTTP/JSON as the server sends it, or too large
        InvalidAnswer,    ///< the model's content holds no usable answer object
        Cancelled,        ///< superseded or shutting down
    };
    Kind kind = Kind::InvalidAnswer;
    int httpStatus = 0;  ///< for HttpStatus
    std::string message; ///< human-readable, names the URL/analysis at fault
};

/// A typed answer or the error in its place (parsers' results, tests).
template <class T>
struct Outcome {
    std::optional<T> answer;
    std::optional<AnalysisError> error;
    bool ok() const { return answer.has_value(); }
    static Outcome success(T value) { return Outcome{std::move(value), std::nullopt}; }
    static Outcome failure(AnalysisError e) { return Outcome{std::nullopt, std::move(e)}; }
};

/// All answers of one sequence. An analysis not asked (disabled) has neither
/// an answer nor an error.
class SequenceAnswers {
public:
    /// The answer of \a A's analysis (A::kKind), or null when not asked or failed.
    template <class A>
    const A* get() const {
        return std::any_cast<A>(&slots_[analysisIndex(A::kKind)].answer);
    }
    /// The answer of \a kind as stored (its analysis's answer struct), empty if none.
    const std::any& answer(AnalysisKind kind) const { return slots_[analysisIndex(kind)].answer; }
    /// The error in place of \a kind's answer, or null (answered or not asked).
    const AnalysisError* error(AnalysisKind kind) const {
        const auto& e = slots_[analysisIndex(kind)].error;
        return e ? &*e : nullptr;
    }
    bool asked(AnalysisKind kind) const { return slots_[analysisIndex(kind)].asked; }
    bool answered(AnalysisKind kind) const {
        return slots_[analysisIndex(kind)].answer.has_value();
    }

    /// Stores \a answer as the answer of its analysis (A::kKind).
    template <class A>
    void set(A answer) {
        setAnswer(A::kKind, std::any(std::move(answer)));
    }
    void setAnswer(AnalysisKind kind, std::any answer) {
        slots_[analysisIndex(kind)] = Slot{true, std::move(answer), std::nullopt};
    }
    void setError(AnalysisKind kind, AnalysisError error) {
        slots_[analysisIndex(kind)] = Slot{true, std::any(), std::move(error)};
    }
    /// Makes \a kind not asked.
    void clear(AnalysisKind kind) { slots_[analysisIndex(kind)] = Slot{}; }

private:
    struct Slot {
        bool asked = false;
        std::any answer;
        std::optional<AnalysisError> error;
    };
    std::array<Slot, kAnalysisCount> slots_{};
};

} // namespace dmsd
