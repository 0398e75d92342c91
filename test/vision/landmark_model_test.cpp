// LandmarkModel against dlib's own shape_predictor: the same model file,
// the same image and box, the same 68 points, exactly. The faces are real
// photographs from Debian's opencv-doc, with eyes open and painted closed,
// and boxes moved and resized around them so that the trees take other
// paths than on the detector's box.

#include <cmath>
#include <dlib/image_processing.h>
#include <dlib/opencv/cv_image.h>
#include <dlib/serialize.h>
#include <fstream>
#include <memory>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

#include "face_images.h"
#include "face_video.h"
#include "test/support/temp_dir.h"
#include "vision/face_analyzer.h"
#include "vision/landmark_model.h"
#include "vision/settings.h"

using namespace dmsd;
using namespace dmsd::test;

namespace {

std::shared_ptr<const LandmarkModel> loadModel(const std::string& path) {
    auto loaded = LandmarkModel::load(path);
    if (auto* error = std::get_if<std::string>(&loaded)) {
        FAIL(*error);
    }
    return std::get<0>(loaded);
}

/// The box as the detector's whole pixels, \a dx, \a dy and \a grow pixels off.
FaceBox moved(const FaceBox& box, double dx, double dy, double grow) {
    return {box.left + dx - grow, box.top + dy - grow, box.width + 2 * grow, box.height + 2 * grow};
}

} // namespace

TEST_CASE("the flat landmark model gives dlib's shape_predictor's points exactly",
          "[vision][faces]") {
    std::string problem;
    const auto stills = driverStills(640, 480, &problem);
    const auto webcam = loadGray(kWebcamFace);
    if (!stills || !webcam) {
        WARN("skipped: " << (stills ? std::string("opencv-doc is not installed") : problem));
        return;
    }
    const std::string path = VisionSettings{}.model;
    const std::shared_ptr<const LandmarkModel> flat = loadModel(path);
    dlib::shape_predictor reference;
    dlib::deserialize(path) >> reference;

    const std::vector<std::pair<const char*, cv::Mat>> frames = {
        {"portrait, eyes open", stills->open},
        {"portrait, eyes closed", stills->closed},
        {"webcam face", driverFrame(*webcam)},
    };
    int compared = 0;
    for (const auto& [name, frame] : frames) {
        auto opened = FaceAnalyzer::open(VisionSettings{});
        REQUIRE(std::holds_alternative<std::unique_ptr<FaceAnalyzer>>(opened));
        const FaceAnalysis found = std::get<0>(opened)->analyze(lumaView(frame));
        INFO(name);
        REQUIRE(found.face.present);
        for (const FaceBox& box :
             {found.face.box, moved(found.face.box, 7, -5, 0), moved(found.face.box, -11, 9, 6),
              moved(found.face.box, 3, 4, -8), moved(found.face.box, 0, 0, 20)}) {
            INFO("box " << box.left << "," << box.top << " " << box.width << "x" << box.height);
            const FaceLandmarks points = flat->predict(lumaView(frame), box);
            const dlib::rectangle rect(std::lround(box.left), std::lround(box.top),
                                       std::lround(box.left + box.width) - 1,
                                       std::lround(box.top + box.height) - 1);
            const dlib::full_object_detection expected =
                reference(dlib::cv_image<unsigned char>(frame), rect);
            REQUIRE(expected.num_parts() == points.size());
            for (std::size_t i = 0; i < points.size(); ++i) {
                INFO("landmark " << i);
                CHECK(points[i].x == static_cast<double>(expected.part(i).x()));
                CHECK(points[i].y == static_cast<double>(expected.part(i).y()));
            }
            ++compared;
        }
    }
    CHECK(compared == 15);
    // The analyzer's own landmarks are the model's on the detector's box.
    auto opened = FaceAnalyzer::open(VisionSettings{});
    const FaceAnalysis closed = std::get<0>(opened)->analyze(lumaView(stills->closed));
    const FaceLandmarks direct = flat->predict(lumaView(stills->closed), closed.face.box);
    for (std::size_t i = 0; i < direct.size(); ++i) {
        CHECK(closed.face.landmarks[i].x == direct[i].x);
        CHECK(closed.face.landmarks[i].y == direct[i].y);
    }
}

TEST_CASE("a landmark model file that is cut short or of another version is refused, naming "
          "the path",
          "[vision][faces]") {
    if (!landmarkModelInstalled()) {
        WARN("skipped: dlib's landmark model is not installed (Debian package libdlib-data)");
        return;
    }
    TempDir dir("dmsd-landmark-model");
    // The real model's first megabyte: its header parses, its trees run out.
    const auto cut = (dir / "cut.dat").string();
    {
        std::ifstream in(VisionSettings{}.model, std::ios::binary);
        std::vector<char> head(1 << 20);
        in.read(head.data(), static_cast<std::streamsize>(head.size()));
        std::ofstream(cut, std::ios::binary).write(head.data(), in.gcount());
    }
    auto loaded = LandmarkModel::load(cut);
    REQUIRE(std::holds_alternative<std::string>(loaded));
    CHECK_THAT(std::get<std::string>(loaded),
               Catch::StartsWith("landmark model \"" + cut + "\" is not a dlib shape predictor: "));

    const auto version2 = (dir / "version2.dat").string();
    {
        std::ofstream out(version2, std::ios::binary);
        dlib::serialize(2, out);
        dlib::serialize(dlib::matrix<float, 0, 1>(136), out);
    }
    loaded = LandmarkModel::load(version2);
    REQUIRE(std::holds_alternative<std::string>(loaded));
    CHECK_THAT(std::get<std::string>(loaded), Catch::Contains("unexpected version"));
    CHECK_THAT(std::get<std::string>(loaded), Catch::Contains(version2));
}
