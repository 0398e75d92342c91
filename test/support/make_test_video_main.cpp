// dmsd-make-test-video: writes a synthetic driver video (coloured segments,
// optionally with a moving square) for demos and manual tests.

#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "test/support/video_fixture.h"

namespace po = boost::program_options;
using namespace dmsd::test;

namespace {

// SECONDS:RRGGBB[:moving]
VideoSegment parseSegment(const std::string& text) {
    VideoSegment segment;
    const auto first = text.find(':');
    if (first == std::string::npos) {
        throw std::invalid_argument("segment '" + text + "' must be SECONDS:RRGGBB[:moving]");
    }
    segment.seconds = std::stod(text.substr(0, first));
    const auto second = text.find(':', first + 1);
    const std::string colour = text.substr(
        first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
    if (colour.size() != 6 || segment.seconds <= 0) {
        throw std::invalid_argument("segment '" + text + "' must be SECONDS:RRGGBB[:moving]");
    }
    const unsigned long rgb = std::stoul(colour, nullptr, 16);
    segment.colour = {static_cast<std::uint8_t>(rgb >> 16), static_cast<std::uint8_t>(rgb >> 8),
                      static_cast<std::uint8_t>(rgb)};
    if (second != std::string::npos) {
        if (text.substr(second + 1) != "moving") {
            throw std::invalid_argument("segment '" + text + "': the third part must be 'moving'");
        }
        segment.moving = true;
    }
    return segment;
}

} // namespace

int main(int argc, char** argv) {
    po::options_description options(
        "usage: dmsd-make-test-video OUTPUT.{mp4,avi} [options]\n"
        "Writes a synthetic video: MP4/H.264 or, for .avi, MJPEG.\n"
        "Without --segment: a 20 s demo (grey, red moving, green, blue moving, grey).\n"
        "options");
    std::vector<std::string> segments;
    std::string corrupt;
    VideoSpec spec;
    options.add_options()("help,h", "this help")(
        "width", po::value(&spec.width)->default_value(320), "frame width (even)")(
        "height", po::value(&spec.height)->default_value(240),
        "frame height (even)")("fps", po::value(&spec.fps)->default_value(10), "frames per second")(
        "segment", po::value(&segments), "SECONDS:RRGGBB[:moving], repeatable, in order")(
        "corrupt", po::value(&corrupt), "write a broken file instead: garbage | truncated")(
        "output", po::value<std::string>(), "output file");
    po::positional_options_description positional;
    positional.add("output", 1);
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(),
                  vm);
        po::notify(vm);
        if (vm.count("help") != 0U) {
            fmt::print("{}\n", fmt::streamed(options));
            return 0;
        }
        if (vm.count("output") == 0U) {
            throw std::invalid_argument("the output file is missing");
        }
        const std::string output = vm["output"].as<std::string>();
        spec.container = containerFor(output);
        spec.segments.clear();
        for (const std::string& text : segments) {
            spec.segments.push_back(parseSegment(text));
        }
        if (spec.segments.empty()) {
            spec.segments = {{4.0, {128, 128, 128}, false},
                             {4.0, {200, 40, 40}, true},
                             {4.0, {40, 170, 60}, false},
                             {4.0, {40, 60, 200}, true},
                             {4.0, {128, 128, 128}, false}};
        }
        if (corrupt == "garbage") {
            writeCorruptVideo(output, Corruption::Garbage, spec);
        } else if (corrupt == "truncated") {
            writeCorruptVideo(output, Corruption::Truncated, spec);
        } else if (!corrupt.empty()) {
            throw std::invalid_argument("--corrupt must be garbage or truncated");
        } else {
            generateVideo(output, spec);
        }
        fmt::print(stderr, "dmsd-make-test-video: wrote {} ({} frames, {}x{} @ {} fps)\n", output,
                   frameCount(spec), spec.width, spec.height, spec.fps);
        return 0;
    } catch (const std::exception& e) {
        fmt::print(stderr, "dmsd-make-test-video: {}\n{}\n", e.what(), fmt::streamed(options));
        return 2;
    }
}
