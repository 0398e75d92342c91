#include <catch2/catch.hpp>

#include "pipeline/settings.h"

using namespace dmsd;

TEST_CASE("capture sources: known schemes with a non-empty rest", "[pipeline][source]") {
    for (const char* source : {"v4l2:/dev/video0", "file:/tmp/a.mp4", "file:relative.mkv",
                               "test:ball", "pipeline:videotestsrc ! video/x-raw,format=I420"}) {
        INFO(source);
        CHECK_FALSE(sourceProblem(source));
    }
    CHECK(sourceProblem("rtsp://cam/stream") == "unknown source scheme \"rtsp\"");
    CHECK(sourceProblem("v4l:/dev/video0") ==
          "unknown source scheme \"v4l\"; did you mean 'v4l2:'?");
    CHECK(sourceProblem("/dev/video0") ==
          "\"/dev/video0\" has no scheme; did you mean 'v4l2:/dev/video0'?");
    CHECK(sourceProblem("video.mp4") ==
          "\"video.mp4\" has no scheme; did you mean 'file:video.mp4'?");
    CHECK(sourceProblem("v4l2:video0") ==
          "\"v4l2:video0\": v4l2 needs a device path such as v4l2:/dev/video0");
    CHECK(sourceProblem("file:")->find("file needs a path") != std::string::npos);
    CHECK(sourceProblem("test:")->find("test needs a pattern") != std::string::npos);
    CHECK(sourceProblem("pipeline:  ")->find("GStreamer launch description") != std::string::npos);
}
