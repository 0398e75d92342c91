#pragma once

/// \file
/// `impaired_driving`: signs of impairment by alcohol, drugs, illness or
/// extreme fatigue. A concern level, the signs seen, how sure the model is.
/// Asked after `face_state` and told its answer. IMPAIRED_DRIVING reads it.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llm/answers.h"

namespace dmsd {

enum class Concern : std::uint8_t { Low, Moderate, High };

/// "LOW", "MODERATE", "HIGH".
constexpr std::string_view concernName(Concern concern) {
    constexpr std::array<std::string_view, 3> names = {"LOW", "MODERATE", "HIGH"};
    return names[static_cast<std::size_t>(concern)];
}

struct ImpairedDrivingAnswer {
    static constexpr AnalysisKind kKind = AnalysisKind::ImpairedDriving;
    Concern concern = Concern::Low;
    std::vector<std::string> indicators;
    double confidence = 0.0;
};

class Analysis;
const Analysis& impairedDrivingAnalysis();

} // namespace dmsd
