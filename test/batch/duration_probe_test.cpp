// batch/duration_probe.h: the length of a video before it is decoded, asked of
// GstDiscoverer, on videos generated at test time.

#include <cmath>
#include <fstream>

#include <catch2/catch.hpp>

#include "batch/duration_probe.h"
#include "test/support/temp_dir.h"
#include "test/support/video_fixture.h"

using dmsd::batch::probeDurationSeconds;
using dmsd::test::TempDir;
using dmsd::test::VideoContainer;
using dmsd::test::VideoSpec;

TEST_CASE("the probe tells a video's length from its container", "[batch][probe]") {
    TempDir dir("dmsd-probe");
    for (const VideoContainer container : {VideoContainer::Mp4H264, VideoContainer::AviMjpeg}) {
        VideoSpec spec;
        spec.width = 160;
        spec.height = 120;
        spec.container = container;
        spec.segments = {{3.0, {120, 120, 120}, true}, {1.5, {30, 160, 30}, false}};
        const auto path = dir / (container == VideoContainer::AviMjpeg ? "trip.avi" : "trip.mp4");
        dmsd::test::generateVideo(path, spec);
        const std::optional<double> duration = probeDurationSeconds(path.string());
        INFO(path);
        REQUIRE(duration);
        CHECK(std::abs(*duration - 4.5) < 0.15);
    }
}

TEST_CASE("the probe says nothing of what is not a readable video", "[batch][probe]") {
    TempDir dir("dmsd-probe");
    const auto text = dir / "notes.mp4";
    std::ofstream(text) << "not a video\n";
    CHECK_FALSE(probeDurationSeconds(text.string()));
    dmsd::test::writeCorruptVideo(dir / "garbage.mp4", dmsd::test::Corruption::Garbage);
    CHECK_FALSE(probeDurationSeconds((dir / "garbage.mp4").string()));
    CHECK_FALSE(probeDurationSeconds((dir / "missing.mp4").string()));
}
