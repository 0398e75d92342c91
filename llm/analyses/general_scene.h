#pragma once

/// \file
/// `general_scene`: the cabin. A one-sentence description, whether a driver
/// is visible, how many people. DRIVER_NOT_VISIBLE reads it, and answers
/// about a driver the scene cannot see are not taken as evidence.

#include <string>

#include "llm/answers.h"

namespace dmsd {

struct GeneralSceneAnswer {
    static constexpr AnalysisKind kKind = AnalysisKind::GeneralScene;
    std::string description;
    bool driverVisible = true;
    int occupants = 0;
};

class Analysis;
const Analysis& generalSceneAnalysis();

} // namespace dmsd
