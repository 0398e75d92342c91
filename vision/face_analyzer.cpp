#include "vision/face_analyzer.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <dlib/image_processing.h>
#include <dlib/image_processing/frontal_face_detector.h>
#include <dlib/opencv/cv_image.h>
#include <map>
#include <mutex>
#include <numbers>
#include <opencv2/calib3d.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <time.h>
#include <vector>

#include "vision/landmark_model.h"

namespace dmsd {
namespace {

using Luma = dlib::cv_image<unsigned char>;

/// The landmark model is immutable once loaded and `LandmarkModel::predict`
/// is const, so every analyzer of the process (the batch workers of
/// `dmsd analyze`) shares one copy of its 66 MB instead of one each.
std::variant<std::shared_ptr<const LandmarkModel>, std::string>
sharedModel(const std::string& path) {
    static std::mutex mutex;
    static std::map<std::string, std::weak_ptr<const LandmarkModel>> loaded;
    const std::lock_guard lock(mutex);
    if (auto model = loaded[path].lock()) {
        return model;
    }
    auto model = LandmarkModel::load(path);
    if (auto* ready = std::get_if<std::shared_ptr<const LandmarkModel>>(&model)) {
        loaded[path] = *ready;
    }
    return model;
}

/// A generic face in millimetres, in the camera's axes (x right, y down, z
/// away from the camera) so that a face looking into the camera has no
/// rotation: nose tip, chin, outer eye corners, mouth corners (the widely
/// used average-face points). Only the ratios matter for the rotation.
const std::array<cv::Point3d, 6> kFaceModel = {{
    {0.0, 0.0, 0.0},         // 30: nose tip
    {0.0, 330.0, 65.0},      // 8: chin
    {-225.0, -170.0, 135.0}, // 36: the driver's right eye, outer corner
    {225.0, -170.0, 135.0},  // 45: left eye, outer corner
    {-150.0, 150.0, 125.0},  // 48: mouth, right corner
    {150.0, 150.0, 125.0},   // 54: mouth, left corner
}};
constexpr std::array<int, 6> kPoseLandmarks = {30, 8, 36, 45, 48, 54};

/// Between two detections the face box follows the image: the box's
/// content, shrunk to kPatchSide pixels square, is phase-correlated
/// (OpenCV's `phaseCorrelate`, Hanning-windowed) with the same place in the
/// next frame; the peak gives the shift. Below kTrackLostResponse (the
/// peak's share of the correlation energy: a face moved by 6 px reads 0.97,
/// the empty seat that replaced it -0.02, in test/vision/face_analyzer_test.cpp)
/// the face is taken as lost and the frame runs the detector.
constexpr int kPatchSide = 64;
constexpr double kTrackLostResponse = 0.15;

/// The scheduled re-detection of a tracked face looks only around it: the
/// box grown by this share of its width on each side (the head moves a
/// fraction of that between two detections).
constexpr double kAroundMargin = 0.4;
/// The cell of dlib's HOG features, in the detector's pixels: an area cut
/// on this grid gives the detector the same cells as the whole picture.
constexpr double kHogCell = 8.0;

double degrees(double radians) {
    return radians * 180.0 / std::numbers::pi;
}

/// The SVM margin of dlib's HOG detector (0 at its threshold; clear faces
/// score 1 or more) as a 0..1 confidence: 0.5 at the threshold, 1 from 1.
double detectionConfidence(double score) {
    return std::clamp(0.5 + score / 2.0, 0.0, 1.0);
}

} // namespace

std::int64_t threadCpuUs() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1000000 + ts.tv_nsec / 1000;
}

LumaView lumaOf(const Frame& frame) {
    const I420View& planes = frame.planes();
    return {planes.data[0], planes.stride[0], planes.width, planes.height};
}

