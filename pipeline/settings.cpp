#include "pipeline/settings.h"

#include <algorithm>
#include <vector>

#include <fmt/format.h>

#include "base/text.h"

namespace dmsd {
namespace {

bool isBlank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

} // namespace

std::optional<std::string> sourceProblem(std::string_view source) {
    static const std::vector<std::string> schemes = {"v4l2", "file", "test", "pipeline"};
    const std::size_t colon = source.find(':');
    if (colon == std::string_view::npos) {
        std::string hint;
        if (source.starts_with("/dev/")) {
            hint = fmt::format("; did you mean 'v4l2:{}'?", source);
        } else if (source.find('.') != std::string_view::npos ||
                   source.find('/') != std::string_view::npos) {
            hint = fmt::format("; did you mean 'file:{}'?", source);
        }
        return fmt::format("\"{}\" has no scheme{}", source, hint);
    }
    const std::string_view scheme = source.substr(0, colon);
    const std::string_view rest = source.substr(colon + 1);
    const bool restBlank = std::all_of(rest.begin(), rest.end(), isBlank);
    if (scheme == "v4l2") {
        if (!rest.starts_with('/')) {
            return fmt::format("\"{}\": v4l2 needs a device path such as v4l2:/dev/video0", source);
        }
    } else if (scheme == "file") {
        if (restBlank) {
            return fmt::format("\"{}\": file needs a path such as file:/path/to/video.mp4", source);
        }
    } else if (scheme == "test") {
        if (restBlank) {
            return fmt::format("\"{}\": test needs a pattern name such as test:ball", source);
        }
    } else if (scheme == "pipeline") {
        if (restBlank) {
            return fmt::format("\"{}\": pipeline needs a GStreamer launch description", source);
        }
    } else {
        std::string hint;
        if (auto near = nearMiss(scheme, schemes)) {
            hint = fmt::format("; did you mean '{}:'?", *near);
        }
        return fmt::format("unknown source scheme \"{}\"{}", scheme, hint);
    }
    return std::nullopt;
}

std::optional<ValueProblem> evenSizeProblem(const int& size) {
    if (size % 2 == 0) {
        return std::nullopt;
    }
    return ValueProblem{fmt::format("{} is odd; the 4:2:0 frames need an even size", size),
                        "even numbers"};
}

std::optional<ValueProblem> maxSideProblem(const int& maxSide) {
    if (maxSide == 0 || maxSide >= 32) {
        return std::nullopt;
    }
    return ValueProblem{
        fmt::format("{} pixels is too small for an image a model can read", maxSide),
        "0 (the capture size) or 32..7680"};
}

std::pair<int, int> scaledToMaxSide(int width, int height, int maxSide) {
    const int longer = std::max(width, height);
    if (maxSide <= 0 || longer <= maxSide) {
        return {width, height};
    }
    // Rounded to the nearest even size: 4:2:0 planes need whole chroma samples.
    auto scale = [&](int side) {
        const long long scaled =
            (static_cast<long long>(side) * maxSide + longer / 2) / longer; // rounded
        return std::max(2, static_cast<int>(scaled) & ~1);
    };
    return {scale(width), scale(height)};
}

std::optional<std::string> framesFitProblem(const CaptureSettings& capture,
                                            const SamplingSettings& sampling) {
    const long long available = capture.fps * sampling.interval.count() / 1000;
    if (sampling.framesPerSequence <= available) {
        return std::nullopt;
    }
    return fmt::format("{} frames per sequence do not fit in one interval of {} at {} fps (at "
                       "most {}); lower sampling.frames_per_sequence or raise sampling.interval "
                       "or capture.fps",
                       sampling.framesPerSequence, formatDuration(sampling.interval), capture.fps,
                       available);
}

} // namespace dmsd
