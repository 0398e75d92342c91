#include <algorithm>
#include <cmath>
#include <memory>
#include <opencv2/imgproc.hpp>
#include <variant>

#include <catch2/catch.hpp>

#include "face_images.h"
#include "vision/face_analyzer.h"

using namespace dmsd;
using namespace dmsd::test;

// Real photographs from Debian's opencv-doc (test-only; scripts/install-deps
// installs it, CI too). Where it is absent the tests say so and pass.

namespace {

std::unique_ptr<FaceAnalyzer> openAnalyzer(const VisionSettings& settings = {}) {
    auto opened = FaceAnalyzer::open(settings);
    if (auto* error = std::get_if<std::string>(&opened)) {
        FAIL(*error);
    }
    return std::get<0>(std::move(opened));
}

/// One analyzer kept for the whole run: the ~100 MB model is loaded once
/// and shared by the analyzers the tests open (FaceAnalyzer::open).
FaceAnalyzer& keepModelLoaded() {
    static std::unique_ptr<FaceAnalyzer> kept = openAnalyzer();
    return *kept;
}

std::optional<cv::Mat> driverImage(const char* path) {
    if (!landmarkModelInstalled()) {
        WARN("skipped: dlib's landmark model is not installed (Debian package libdlib-data)");
        return std::nullopt;
    }
    auto image = loadGray(path);
    if (!image) {
        WARN("skipped: " << path << " is absent (test-only Debian package opencv-doc)");
        return std::nullopt;
    }
    keepModelLoaded();
    return driverFrame(*image);
}

FaceObservation analyzeOnce(const cv::Mat& frame) {
    auto analyzer = openAnalyzer();
    return analyzer->analyze(lumaView(frame)).face;
}

cv::Mat rotated(const cv::Mat& frame, cv::Point2f centre, double degrees) {
    cv::Mat out;
    cv::warpAffine(frame, out, cv::getRotationMatrix2D(centre, degrees, 1.0), frame.size(),
                   cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar(128));
    return out;
}

cv::Mat shifted(const cv::Mat& frame, double dx, double dy) {
    cv::Mat out;
    const cv::Matx23d m(1, 0, dx, 0, 1, dy);
    cv::warpAffine(frame, out, m, frame.size(), cv::INTER_LINEAR, cv::BORDER_CONSTANT,
                   cv::Scalar(128));
    return out;
}

} // namespace

TEST_CASE("real faces: found, 68 landmarks on the face, eyes open, pose", "[vision][faces]") {
    struct Case {
        const char* path;
        double maxYaw;
    };
    // The webcam capture looks into the camera; the portrait is turned a little.
    for (const Case& c : {Case{kWebcamFace, 15.0}, Case{kPortrait, 30.0}}) {
        INFO(c.path);
        const auto frame = driverImage(c.path);
        if (!frame) {
            return;
        }
        const FaceObservation face = analyzeOnce(*frame);
        REQUIRE(face.present);
        CHECK(face.detected);
        CHECK(face.confidence >= 0.5);
        // A driver's face in a 640x480 cabin frame.
        CHECK(face.box.width >= 120);
        CHECK(face.box.width <= 320);
        // The jaw line may reach a little beyond the detector's square.
        const double mx = face.box.width * 0.25;
        const double my = face.box.height * 0.25;
        for (const Point2& p : face.landmarks) {
            CHECK(p.x >= face.box.left - mx);
            CHECK(p.x <= face.box.left + face.box.width + mx);
            CHECK(p.y >= face.box.top - my);
            CHECK(p.y <= face.box.top + face.box.height + my);
        }
        // Landmarks in anatomical order: the right eye left of the left eye,
        // eyes above the nose tip, the nose tip above the mouth and the chin.
        CHECK(face.landmarks[39].x < face.landmarks[42].x);
        CHECK(face.landmarks[37].y < face.landmarks[30].y);
        CHECK(face.landmarks[30].y < face.landmarks[62].y);
        CHECK(face.landmarks[62].y < face.landmarks[8].y);
        // Open eyes (Soukupová & Čech: about 0.25-0.35 open, below 0.15 closed).
        for (int eye : {36, 42}) {
            const double ear = eyeAspectRatio(face.landmarks, eye);
            INFO("EAR " << eye << ": " << ear);
            CHECK(ear > 0.18);
            CHECK(ear < 0.45);
        }
        REQUIRE(face.pose);
        INFO("yaw " << face.pose->yawDeg << " pitch " << face.pose->pitchDeg << " roll "
                    << face.pose->rollDeg);
        CHECK(std::abs(face.pose->yawDeg) < c.maxYaw);
        CHECK(std::abs(face.pose->pitchDeg) < 20.0);
        CHECK(std::abs(face.pose->rollDeg) < 15.0);
    }
}

