#pragma once

/// \file
/// Driver videos from a real face, made at test time: opencv-doc's portrait
/// (face_images.h) over a background of stripes that scroll (so the motion
/// sampler sees change and asks the model), in segments of an attentive
/// driver, the same driver with the eyes closed (skin painted over the eye
/// regions the landmark model finds, as a closed lid looks), and an empty
/// seat (the background alone).

#include <filesystem>
#include <opencv2/core.hpp>
#include <optional>
#include <string>
#include <vector>

namespace dmsd::test {

enum class DriverScene { Attentive, EyesClosed, Empty };

struct SceneSegment {
    double seconds = 2.0;
    DriverScene scene = DriverScene::Attentive;
};

struct FaceVideoSpec {
    int width = 640;
    int height = 480;
    int fps = 15;
    std::vector<SceneSegment> segments;
};

/// The portrait in a width x height grey frame (mid-grey margins), with its
/// eyes open and with them painted closed; nullopt when opencv-doc or the
/// landmark model is not installed, or no face is found. \a problem says why.
struct DriverStills {
    cv::Mat open;
    cv::Mat closed;
    cv::Rect photo; ///< where the portrait lies in the frame
};
std::optional<DriverStills> driverStills(int width, int height, std::string* problem = nullptr);

/// Writes the video (MP4/H.264, or MJPEG/AVI for a .avi name); throws
/// std::runtime_error when the stills cannot be made or GStreamer fails.
void generateFaceVideo(const std::filesystem::path& path, const FaceVideoSpec& spec);

/// Video time at which segment \a index starts.
double segmentStart(const FaceVideoSpec& spec, std::size_t index);

} // namespace dmsd::test
