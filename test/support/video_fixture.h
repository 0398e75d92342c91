#pragma once

/// \file
/// Test videos generated at test time with GStreamer, in process:
/// appsrc (I420) ! x264enc ! mp4mux, or appsrc ! jpegenc ! avimux.
///
/// A video is a list of segments, each of a solid RGB colour, optionally with
/// a moving square so that sampling sees change. The Ollama emulator can
/// script its answers from an image's mean colour: a static segment's frames
/// have exactly that mean (up to JPEG/H.264 rounding); a moving square covers
/// squareFraction^2 * height/width of the frame (1/24 of 320x240 with the
/// default 0.25), so it shifts the mean by at most that share of 255.
///
/// Example:
/// \code
///   dmsd::test::VideoSpec spec;               // 320x240 @ 10 fps, MP4/H.264
///   spec.segments = {{2.0, {200, 30, 30}, false}, {2.0, {30, 200, 30}, true}};
///   dmsd::test::generateVideo(dir / "trip.mp4", spec); // throws on failure
///   // 40 frames: dmsd::test::frameCount(spec)
/// \endcode

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace dmsd::test {

struct Rgb {
    std::uint8_t r = 128;
    std::uint8_t g = 128;
    std::uint8_t b = 128;
};

struct VideoSegment {
    double seconds = 2.0;
    Rgb colour;
    /// A square of the contrasting grey (white on dark colours, black on light
    /// ones) crosses the frame from left to right during the segment.
    bool moving = false;
};

enum class VideoContainer {
    Mp4H264,  ///< x264enc ! mp4mux (decoded by avdec_h264)
    AviMjpeg, ///< jpegenc ! avimux
};

struct VideoSpec {
    int width = 320;
    int height = 240;
    int fps = 10;
    VideoContainer container = VideoContainer::Mp4H264;
    std::vector<VideoSegment> segments{VideoSegment{}};
    double squareFraction = 0.25; ///< square side as a fraction of the height
};

/// Frames the video holds: sum over segments of round(seconds * fps).
std::size_t frameCount(const VideoSpec& spec);

/// Writes the video; throws std::runtime_error naming \a path and GStreamer's
/// message on failure. Takes well under a second for a few seconds of 320x240.
void generateVideo(const std::filesystem::path& path, const VideoSpec& spec);

/// Fills frame \a index (tightly packed I420 of the spec's size: Y, then U, then V).
using FrameFill = std::function<void(std::size_t index, std::uint8_t* i420)>;

/// Writes \a frames frames that \a fill draws, with the size, rate and
/// container of \a spec (its segments are not used); throws as generateVideo.
void generateVideoFrames(const std::filesystem::path& path, const VideoSpec& spec,
                         std::size_t frames, const FrameFill& fill);

enum class Corruption {
    Garbage,   ///< random bytes: no demuxer recognises it
    Truncated, ///< a valid video of \a spec cut to its first third
};
/// Writes a broken video file (for error-path tests).
void writeCorruptVideo(const std::filesystem::path& path, Corruption corruption,
                       const VideoSpec& spec = {});

/// BT.601 limited-range Y, U, V of an RGB colour (what the generator writes).
std::array<std::uint8_t, 3> rgbToYuv(Rgb colour);

/// The container that fits a file name: `.avi` -> AviMjpeg, else Mp4H264.
VideoContainer containerFor(const std::filesystem::path& path);

} // namespace dmsd::test