struct FaceAnalyzer::Impl {
    VisionSettings settings;
    std::shared_ptr<const LandmarkModel> model;
    dlib::frontal_face_detector detector = dlib::get_frontal_face_detector();
    bool tracking = false;
    bool forceDetect = true;
    bool noFace = false; ///< the last search, over the whole picture, found none
    int framesSinceDetect = 0;
    double detectConfidence = 0.0;
    /// The face's box in the last frame (full resolution) and its content
    /// there, kPatchSide square, for the next frame's phase correlation.
    dlib::drectangle lastBox;
    cv::Mat lastPatch;
    cv::Mat patch;
    cv::Mat window; ///< the Hanning window of the correlation
    cv::Mat small;  ///< the downscaled plane, reused from frame to frame
    std::vector<dlib::rect_detection> detections;
    std::vector<cv::Point2d> imagePoints;
    cv::Mat rvec;
    cv::Mat tvec;
    bool poseValid = false;

    FaceAnalysis analyze(const LumaView& luma);
    /// \a box's content in \a full, shrunk to kPatchSide square, as float.
    bool patchOf(const cv::Mat& full, const dlib::drectangle& box, cv::Mat& out) const;
    /// Where the last frame's face is in \a full, if it is still there.
    std::optional<dlib::drectangle> trackedBox(const cv::Mat& full, double& response);
    /// The largest face the detector finds in \a area of \a full, seen
    /// scaled down by \a scale; its box in \a full's pixels.
    std::optional<dlib::drectangle> detect(const cv::Mat& full, const cv::Rect& area, double scale);
    std::optional<HeadPose> solvePose(const FaceLandmarks& landmarks, int width, int height);
};

bool FaceAnalyzer::Impl::patchOf(const cv::Mat& full, const dlib::drectangle& box,
                                 cv::Mat& out) const {
    const cv::Rect area = cv::Rect(cv::Point(static_cast<int>(std::lround(box.left())),
                                             static_cast<int>(std::lround(box.top()))),
                                   cv::Point(static_cast<int>(std::lround(box.right())),
                                             static_cast<int>(std::lround(box.bottom())))) &
                          cv::Rect(0, 0, full.cols, full.rows);
    // Most of the face must be in the picture to be followed.
    if (area.area() * 2 < box.area()) {
        return false;
    }
    cv::Mat shrunk;
    cv::resize(full(area), shrunk, cv::Size(kPatchSide, kPatchSide), 0, 0, cv::INTER_AREA);
    shrunk.convertTo(out, CV_32F);
    return true;
}

std::optional<dlib::drectangle> FaceAnalyzer::Impl::trackedBox(const cv::Mat& full,
                                                               double& response) {
    if (lastPatch.empty() || !patchOf(full, lastBox, patch)) {
        return std::nullopt;
    }
    if (window.empty()) {
        cv::createHanningWindow(window, cv::Size(kPatchSide, kPatchSide), CV_32F);
    }
    const cv::Point2d shift = cv::phaseCorrelate(lastPatch, patch, window, &response);
    if (!(response >= kTrackLostResponse)) {
        return std::nullopt;
    }
    // The shift is in patch pixels; the box keeps its size between detections.
    const double dx = shift.x * lastBox.width() / kPatchSide;
    const double dy = shift.y * lastBox.height() / kPatchSide;
    return dlib::translate_rect(lastBox, dlib::dpoint(dx, dy));
}

std::optional<dlib::drectangle> FaceAnalyzer::Impl::detect(const cv::Mat& full,
                                                           const cv::Rect& area, double scale) {
    // The detector sees the area scaled by 1/scale (a small copy; the
    // full-resolution plane is never copied).
    const cv::Mat region = full(area);
    const cv::Size size(std::max(1, static_cast<int>(std::lround(area.width / scale))),
                        std::max(1, static_cast<int>(std::lround(area.height / scale))));
    const cv::Mat* view = &region;
    if (size != region.size()) {
        cv::resize(region, small, size, 0, 0, scale > 1.0 ? cv::INTER_AREA : cv::INTER_LINEAR);
        view = &small;
    }
    detections.clear();
    detector(Luma(*view), detections, 0.0);
    // The driver is the largest face (a passenger or a face on a poster is
    // smaller from the driver's camera).
    const auto largest =
        std::max_element(detections.begin(), detections.end(), [](const auto& a, const auto& b) {
            return a.rect.area() < b.rect.area();
        });
    if (largest == detections.end()) {
        return std::nullopt;
    }
    detectConfidence = detectionConfidence(largest->detection_confidence);
    // dlib's pixel coordinates are long; a picture's fit a double exactly.
    const dlib::drectangle r(largest->rect);
    return dlib::drectangle(area.x + r.left() * scale, area.y + r.top() * scale,
                            area.x + r.right() * scale, area.y + r.bottom() * scale);
}

