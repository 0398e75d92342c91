#pragma once

/// \file
/// Real faces for the vision tests, made at test time from Debian's
/// opencv-doc package (never committed): its photographs decoded to grey,
/// placed in a 640x480 frame as a cabin camera would see a driver.

#include <opencv2/core.hpp>
#include <optional>
#include <string>

#include "pipeline/frame.h"
#include "vision/face_analyzer.h"

namespace dmsd::test {

/// opencv-doc's photographs (test-only package; scripts/install-deps).
inline constexpr const char* kPortrait = "/usr/share/doc/opencv-doc/opencv4/html/230501201_1.jpg";
inline constexpr const char* kWebcamFace =
    "/usr/share/doc/opencv-doc/opencv4/html/Cascade_Classifier_Tutorial_Result_Haar.jpg";
inline constexpr const char* kBuilding = "/usr/share/doc/opencv-doc/examples/data/building.jpg";
inline constexpr const char* kFruits = "/usr/share/doc/opencv-doc/examples/data/fruits.jpg";
inline constexpr const char* kHome = "/usr/share/doc/opencv-doc/examples/data/home.jpg";

/// The JPEG at \a path as an 8-bit grey image; nullopt when the file is absent.
std::optional<cv::Mat> loadGray(const std::string& path);

/// \a image scaled to fit \a width x \a height, centred on mid grey.
cv::Mat driverFrame(const cv::Mat& image, int width = 640, int height = 480);

/// A view of a continuous or strided 8-bit image.
LumaView lumaView(const cv::Mat& gray);

/// An I420 frame whose Y plane is \a gray (chroma neutral).
FramePtr frameOf(const cv::Mat& gray, std::uint64_t id, double ptsS);

/// The installed model, or a WARN and nullopt-like skip by the caller.
bool landmarkModelInstalled();

} // namespace dmsd::test
