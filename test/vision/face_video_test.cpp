// The driver stills of the end-to-end videos (face_video.h): the painted eyes
// read as closed to the landmark model, the open ones as open, the
// background alone as no face.

#include <opencv2/imgproc.hpp>

#include <catch2/catch.hpp>

#include "face_images.h"
#include "face_video.h"
#include "vision/face_analyzer.h"

using namespace dmsd;
using namespace dmsd::test;

namespace {

double meanEar(const FaceObservation& face) {
    return (eyeAspectRatio(face.landmarks, 36) + eyeAspectRatio(face.landmarks, 42)) / 2.0;
}

} // namespace

TEST_CASE("driver stills: painted eyes are closed, open eyes open", "[vision][faces]") {
    std::string problem;
    const auto stills = driverStills(640, 480, &problem);
    if (!stills) {
        WARN("skipped: " << problem);
        return;
    }
    auto opened = FaceAnalyzer::open(VisionSettings{});
    REQUIRE(std::holds_alternative<std::unique_ptr<FaceAnalyzer>>(opened));
    auto& analyzer = *std::get<0>(opened);
    const VisionSettings defaults;

    analyzer.reset();
    const FaceObservation open = analyzer.analyze(lumaView(stills->open)).face;
    REQUIRE(open.present);
    INFO("open EAR " << meanEar(open));
    CHECK(meanEar(open) > defaults.signals.earClosed + 0.03);

    analyzer.reset();
    const FaceObservation closed = analyzer.analyze(lumaView(stills->closed)).face;
    REQUIRE(closed.present);
    INFO("closed EAR " << meanEar(closed));
    CHECK(meanEar(closed) < defaults.signals.earClosed - 0.03);
    // The same face, where it was.
    CHECK(std::abs(closed.box.left - open.box.left) < open.box.width * 0.1);
}
