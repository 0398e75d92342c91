// dmsd-make-face-video: a driver video from a real face (face_video.h), for
// the benchmarks of docs/performance.md and manual runs.
//
//   dmsd-make-face-video OUT.mp4 attentive:6 closed:6 attentive:6 empty:6 attentive:4
//
// Each argument after the file is SCENE:SECONDS, SCENE one of attentive,
// closed (eyes closed), empty (the seat without the driver). 640x480, 15 fps.

#include <cstdio>
#include <exception>
#include <string>

#include "face_video.h"

int main(int argc, char** argv) {
    using namespace dmsd::test;
    if (argc < 3) {
        std::fprintf(stderr, "usage: dmsd-make-face-video OUT.mp4|OUT.avi SCENE:SECONDS...\n"
                             "       SCENE: attentive | closed | empty\n");
        return 2;
    }
    FaceVideoSpec spec;
    for (int i = 2; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto colon = arg.find(':');
        const std::string scene = arg.substr(0, colon);
        SceneSegment segment;
        try {
            segment.seconds = colon == std::string::npos ? 0.0 : std::stod(arg.substr(colon + 1));
        } catch (const std::exception&) {
            segment.seconds = 0.0;
        }
        if (scene == "attentive") {
            segment.scene = DriverScene::Attentive;
        } else if (scene == "closed") {
            segment.scene = DriverScene::EyesClosed;
        } else if (scene == "empty") {
            segment.scene = DriverScene::Empty;
        } else {
            segment.seconds = 0.0;
        }
        if (segment.seconds <= 0.0) {
            std::fprintf(stderr, "dmsd-make-face-video: '%s' is not SCENE:SECONDS\n", arg.c_str());
            return 2;
        }
        spec.segments.push_back(segment);
    }
    try {
        generateFaceVideo(argv[1], spec);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "dmsd-make-face-video: %s\n", e.what());
        return 1;
    }
    return 0;
}
