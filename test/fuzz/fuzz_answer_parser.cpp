// libFuzzer entry point for the answer parser (llm/analysis.h and every
// analysis under llm/analyses/): whatever a model (or a hostile server) sends
// as message content must end as an answer or an AnalysisError value, never a
// crash, hang or sanitizer report.
// Build with clang -fsanitize=fuzzer,address,undefined (scripts/fuzz).

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llm/analysis.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view content(reinterpret_cast<const char*>(data), size);
    dmsd::SequenceAnswers one;
    for (dmsd::AnalysisKind kind : dmsd::kAllAnalyses) {
        const bool ok = dmsd::parseAnswerInto(kind, content, one);
        // Invariant: an answer exactly when it says so, an error otherwise.
        if (ok != one.answered(kind) || ok == (one.error(kind) != nullptr)) {
            __builtin_trap();
        }
    }
    (void)dmsd::answersJson(one);
    dmsd::AnalysisSet all{};
    all.fill(true);
    dmsd::SequenceAnswers answers;
    const int answered = dmsd::parseCombinedInto(content, all, answers);
    // Invariant: every asked analysis holds exactly one of answer or error.
    for (dmsd::AnalysisKind kind : dmsd::kAllAnalyses) {
        if (!answers.asked(kind) || answers.answered(kind) == (answers.error(kind) != nullptr)) {
            __builtin_trap();
        }
    }
    if (answered < 0 || answered > static_cast<int>(dmsd::kAnalysisCount)) {
        __builtin_trap();
    }
    (void)dmsd::answersJson(answers);
    return 0;
}
