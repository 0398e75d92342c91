#pragma once

/// \file
/// `attention`: where the driver looks. Whether at the road, the gaze
/// direction, whether the eyes are open, and how sure the model is.
/// DISTRACTION reads it; PHONE_USE and DROWSINESS take it as a second source.

#include <array>
#include <cstdint>
#include <string_view>

#include "llm/answers.h"

namespace dmsd {

enum class Gaze : std::uint8_t { Road, Mirror, Dashboard, Phone, Passenger, Down, Away, Unknown };

/// "road", "mirror", ...
constexpr std::string_view gazeName(Gaze gaze) {
    constexpr std::array<std::string_view, 8> names = {
        "road", "mirror", "dashboard", "phone", "passenger", "down", "away", "unknown"};
    return names[static_cast<std::size_t>(gaze)];
}

struct AttentionAnswer {
    static constexpr AnalysisKind kKind = AnalysisKind::Attention;
    bool lookingAtRoad = true;
    Gaze gaze = Gaze::Unknown;
    bool eyesOpen = true;
    double confidence = 0.0;
};

class Analysis;
const Analysis& attentionAnalysis();

} // namespace dmsd