FaceAnalysis FaceAnalyzer::Impl::analyze(const LumaView& luma) {
    FaceAnalysis out;
    std::int64_t t0 = threadCpuUs();

    // The landmarks read the full-resolution plane, wrapped without a copy.
    const cv::Mat full(luma.height, luma.width, CV_8UC1, const_cast<std::uint8_t*>(luma.data),
                       static_cast<std::size_t>(luma.stride));
    const std::optional<dlib::drectangle> tracked =
        tracking && !forceDetect ? trackedBox(full, out.cost.trackResponse) : std::nullopt;
    {
        const std::int64_t t1 = threadCpuUs();
        out.cost.trackUs = t1 - t0;
        t0 = t1;
    }
    std::optional<dlib::drectangle> box;
    if (tracked && framesSinceDetect < settings.detectInterval) {
        box = tracked;
        ++framesSinceDetect;
    } else if (noFace && !forceDetect && framesSinceDetect < settings.detectInterval) {
        // No face since the last whole-picture search: the seat is searched
        // again every detect_interval frames, not on each one (an empty seat
        // would otherwise cost the most of all frames). The face's return is
        // seen up to detect_interval - 1 frames late; its loss is seen at
        // once (a lost track runs the detector on that frame).
        ++framesSinceDetect;
        return out;
    } else {
        out.face.detected = true;
        forceDetect = false;
        framesSinceDetect = 1;
        // The detector's scale: the picture downscaled to downscale_width.
        const double scale = luma.width > settings.downscaleWidth
                                 ? static_cast<double>(luma.width) / settings.downscaleWidth
                                 : 1.0;
        if (tracked) {
            // The scheduled re-detection of a tracked face searches around
            // it only: the box grown by kAroundMargin on each side, at the
            // whole picture's scale and on its HOG cell grid, so that the
            // detector frames the face exactly as a whole-picture detection
            // would (the landmarks depend on that framing).
            const double cell = kHogCell * scale;
            const double margin = kAroundMargin * tracked->width();
            const auto snapDown = [cell](double v) {
                return static_cast<int>(std::floor(v / cell) * cell);
            };
            const auto snapUp = [cell](double v) {
                return static_cast<int>(std::ceil(v / cell) * cell);
            };
            const cv::Rect around = cv::Rect(cv::Point(snapDown(tracked->left() - margin),
                                                       snapDown(tracked->top() - margin)),
                                             cv::Point(snapUp(tracked->right() + margin),
                                                       snapUp(tracked->bottom() + margin))) &
                                    cv::Rect(0, 0, luma.width, luma.height);
            if (!around.empty()) {
                out.cost.detectArea = DetectArea::AroundFace;
                box = detect(full, around, scale);
            }
        }
        if (!box) {
            // No face known, or none where it was: the whole picture.
            out.cost.detectArea = DetectArea::Full;
            box = detect(full, cv::Rect(0, 0, luma.width, luma.height), scale);
        }
        const std::int64_t t1 = threadCpuUs();
        out.cost.detectUs = t1 - t0;
        t0 = t1;
        noFace = !box;
        if (!box) {
            tracking = false;
            return out;
        }
    }

    const dlib::rectangle fullBox(std::lround(box->left()), std::lround(box->top()),
                                  std::lround(box->right()), std::lround(box->bottom()));
    out.face.box = {static_cast<double>(fullBox.left()), static_cast<double>(fullBox.top()),
                    static_cast<double>(fullBox.width()), static_cast<double>(fullBox.height())};
    out.face.landmarks = model->predict(luma, out.face.box);
    const std::int64_t t1 = threadCpuUs();
    out.cost.landmarksUs = t1 - t0;

    out.face.present = true;
    out.face.confidence = detectConfidence; // a tracked face: its last detection's
    out.face.pose = solvePose(out.face.landmarks, luma.width, luma.height);
    const std::int64_t t2 = threadCpuUs();
    out.cost.poseUs = t2 - t1;
    // The next frame is correlated with this one's face.
    lastBox = *box;
    tracking = patchOf(full, lastBox, lastPatch);
    out.cost.trackUs += threadCpuUs() - t2;
    return out;
}

