// Vision benchmark (prints figures; not a pass/fail test).
//
//   bench_vision [--frames N] [--downscale W] [--interval K]
//
// Thread CPU time (CLOCK_THREAD_CPUTIME_ID) per step of FaceAnalyzer::analyze
// on a real face (opencv-doc's webcam capture, in a 640x480 frame, moving a
// few pixels from frame to frame): the downscale, a detection frame, a
// tracking frame, the 68 landmarks, solvePnP, and the SignalTracker update;
// then the mean per frame with the detection interval, the cost of a frame
// without a face (every such frame runs the detector), the CPU time of
// loading the landmark model and the process's peak RSS.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <opencv2/imgproc.hpp>
#include <string>
#include <sys/resource.h>
#include <unistd.h>
#include <variant>
#include <vector>

#include <fmt/format.h>

#include "face_images.h"
#include "vision/face_analyzer.h"
#include "vision/signals.h"

using namespace dmsd;

namespace {

std::string cpuModel() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            return line.substr(line.find(':') + 2);
        }
    }
    return "unknown";
}

std::string loadAverage() {
    std::ifstream in("/proc/loadavg");
    std::string a, b, c;
    in >> a >> b >> c;
    return a + " " + b + " " + c;
}

struct Series {
    std::vector<double> us;
    void add(std::int64_t v) { us.push_back(static_cast<double>(v)); }
    double mean() const {
        double s = 0;
        for (double v : us) {
            s += v;
        }
        return us.empty() ? 0.0 : s / static_cast<double>(us.size());
    }
    double pct(double p) {
        if (us.empty()) {
            return 0.0;
        }
        std::sort(us.begin(), us.end());
        return us[std::min(us.size() - 1,
                           static_cast<std::size_t>(p * static_cast<double>(us.size())))];
    }
    std::string line(const char* name) {
        return fmt::format("  {:<28} mean {:8.3f} ms   p50 {:8.3f} ms   p95 {:8.3f} ms   (n={})",
                           name, mean() / 1000, pct(0.5) / 1000, pct(0.95) / 1000, us.size());
    }
};

} // namespace

int main(int argc, char** argv) {
    int frames = 300;
    VisionSettings settings;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--frames") == 0) {
            frames = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--downscale") == 0) {
            settings.downscaleWidth = std::atoi(argv[i + 1]);
        } else if (std::strcmp(argv[i], "--interval") == 0) {
            settings.detectInterval = std::atoi(argv[i + 1]);
        }
    }
    const auto face = test::loadGray(test::kWebcamFace);
    const auto seat = test::loadGray(test::kHome);
    if (!face || !seat) {
        std::fprintf(stderr, "bench_vision: needs opencv-doc's images (%s, %s)\n",
                     test::kWebcamFace, test::kHome);
        return 2;
    }
    const std::int64_t loadStart = threadCpuUs();
    auto opened = FaceAnalyzer::open(settings);
    const std::int64_t loadUs = threadCpuUs() - loadStart;
    if (auto* error = std::get_if<std::string>(&opened)) {
        std::fprintf(stderr, "bench_vision: %s\n", error->c_str());
        return 2;
    }
    auto& analyzer = std::get<0>(opened);

    // The face drifts by up to 8 px in a small circle, as a driver's head does.
    const cv::Mat base = test::driverFrame(*face);
    std::vector<cv::Mat> moving;
    for (int i = 0; i < 32; ++i) {
        const double a = i * 2 * 3.14159265 / 32;
        cv::Mat out;
        cv::warpAffine(base, out, cv::Matx23d(1, 0, 8 * std::cos(a), 0, 1, 8 * std::sin(a)),
                       base.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
        moving.push_back(out);
    }
    const cv::Mat empty = test::driverFrame(*seat);

    // Warm-up (caches).
    for (int i = 0; i < 20; ++i) {
        analyzer->analyze(test::lumaView(moving[static_cast<std::size_t>(i) % moving.size()]));
    }

    Series track, detectAround, detect, landmarks, landmarksDetected, landmarksTracked, pose,
        signalsUs, perFrame, noFace;
    SignalTracker signals(settings.signals);
    int present = 0;
    for (int i = 0; i < frames; ++i) {
        const FaceAnalysis a =
            analyzer->analyze(test::lumaView(moving[static_cast<std::size_t>(i) % moving.size()]));
        const std::int64_t before = threadCpuUs();
        signals.update(a.face, i / 15.0);
        const std::int64_t s = threadCpuUs() - before;
        present += a.face.present ? 1 : 0;
        if (a.cost.detectArea == DetectArea::None) {
            track.add(a.cost.trackUs);
        }
        if (a.cost.detectArea == DetectArea::AroundFace) {
            detectAround.add(a.cost.detectUs);
        } else if (a.cost.detectArea == DetectArea::Full) {
            detect.add(a.cost.detectUs);
        }
        if (a.face.present) {
            (a.face.detected ? landmarksDetected : landmarksTracked).add(a.cost.landmarksUs);
            landmarks.add(a.cost.landmarksUs);
            pose.add(a.cost.poseUs);
        }
        signalsUs.add(s);
        perFrame.add(a.cost.totalUs() + s);
    }
    analyzer->reset();
    for (int i = 0; i < std::max(20, frames / 5); ++i) {
        const FaceAnalysis a = analyzer->analyze(test::lumaView(empty));
        noFace.add(a.cost.totalUs());
    }

    std::printf("bench_vision: %s, %ld cores online, load average %s, build %s\n",
                cpuModel().c_str(), sysconf(_SC_NPROCESSORS_ONLN), loadAverage().c_str(),
                DMSD_BUILD_TYPE);
    std::printf("  frame 640x480 (opencv-doc webcam face, moving), downscale_width %d, "
                "detect_interval %d, %d frames, face found in %d\n",
                settings.downscaleWidth, settings.detectInterval, frames, present);
    std::printf("  thread CPU time per step:\n");
    std::printf("%s\n", track.line("tracking (phase correlation)").c_str());
    std::printf("%s\n", detectAround.line("detection around the face").c_str());
    std::printf("%s\n", detect.line("detection, whole picture").c_str());
    std::printf("%s\n", landmarks.line("landmarks (68 points)").c_str());
    std::printf("%s\n", landmarksDetected.line("  on detection frames").c_str());
    std::printf("%s\n", landmarksTracked.line("  on tracked frames").c_str());
    std::printf("%s\n", pose.line("pose (solvePnP)").c_str());
    std::printf("%s\n", signalsUs.line("signals (SignalTracker)").c_str());
    std::printf("%s\n", perFrame.line("per frame, all steps").c_str());
    std::printf("%s\n", noFace.line("per frame, empty seat").c_str());
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    std::printf("  model load %.2f s of CPU; peak RSS of this process %.1f MB\n", loadUs / 1e6,
                static_cast<double>(usage.ru_maxrss) / 1024.0);
    return 0;
}
