// Frame path benchmark (prints figures; not a pass/fail test).
//
//   bench_pipeline [--iterations N] [--quality Q] [--live-seconds S]
//
// 1. consumer cost per frame: ring push/pop of a captured GstSample, mapping
//    its planes, motion score + content hash (MotionSampler::push);
// 2. JPEG encode per frame (JpegEncoder path) next to a raw
//    tjCompressFromYUVPlanes call on the same frame, same flags, same run;
// 3. whole-process CPU per captured frame with a live 30 fps videotestsrc
//    through capture, sampling and encoding (getrusage over the run).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <sys/resource.h>
#include <thread>
#include <time.h>
#include <vector>

#include <fmt/format.h>
#include <turbojpeg.h>

#include "pipeline/capture.h"
#include "pipeline/frame_path.h"
#include "pipeline/frame_ring.h"
#include "pipeline/jpeg_encoder.h"
#include "pipeline/motion_sampler.h"
#include "pipeline/tj_handle.h"

using namespace dmsd;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWidth = 640;
constexpr int kHeight = 480;

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

double threadCpuSeconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

double cpuSeconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    auto s = [](const timeval& t) {
        return double(t.tv_sec) + double(t.tv_usec) / 1e6;
    };
    return s(usage.ru_utime) + s(usage.ru_stime);
}

// A frame that looks like a camera image to the JPEG coder: smooth shading,
// some edges and mild noise, with a shape moving with \a phase.
std::vector<std::uint8_t> sceneI420(int phase) {
    std::vector<std::uint8_t> data(Frame::i420Size(kWidth, kHeight));
    std::mt19937 random(static_cast<unsigned>(phase) + 1);
    std::uniform_int_distribution<int> noise(-4, 4);
    for (int y = 0; y < kHeight; ++y) {
        for (int x = 0; x < kWidth; ++x) {
            int value = 40 + (x * 120) / kWidth + (y * 60) / kHeight;
            const int cx = 200 + phase * 7;
            const int dx = x - cx;
            const int dy = y - 240;
            if (dx * dx + dy * dy < 90 * 90) {
                value = 190 + ((x / 8 + y / 8) % 2) * 30; // a textured "face"
            }
            data[static_cast<std::size_t>(y * kWidth + x)] =
                static_cast<std::uint8_t>(std::clamp(value + noise(random), 16, 235));
        }
    }
    const std::size_t luma = static_cast<std::size_t>(kWidth * kHeight);
    for (std::size_t i = luma; i < data.size(); ++i) {
        data[i] = static_cast<std::uint8_t>(118 + (i % 640) / 64);
    }
    return data;
}

GstSample* sampleOf(const std::vector<std::uint8_t>& i420, GstCaps* caps) {
    GstBuffer* buffer = gst_buffer_new_allocate(nullptr, i420.size(), nullptr);
    gst_buffer_fill(buffer, 0, i420.data(), i420.size());
    GstSample* sample = gst_sample_new(buffer, caps, nullptr, nullptr);
    gst_buffer_unref(buffer);
    return sample;
}

void benchConsumer(int iterations) {
    GstCapsPtr caps = GstCapsPtr::adopt(
        gst_caps_from_string("video/x-raw,format=I420,width=640,height=480,framerate=15/1"));
    GstVideoInfo info;
    gst_video_info_from_caps(&info, caps.get());
    std::vector<GstSamplePtr> samples;
    for (int i = 0; i < 30; ++i) {
        samples.push_back(GstSamplePtr::adopt(sampleOf(sceneI420(i), caps.get())));
    }
    FrameRing ring(8);
    SamplingSettings sampling; // 2 s interval, 4 frames: the contract defaults
    MotionSampler sampler(sampling);
    std::size_t outputs = 0;
    const double cpuStart = threadCpuSeconds();
    const auto start = Clock::now();
    for (int i = 0; i < iterations; ++i) {
        CapturedSample captured;
        captured.sample = GstSamplePtr::ref(samples[static_cast<std::size_t>(i) % 30].get());
        captured.frameId = static_cast<std::uint64_t>(i) + 1;
        captured.ptsS = i / 15.0;
        captured.durationS = 1.0 / 15.0;
        captured.capturedAt = Clock::now();
        ring.tryPush(std::move(captured));
        auto popped = ring.tryPop();
        FrameMeta meta{popped->frameId, popped->ptsS, popped->durationS, popped->capturedAt};
        FramePtr frame = Frame::fromSample(std::move(popped->sample), info, meta);
        outputs += sampler.push(std::move(frame)).size();
    }
    const double us =
        std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iterations;
    const double cpuUs = (threadCpuSeconds() - cpuStart) * 1e6 / iterations;
    fmt::print("consumer per frame (ring push+pop, map, motion score+hash): {:.2f} us CPU, "
               "{:.2f} us wall ({} frames, {} windows closed)\n",
               cpuUs, us, iterations, outputs);
}

