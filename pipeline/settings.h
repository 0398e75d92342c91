#pragma once

/// \file
/// Settings of the frame path: `capture:` (what is captured), `sampling:`
/// (which frames are asked about) and `encode:` (how they are sent), with
/// their keys, ranges and checks (base/keys.h).

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "base/duration.h"
#include "base/keys.h"

namespace dmsd {

/// Problem with a capture source `SCHEME:REST` (v4l2, file, test, pipeline).
std::optional<std::string> sourceProblem(std::string_view source);

/// Problem with a frame width or height: 4:2:0 frames need an even size.
std::optional<ValueProblem> evenSizeProblem(const int& size);

/// Problem with `encode.max_side`: 0 (the capture size) or at least 32 pixels.
std::optional<ValueProblem> maxSideProblem(const int& maxSide);

/// The size \a width x \a height scaled down so that its longer side is at
/// most \a maxSide (aspect kept, even sizes, at least 2); unchanged when
/// \a maxSide is 0 or not smaller than the longer side.
std::pair<int, int> scaledToMaxSide(int width, int height, int maxSide);

struct CaptureSettings {
    /// v4l2:DEVICE | file:PATH | test:PATTERN | pipeline:GST-LAUNCH-DESCRIPTION
    std::string source = "v4l2:/dev/video0";
    int width = 640;
    int height = 480;
    int fps = 15;

    friend bool operator==(const CaptureSettings&, const CaptureSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.text("source", s.source,
               "v4l2:DEVICE, file:PATH, test:PATTERN, pipeline:GST-LAUNCH-DESCRIPTION",
               sourceProblem);
        k.integer("width", s.width, 32, 7680, evenSizeProblem);
        k.integer("height", s.height, 32, 4320, evenSizeProblem);
        k.integer("fps", s.fps, 1, 120);
    }
};

struct SamplingSettings {
    Millis interval{2000};
    int framesPerSequence = 4;
    double motionThreshold = 0.02;
    Millis maxStaticSkip{10000};

    friend bool operator==(const SamplingSettings&, const SamplingSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        using namespace std::chrono_literals;
        k.duration("interval", s.interval, 100ms, 1h);
        k.integer("frames_per_sequence", s.framesPerSequence, 2, 32);
        k.number("motion_threshold", s.motionThreshold, 0.0, 1.0);
        k.duration("max_static_skip", s.maxStaticSkip, 0ms, 24h);
    }
};

/// The frames of a sequence must fit in one interval at the capture rate;
/// nullopt when they do.
std::optional<std::string> framesFitProblem(const CaptureSettings& capture,
                                            const SamplingSettings& sampling);

/// How the frames of a sequence go to the model: one image each, or tiled into one.
enum class ImageLayout { Separate, Mosaic };
inline constexpr std::array<std::pair<std::string_view, ImageLayout>, 2> kImageLayoutNames = {{
    {"separate", ImageLayout::Separate},
    {"mosaic", ImageLayout::Mosaic},
}};

struct EncodeSettings {
    int jpegQuality = 85;
    ImageLayout layout = ImageLayout::Separate;
    /// Longest side in pixels of each image the model receives (the frame
    /// scaled down keeping its aspect; a mosaic as a whole); 0: the capture size.
    int maxSide = 336;

    friend bool operator==(const EncodeSettings&, const EncodeSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.integer("jpeg_quality", s.jpegQuality, 1, 100);
        k.choice("layout", s.layout, ChoiceNames<ImageLayout>(kImageLayoutNames));
        k.integer("max_side", s.maxSide, 0, 7680, maxSideProblem);
    }
};

} // namespace dmsd
