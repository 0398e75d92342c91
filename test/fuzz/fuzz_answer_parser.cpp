// libFuzzer entry point for the answer parser (llm/analyses.h): whatever a
// model (or a hostile server) sends as message content must end as an answer
// or an AnalysisError value, never a crash, hang or sanitizer report.
// Link with dmsd_llm; build with clang -fsanitize=fuzzer,address,undefined.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llm/analyses.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view content(reinterpret_cast<const char*>(data), size);
    (void)dmsd::parseFaceState(content);
    (void)dmsd::parseAttention(content);
    (void)dmsd::parseHandPosition(content);
    (void)dmsd::parseGeneralScene(content);
    (void)dmsd::parseImpairedDriving(content);
    dmsd::AnalysisSet all{};
    all.fill(true);
    dmsd::SequenceAnswers answers;
    const int answered = dmsd::parseCombinedInto(content, all, answers);
    // Invariant: every asked analysis holds exactly one of answer or error.
    for (dmsd::AnalysisKind kind : dmsd::kAllAnalyses) {
        if (!dmsd::analysisAsked(kind, answers)) {
            __builtin_trap();
        }
    }
    if (answered < 0 || answered > 5) {
        __builtin_trap();
    }
    (void)dmsd::answersJson(answers);
    return 0;
}