void benchJpeg(int iterations, int quality) {
    std::vector<std::uint8_t> i420 = sceneI420(3);
    FrameMeta meta;
    FramePtr frame = Frame::fromI420(i420, kWidth, kHeight, meta);
    const I420View& view = frame->planes();

    TjHandle raw = TjHandle::compressor();
    std::vector<unsigned char> out(tjBufSize(kWidth, kHeight, TJSAMP_420));
    const unsigned char* planes[3] = {view.data[0], view.data[1], view.data[2]};
    const int strides[3] = {view.stride[0], view.stride[1], view.stride[2]};
    unsigned long rawSize = 0;
    auto rawCall = [&] {
        unsigned char* buffer = out.data();
        rawSize = out.size();
        tjCompressFromYUVPlanes(raw.get(), planes, kWidth, strides, kHeight, TJSAMP_420, &buffer,
                                &rawSize, quality, kJpegFlags | TJFLAG_NOREALLOC);
    };
    std::size_t ourSize = 0;
    auto ourCall = [&] {
        ourSize = encodeI420(view, quality)->bytes->size();
    };
    // Warm up both (handles, buffers, caches), then alternate blocks so that
    // frequency changes hit both sides alike.
    for (int i = 0; i < 10; ++i) {
        rawCall();
        ourCall();
    }
    double rawUs = 0;
    double ourUs = 0;
    double rawCpu = 0;
    double ourCpu = 0;
    const int block = 10;
    for (int done = 0; done < iterations; done += block) {
        const double c0 = threadCpuSeconds();
        auto t0 = Clock::now();
        for (int i = 0; i < block; ++i) {
            rawCall();
        }
        const double c1 = threadCpuSeconds();
        auto t1 = Clock::now();
        for (int i = 0; i < block; ++i) {
            ourCall();
        }
        const double c2 = threadCpuSeconds();
        auto t2 = Clock::now();
        rawCpu += c1 - c0;
        ourCpu += c2 - c1;
        rawUs += std::chrono::duration<double, std::micro>(t1 - t0).count();
        ourUs += std::chrono::duration<double, std::micro>(t2 - t1).count();
    }
    const int n = (iterations + block - 1) / block * block;
    fmt::print("JPEG raw tjCompressFromYUVPlanes: {:.1f} us CPU/frame, {:.1f} us wall ({} bytes)\n",
               rawCpu * 1e6 / n, rawUs / n, rawSize);
    fmt::print("JPEG dmsd encodeI420:             {:.1f} us CPU/frame, {:.1f} us wall ({} bytes); "
               "ratio CPU {:.3f}, wall {:.3f} (target <= 1.2)\n",
               ourCpu * 1e6 / n, ourUs / n, ourSize, ourCpu / rawCpu, ourUs / rawUs);

    // The cache: a frame asked for again costs a lookup.
    JpegEncoder encoder(EncodeSettings{quality, ImageLayout::Separate, 0});
    encoder.encode(*frame);
    auto t0 = Clock::now();
    for (int i = 0; i < 1000; ++i) {
        encoder.encode(*frame);
    }
    fmt::print("JPEG cache hit:                   {:.3f} us\n",
               std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / 1000);

    // encode.max_side 336 (the default): the frame scaled down (OpenCV area
    // interpolation), then encoded at 336x252.
    std::size_t scaledSize = 0;
    for (int i = 0; i < 10; ++i) {
        scaledSize = encodeI420Scaled(view, quality, 336, nullptr)->bytes->size();
    }
    const double s0 = threadCpuSeconds();
    const auto w0 = Clock::now();
    for (int i = 0; i < n; ++i) {
        scaledSize = encodeI420Scaled(view, quality, 336, nullptr)->bytes->size();
    }
    fmt::print("JPEG encode.max_side 336:         {:.1f} us CPU/frame, {:.1f} us wall ({} bytes); "
               "ratio CPU {:.3f} to the full-size encode\n",
               (threadCpuSeconds() - s0) * 1e6 / n,
               std::chrono::duration<double, std::micro>(Clock::now() - w0).count() / n, scaledSize,
               (threadCpuSeconds() - s0) / ourCpu);
}

