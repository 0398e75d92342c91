#include "face_video.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <variant>

#include "face_images.h"
#include "test/support/video_fixture.h"
#include "vision/face_analyzer.h"

namespace dmsd::test {

namespace {

/// Paints the eye of landmarks first..first+5 shut: the eye's outline, grown
/// so that the white and the iris do not show, filled (with a feathered edge)
/// with the skin just below it, and the lash line of a closed lid, a dark arc
/// from corner to corner along the lower lid. Made to read as closed to the
/// 68-point model (EAR about 0.11 against 0.28 open: face_video_test.cpp).
void paintEyeClosed(cv::Mat& gray, const FaceLandmarks& l, int first) {
    const auto at = [&l, first](int i) {
        return l[static_cast<std::size_t>(first + i)];
    };
    double cx = 0.0;
    double cy = 0.0;
    for (int i = 0; i < 6; ++i) {
        cx += at(i).x / 6.0;
        cy += at(i).y / 6.0;
    }
    const double width = std::hypot(at(3).x - at(0).x, at(3).y - at(0).y);
    std::vector<cv::Point> outline;
    for (int i = 0; i < 6; ++i) {
        // Grown 1.3x across and 2.2x up and down around the eye's centre, the
        // upper lid raised and the lower one lowered a little more.
        const double shift = i == 1 || i == 2 ? -0.15 : i == 4 || i == 5 ? 0.1 : 0.0;
        outline.emplace_back(static_cast<int>(cx + (at(i).x - cx) * 1.3),
                             static_cast<int>(cy + (at(i).y - cy) * 2.2 + width * shift));
    }
    // Skin: the mean of a patch about half an eye width below the eye.
    const cv::Rect patch =
        cv::Rect(static_cast<int>(cx - width * 0.3), static_cast<int>(cy + width * 0.55),
                 static_cast<int>(width * 0.6), std::max(2, static_cast<int>(width * 0.2))) &
        cv::Rect(0, 0, gray.cols, gray.rows);
    const double skin = cv::mean(gray(patch))[0];
    cv::Mat mask = cv::Mat::zeros(gray.size(), CV_8UC1);
    cv::fillConvexPoly(mask, outline, cv::Scalar(255), cv::LINE_AA);
    cv::GaussianBlur(mask, mask, cv::Size(5, 5), 0);
    for (int y = 0; y < gray.rows; ++y) {
        auto* row = gray.ptr<std::uint8_t>(y);
        const auto* k = mask.ptr<std::uint8_t>(y);
        for (int x = 0; x < gray.cols; ++x) {
            row[x] = static_cast<std::uint8_t>((row[x] * (255 - k[x]) + skin * k[x]) / 255.0);
        }
    }
    const double drop = width * 0.05;
    const std::vector<cv::Point> lashes = {
        cv::Point(static_cast<int>(at(0).x), static_cast<int>(at(0).y)),
        cv::Point(static_cast<int>(at(5).x), static_cast<int>((at(5).y + cy) / 2 + drop)),
        cv::Point(static_cast<int>(at(4).x), static_cast<int>((at(4).y + cy) / 2 + drop)),
        cv::Point(static_cast<int>(at(3).x), static_cast<int>(at(3).y))};
    cv::polylines(gray, lashes, false, cv::Scalar(std::max(0.0, skin - 75)), 3, cv::LINE_AA);
}

/// Vertical stripes of 24 pixels scrolled by \a offset.
void stripes(cv::Mat& gray, int offset) {
    for (int y = 0; y < gray.rows; ++y) {
        auto* row = gray.ptr<std::uint8_t>(y);
        for (int x = 0; x < gray.cols; ++x) {
            row[x] = ((x + offset) / 24) % 2 == 0 ? 90 : 160;
        }
    }
}

} // namespace

std::optional<DriverStills> driverStills(int width, int height, std::string* problem) {
    const auto fail = [problem](std::string why) -> std::optional<DriverStills> {
        if (problem != nullptr) {
            *problem = std::move(why);
        }
        return std::nullopt;
    };
    if (!landmarkModelInstalled()) {
        return fail("the landmark model (libdlib-data) is not installed");
    }
    const std::optional<cv::Mat> portrait = loadGray(kPortrait);
    if (!portrait) {
        return fail(std::string("opencv-doc's ") + kPortrait + " is not installed");
    }
    DriverStills stills;
    stills.open = driverFrame(*portrait, width, height);
    const double scale = std::min(static_cast<double>(width) / portrait->cols,
                                  static_cast<double>(height) / portrait->rows);
    const int w = static_cast<int>(std::lround(portrait->cols * scale));
    const int h = static_cast<int>(std::lround(portrait->rows * scale));
    stills.photo =
        cv::Rect((width - w) / 2, (height - h) / 2, w, h) & cv::Rect(0, 0, width, height);

    auto opened = FaceAnalyzer::open(VisionSettings{});
    if (auto* error = std::get_if<std::string>(&opened)) {
        return fail(*error);
    }
    auto& analyzer = *std::get<0>(opened);
    const FaceAnalysis analysis = analyzer.analyze(lumaView(stills.open));
    if (!analysis.face.present) {
        return fail("no face found in the portrait");
    }
    stills.closed = stills.open.clone();
    paintEyeClosed(stills.closed, analysis.face.landmarks, 36);
    paintEyeClosed(stills.closed, analysis.face.landmarks, 42);
    return stills;
}

double segmentStart(const FaceVideoSpec& spec, std::size_t index) {
    double t = 0.0;
    for (std::size_t i = 0; i < index && i < spec.segments.size(); ++i) {
        t += std::lround(spec.segments[i].seconds * spec.fps) / static_cast<double>(spec.fps);
    }
    return t;
}

void generateFaceVideo(const std::filesystem::path& path, const FaceVideoSpec& spec) {
    std::string problem;
    const std::optional<DriverStills> stills = driverStills(spec.width, spec.height, &problem);
    if (!stills) {
        throw std::runtime_error("generateFaceVideo " + path.string() + ": " + problem);
    }
    std::vector<DriverScene> scenes;
    for (const SceneSegment& segment : spec.segments) {
        const auto frames = static_cast<std::size_t>(std::lround(segment.seconds * spec.fps));
        scenes.insert(scenes.end(), frames, segment.scene);
    }
    VideoSpec video;
    video.width = spec.width;
    video.height = spec.height;
    video.fps = spec.fps;
    video.container = containerFor(path);
    cv::Mat frame(spec.height, spec.width, CV_8UC1);
    const std::size_t lumaSize =
        static_cast<std::size_t>(spec.width) * static_cast<std::size_t>(spec.height);
    generateVideoFrames(path, video, scenes.size(), [&](std::size_t index, std::uint8_t* i420) {
        // The background scrolls 4 pixels a frame: every window has motion.
        stripes(frame, static_cast<int>(index * 4));
        if (scenes[index] != DriverScene::Empty) {
            const cv::Mat& still =
                scenes[index] == DriverScene::EyesClosed ? stills->closed : stills->open;
            still(stills->photo).copyTo(frame(stills->photo));
        }
        for (int y = 0; y < spec.height; ++y) {
            std::memcpy(i420 + static_cast<std::size_t>(y) * spec.width, frame.ptr(y),
                        static_cast<std::size_t>(spec.width));
        }
        std::memset(i420 + lumaSize, 128, lumaSize / 2); // neutral chroma
    });
}

} // namespace dmsd::test