TEST_CASE("a rotated face: the roll follows the angle", "[vision][faces]") {
    for (const char* path : {kWebcamFace, kPortrait}) {
        INFO(path);
        const auto frame = driverImage(path);
        if (!frame) {
            return;
        }
        const FaceObservation upright = analyzeOnce(*frame);
        REQUIRE(upright.present);
        REQUIRE(upright.pose);
        const cv::Point2f centre(static_cast<float>(upright.box.left + upright.box.width / 2),
                                 static_cast<float>(upright.box.top + upright.box.height / 2));
        for (double angle : {-20.0, -10.0, 10.0, 20.0}) {
            INFO("rotated by " << angle << " degrees (counter-clockwise positive)");
            const FaceObservation tilted = analyzeOnce(rotated(*frame, centre, angle));
            REQUIRE(tilted.present);
            REQUIRE(tilted.pose);
            CHECK(tilted.pose->rollDeg - upright.pose->rollDeg == Approx(angle).margin(5.0));
            // Turning the image in its plane is no turn of the head.
            CHECK(tilted.pose->yawDeg == Approx(upright.pose->yawDeg).margin(8.0));
        }
    }
}

TEST_CASE("a mirrored face: the yaw changes sign", "[vision][faces]") {
    const auto frame = driverImage(kPortrait);
    if (!frame) {
        return;
    }
    const FaceObservation face = analyzeOnce(*frame);
    cv::Mat mirror;
    cv::flip(*frame, mirror, 1);
    const FaceObservation mirrored = analyzeOnce(mirror);
    REQUIRE(face.pose);
    REQUIRE(mirrored.pose);
    INFO("yaw " << face.pose->yawDeg << ", mirrored " << mirrored.pose->yawDeg);
    // The portrait is turned enough for the sign to mean something.
    REQUIRE(std::abs(face.pose->yawDeg) > 8.0);
    CHECK(std::signbit(face.pose->yawDeg) != std::signbit(mirrored.pose->yawDeg));
    CHECK(mirrored.pose->yawDeg == Approx(-face.pose->yawDeg).margin(8.0));
    CHECK(mirrored.pose->pitchDeg == Approx(face.pose->pitchDeg).margin(8.0));
    // The driver's right eye is on the image's left in both.
    CHECK(mirrored.landmarks[39].x < mirrored.landmarks[42].x);
}

TEST_CASE("scenes without a face", "[vision][faces]") {
    for (const char* path : {kBuilding, kFruits, kHome}) {
        INFO(path);
        const auto frame = driverImage(path);
        if (!frame) {
            return;
        }
        const FaceObservation face = analyzeOnce(*frame);
        CHECK(face.detected);
        CHECK_FALSE(face.present);
        CHECK_FALSE(face.pose);
    }
    // An empty (uniform) frame, as a covered lens gives.
    if (landmarkModelInstalled()) {
        const cv::Mat empty(480, 640, CV_8UC1, cv::Scalar(40));
        CHECK_FALSE(analyzeOnce(empty).present);
    }
}

