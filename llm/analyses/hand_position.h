#pragma once

/// \file
/// `hand_position`: the driver's hands. How many are on the wheel, what a
/// hand holds, and how sure the model is. PHONE_USE and HANDS_OFF_WHEEL read it.

#include <array>
#include <cstdint>
#include <string_view>

#include "llm/answers.h"

namespace dmsd {

enum class Holding : std::uint8_t { Nothing, Phone, Food, Drink, Cigarette, Other };

/// "nothing", "phone", ...
constexpr std::string_view holdingName(Holding holding) {
    constexpr std::array<std::string_view, 6> names = {"nothing", "phone",     "food",
                                                       "drink",   "cigarette", "other"};
    return names[static_cast<std::size_t>(holding)];
}

struct HandPositionAnswer {
    static constexpr AnalysisKind kKind = AnalysisKind::HandPosition;
    int handsOnWheel = 0; ///< 0..2
    Holding holding = Holding::Nothing;
    double confidence = 0.0;
};

class Analysis;
const Analysis& handPositionAnalysis();

} // namespace dmsd