// CPU per frame of the source alone (source ! I420 caps ! fakesink), to tell
// the synthetic source's own rendering from dmsd's frame path.
double sourceOnlyCpuMsPerFrame(const std::string& description, double seconds) {
    GError* error = nullptr;
    GstElementPtr pipeline = GstElementPtr::adoptFloating(gst_parse_launch(
        (description + " ! videoconvert ! videoscale ! videorate ! "
                       "video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! "
                       "fakesink name=sink signal-handoffs=false")
            .c_str(),
        &error));
    if (error != nullptr) {
        g_error_free(error);
        return -1;
    }
    gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
    gst_element_get_state(pipeline.get(), nullptr, nullptr, 5 * GST_SECOND);
    GstElementPtr sink = GstElementPtr::adopt(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
    auto rendered = [&sink] {
        guint64 count = 0;
        GstStructure* stats = nullptr;
        g_object_get(sink.get(), "stats", &stats, nullptr);
        if (stats != nullptr) {
            gst_structure_get_uint64(stats, "rendered", &count);
            gst_structure_free(stats);
        }
        return count;
    };
    const double cpu0 = cpuSeconds();
    const guint64 frames0 = rendered();
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    const double cpu = cpuSeconds() - cpu0;
    const guint64 frames = rendered() - frames0;
    gst_element_set_state(pipeline.get(), GST_STATE_NULL);
    return frames > 0 ? cpu * 1000.0 / double(frames) : -1;
}

void benchLive(const std::string& source, const std::string& gstDescription, double seconds,
               int quality) {
    CaptureSettings settings;
    settings.source = source;
    settings.width = kWidth;
    settings.height = kHeight;
    settings.fps = 30;
    Capture capture(settings, CaptureOptions{});
    if (auto error = capture.start()) {
        fmt::print("live: cannot start: {}\n", error->message);
        return;
    }
    std::size_t sequences = 0;
    FramePath path(capture, SamplingSettings{}, EncodeSettings{quality, ImageLayout::Separate, 0},
                   {[&](EncodedSequencePtr) { ++sequences; }, {}, {}});
    // Let the pipeline settle before measuring.
    const auto settle = Clock::now() + std::chrono::milliseconds(500);
    while (Clock::now() < settle) {
        path.pumpOnce(std::chrono::milliseconds(100));
    }
    const auto framesBefore = capture.counters().framesCaptured;
    const double cpuBefore = cpuSeconds();
    const auto start = Clock::now();
    const auto end =
        start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
    while (Clock::now() < end) {
        path.pumpOnce(std::chrono::milliseconds(100));
    }
    const double cpu = cpuSeconds() - cpuBefore;
    const double wall = std::chrono::duration<double>(Clock::now() - start).count();
    const auto counters = capture.counters();
    const auto frames = counters.framesCaptured - framesBefore;
    const auto skipped = path.counters().windowsSkipped;
    capture.stop();
    const double perFrame = frames > 0 ? cpu * 1000.0 / double(frames) : 0.0;
    const double sourceOnly = sourceOnlyCpuMsPerFrame(gstDescription, std::min(seconds, 5.0));
    fmt::print("live {} 640x480@30: {} frames in {:.1f} s ({:.1f} fps), {} sequences encoded, "
               "{} windows skipped, {} dropped\n",
               source, frames, wall, double(frames) / wall, sequences, skipped,
               counters.framesDropped);
    fmt::print("  whole-process CPU per captured frame: {:.3f} ms (target <= 1.5 ms), {:.1f}% of "
               "one core\n",
               perFrame, 100.0 * cpu / wall);
    fmt::print("  the source alone (same caps, fakesink): {:.3f} ms/frame; dmsd's frame path "
               "on top: {:.3f} ms/frame\n",
               sourceOnly, perFrame - sourceOnly);
}

} // namespace

int main(int argc, char** argv) {
    int iterations = 2000;
    int quality = 85;
    double liveSeconds = 10.0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string arg = argv[i];
        if (arg == "--iterations") {
            iterations = std::max(10, std::atoi(argv[i + 1]));
        } else if (arg == "--quality") {
            quality = std::atoi(argv[i + 1]);
        } else if (arg == "--live-seconds") {
            liveSeconds = std::atof(argv[i + 1]);
        }
    }
    if (std::string failure = ensureGstreamer(); !failure.empty()) {
        fmt::print(stderr, "bench_pipeline: {}\n", failure);
        return 1;
    }
    fmt::print("bench_pipeline: CPU {}, {} cores online, build {}\n", cpuModel(),
               std::thread::hardware_concurrency(), DMSD_BUILD_TYPE);
    fmt::print("conditions: {}x{} I420, JPEG quality {} (TJFLAG_FASTDCT, 4:2:0), {} iterations, "
               "live run {} s\n",
               kWidth, kHeight, quality, iterations, liveSeconds);
    benchConsumer(iterations);
    benchJpeg(std::max(iterations / 4, 20), quality);
    if (liveSeconds > 0) {
        benchLive("test:ball", "videotestsrc is-live=true pattern=ball", liveSeconds, quality);
        const std::string moving = "videotestsrc is-live=true pattern=smpte horizontal-speed=8";
        benchLive("pipeline:" + moving, moving, liveSeconds, quality);
    }
    return 0;
}
