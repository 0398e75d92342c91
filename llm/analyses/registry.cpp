// The descriptors of llm/analysis_list.h, by kind.
#include "llm/analysis.h"

namespace dmsd {

#define DMSD_DECLARE_ANALYSIS(kind, factory) const Analysis& factory();
DMSD_ANALYSES(DMSD_DECLARE_ANALYSIS)
#undef DMSD_DECLARE_ANALYSIS

namespace {

const std::array<const Analysis*, kAnalysisCount>& registry() {
    static const std::array<const Analysis*, kAnalysisCount> all = {
#define DMSD_ANALYSIS_ENTRY(kind, factory) &factory(),
        DMSD_ANALYSES(DMSD_ANALYSIS_ENTRY)
#undef DMSD_ANALYSIS_ENTRY
    };
    return all;
}

} // namespace

const Analysis& analysis(AnalysisKind kind) {
    return *registry()[analysisIndex(kind)];
}

std::string_view analysisName(AnalysisKind kind) {
    return analysis(kind).name();
}

std::optional<AnalysisKind> analysisByName(std::string_view name) {
    for (AnalysisKind kind : kAllAnalyses) {
        if (analysis(kind).name() == name) {
            return kind;
        }
    }
    return std::nullopt;
}

} // namespace dmsd