std::optional<HeadPose> FaceAnalyzer::Impl::solvePose(const FaceLandmarks& landmarks, int width,
                                                      int height) {
    imagePoints.clear();
    for (int index : kPoseLandmarks) {
        const Point2& p = landmarks[static_cast<std::size_t>(index)];
        imagePoints.emplace_back(p.x, p.y);
    }
    // No calibration is known: a pinhole camera with the focal length equal
    // to the image width (about a 53 degree horizontal field of view, that of
    // a typical cabin camera), the principal point at the centre, no
    // distortion. Yaw and pitch near the centre of the image depend little
    // on the focal length.
    const double f = static_cast<double>(width);
    const cv::Matx33d camera(f, 0.0, width / 2.0, 0.0, f, height / 2.0, 0.0, 0.0, 1.0);
    const std::vector<cv::Point3d> model(kFaceModel.begin(), kFaceModel.end());
    // From one frame to the next the head moves little: the last pose is
    // the starting point of the iteration, which keeps it on the right one
    // of the two mirror solutions a few points allow.
    const bool ok = cv::solvePnP(model, imagePoints, camera, cv::noArray(), rvec, tvec, poseValid,
                                 cv::SOLVEPNP_ITERATIVE);
    if (!ok || tvec.empty() || !(tvec.at<double>(2) > 0.0) || !cv::checkRange(rvec)) {
        poseValid = false;
        return std::nullopt;
    }
    poseValid = true;
    cv::Matx33d r;
    cv::Rodrigues(rvec, r);
    // r = Rz(gamma) * Ry(beta) * Rx(alpha) in the camera's axes (y down, z
    // forward); the signs turn them into the conventions of HeadPose.
    const double beta = std::asin(std::clamp(-r(2, 0), -1.0, 1.0));
    const double alpha = std::atan2(r(2, 1), r(2, 2));
    const double gamma = std::atan2(r(1, 0), r(0, 0));
    return HeadPose{-degrees(beta), -degrees(alpha), -degrees(gamma)};
}

std::variant<std::unique_ptr<FaceAnalyzer>, std::string>
FaceAnalyzer::open(const VisionSettings& settings) {
    // One vision thread per stream: OpenCV must not start worker threads of
    // its own behind the daemon's back (resize would use them).
    cv::setNumThreads(0);
    auto model = sharedModel(settings.model);
    if (auto* error = std::get_if<std::string>(&model)) {
        return std::move(*error);
    }
    auto impl = std::make_unique<Impl>();
    impl->settings = settings;
    impl->model = std::get<0>(std::move(model));
    return std::unique_ptr<FaceAnalyzer>(new FaceAnalyzer(std::move(impl)));
}

FaceAnalyzer::FaceAnalyzer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {
}
FaceAnalyzer::~FaceAnalyzer() = default;

FaceAnalysis FaceAnalyzer::analyze(const LumaView& luma) {
    return impl_->analyze(luma);
}

void FaceAnalyzer::reset() {
    impl_->tracking = false;
    impl_->noFace = false;
    impl_->forceDetect = true;
    impl_->poseValid = false;
}

} // namespace dmsd