TEST_CASE("the tracker follows the face between detections", "[vision][faces]") {
    const auto frame = driverImage(kWebcamFace);
    if (!frame) {
        return;
    }
    VisionSettings settings;
    settings.detectInterval = 5;
    auto analyzer = openAnalyzer(settings);
    const FaceAnalysis first = analyzer->analyze(lumaView(*frame));
    REQUIRE(first.face.present);
    CHECK(first.face.detected);
    CHECK(first.cost.detectUs > 0);
    CHECK(first.cost.detectArea == DetectArea::Full);
    // The face moves 6 px right per frame; four frames are tracked.
    for (int i = 1; i <= 4; ++i) {
        INFO("frame " << i);
        const FaceAnalysis next = analyzer->analyze(lumaView(shifted(*frame, 6.0 * i, 0)));
        REQUIRE(next.face.present);
        CHECK_FALSE(next.face.detected);
        CHECK(next.cost.detectUs == 0);
        CHECK(next.cost.detectArea == DetectArea::None);
        CHECK(next.cost.trackUs > 0);
        CHECK(next.cost.trackResponse > 0.3);
        // The phase correlation moves the box with the face.
        CHECK(next.face.box.left - first.face.box.left == Approx(6.0 * i).margin(2.0));
        // The landmarks move with the face (the nose tip, 6 px a frame).
        CHECK(next.face.landmarks[30].x - first.face.landmarks[30].x ==
              Approx(6.0 * i).margin(4.0));
        CHECK(next.face.landmarks[30].y == Approx(first.face.landmarks[30].y).margin(4.0));
    }
    // The fifth frame after a detection runs the detector again, around the
    // face only, and the box it finds is where the face moved to.
    const FaceAnalysis fifth = analyzer->analyze(lumaView(shifted(*frame, 30.0, 0)));
    CHECK(fifth.face.detected);
    CHECK(fifth.face.present);
    CHECK(fifth.cost.detectArea == DetectArea::AroundFace);
    // (A detection's box moves on the HOG cell grid: 8 px at 320 wide, 16 here.)
    CHECK(fifth.face.box.left - first.face.box.left == Approx(30.0).margin(16.0));
    CHECK(fifth.face.landmarks[30].x - first.face.landmarks[30].x == Approx(30.0).margin(4.0));

    // The driver leaves: the correlation loses the face at once, and the
    // same frame's search of the whole picture finds the seat empty.
    const auto seat = driverImage(kHome);
    REQUIRE(seat);
    const FaceAnalysis left = analyzer->analyze(lumaView(*seat));
    CHECK(left.cost.trackResponse < 0.15);
    CHECK_FALSE(left.face.present);
    CHECK(left.face.detected);
    CHECK(left.cost.detectArea == DetectArea::Full);
}

TEST_CASE("an empty seat is searched every detect_interval frames, a returning face found at the "
          "next search",
          "[vision][faces]") {
    const auto face = driverImage(kWebcamFace);
    const auto seat = driverImage(kHome);
    if (!face || !seat) {
        return;
    }
    VisionSettings settings;
    settings.detectInterval = 4;
    auto analyzer = openAnalyzer(settings);
    // The first frame searches the whole picture and finds the seat empty.
    const FaceAnalysis first = analyzer->analyze(lumaView(*seat));
    CHECK_FALSE(first.face.present);
    CHECK(first.face.detected);
    CHECK(first.cost.detectArea == DetectArea::Full);
    CHECK(first.cost.detectUs > 0);
    // The next three repeat that verdict without a search; the driver sits
    // down during them, and is found by the fourth frame's search.
    for (int i = 1; i <= 3; ++i) {
        INFO("frame " << i);
        const FaceAnalysis next = analyzer->analyze(lumaView(i == 1 ? *seat : *face));
        CHECK_FALSE(next.face.present);
        CHECK_FALSE(next.face.detected);
        CHECK(next.cost.detectArea == DetectArea::None);
        CHECK(next.cost.detectUs == 0);
    }
    const FaceAnalysis found = analyzer->analyze(lumaView(*face));
    CHECK(found.face.present);
    CHECK(found.face.detected);
    CHECK(found.cost.detectArea == DetectArea::Full);
    // reset() (a new stream) searches the next frame at once.
    const FaceAnalysis gone = analyzer->analyze(lumaView(*seat));
    CHECK_FALSE(gone.face.present);
    CHECK(gone.face.detected);
    analyzer->reset();
    const FaceAnalysis afterReset = analyzer->analyze(lumaView(*face));
    CHECK(afterReset.face.present);
    CHECK(afterReset.face.detected);
}
