#include "vision/vision_stage.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <pthread.h>
#include <utility>
#include <variant>

#include "base/log.h"

namespace dmsd {

std::string_view visionStateName(VisionState state) {
    switch (state) {
    case VisionState::Starting:
        return "starting";
    case VisionState::Running:
        return "running";
    case VisionState::Failed:
        return "failed";
    case VisionState::Stopped:
        return "stopped";
    }
    return "?";
}

VisionStage::VisionStage(VisionSettings settings, ResultCallback onResult, StateCallback onState)
    : settings_(std::move(settings)), onResult_(std::move(onResult)), onState_(std::move(onState)) {
}

VisionStage::~VisionStage() {
    stop();
}

void VisionStage::start() {
    if (thread_.joinable()) {
        return;
    }
    stopping_.store(false, std::memory_order_release);
    {
        const std::lock_guard lock(statsMutex_);
        failure_.clear();
    }
    state_.store(VisionState::Starting, std::memory_order_release);
    thread_ = std::thread([this] { run(); });
}

void VisionStage::stop() {
    if (!thread_.joinable()) {
        return;
    }
    stopping_.store(true, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_one();
    thread_.join();
    slot_.store(nullptr);
}

void VisionStage::offer(const FramePtr& frame) {
    const std::uint64_t n = offered_.fetch_add(1, std::memory_order_relaxed);
    const VisionState now = state_.load(std::memory_order_acquire);
    if (now != VisionState::Starting && now != VisionState::Running) {
        return;
    }
    if (n % static_cast<std::uint64_t>(settings_.everyNthFrame) != 0) {
        notSelected_.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    // A reference count and a swap: the frame path never waits for vision.
    // The frame displaced, if any, was never analysed.
    if (slot_.exchange(frame, std::memory_order_acq_rel)) {
        skipped_.fetch_add(1, std::memory_order_relaxed);
    }
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_one();
}

VisionStats VisionStage::stats() const {
    VisionStats out;
    out.state = state_.load(std::memory_order_acquire);
    out.framesOffered = offered_.load(std::memory_order_relaxed);
    out.framesSkipped = skipped_.load(std::memory_order_relaxed);
    out.framesNotSelected = notSelected_.load(std::memory_order_relaxed);
    const std::lock_guard lock(statsMutex_);
    out.failure = failure_;
    out.framesProcessed = processed_;
    out.cpuPerFrameMs = cpuPerFrameMs_;
    out.latest = latest_;
    return out;
}

void VisionStage::setState(VisionState state, std::string reason) {
    {
        const std::lock_guard lock(statsMutex_);
        failure_ = state == VisionState::Failed ? reason : std::string();
    }
    state_.store(state, std::memory_order_release);
    if (state == VisionState::Failed) {
        log::error("vision: {}; vision is off until the next start", reason);
    }
    if (onState_) {
        onState_(state, reason);
    }
}

void VisionStage::run() {
    // Named for `top -H`, perf and /proc/PID/task: the stage's CPU is told
    // apart from the loop's and GStreamer's (bench_vision_run reads it).
    ::pthread_setname_np(::pthread_self(), "dmsd-vision");
    // The model is loaded here, not in start(): loading takes seconds
    // and the caller (the daemon's loop) must not wait for it.
    auto opened = FaceAnalyzer::open(settings_);
    if (auto* error = std::get_if<std::string>(&opened)) {
        setState(VisionState::Failed, *error);
        return;
    }
    std::unique_ptr<FaceAnalyzer> analyzer = std::get<0>(std::move(opened));
    SignalTracker signals(settings_.signals);
    setState(VisionState::Running, {});

    VisionResult result;
    std::size_t cpuCount = 0;
    std::uint64_t processed = 0;
    while (!stopping_.load(std::memory_order_acquire)) {
        const std::uint32_t seen = wake_.load(std::memory_order_acquire);
        FramePtr frame = slot_.exchange(nullptr, std::memory_order_acq_rel);
        if (!frame) {
            // Sleeps until offer() or stop() bumps the counter past `seen`.
            wake_.wait(seen, std::memory_order_acquire);
            continue;
        }
        try {
            const FaceAnalysis analysis = analyzer->analyze(lumaOf(*frame));
            const std::int64_t before = threadCpuUs();
            std::optional<DriverSignals> previous;
            if (processed > 0) {
                previous = result.signals;
            }
            result.signals = signals.update(analysis.face, frame->ptsS());
            const std::int64_t signalsUs = threadCpuUs() - before;
            // Encoded here, off the loop and only a few times an episode
            // (not counted in the per-frame CPU: it is not per frame).
            result.evidence = notableFrame(*frame, previous, result.signals, settings_.signals);
            result.frameId = frame->id();
            result.ptsS = frame->ptsS();
            result.capturedAt = frame->meta().capturedAt;
            result.face = analysis.face;
            result.cost = analysis.cost;

            cpuUs_[cpuCount % cpuUs_.size()] = analysis.cost.totalUs() + signalsUs;
            ++cpuCount;
            ++processed;
            const std::size_t n = std::min(cpuCount, cpuUs_.size());
            const std::int64_t sum = std::accumulate(
                cpuUs_.begin(), cpuUs_.begin() + static_cast<std::ptrdiff_t>(n), std::int64_t{0});
            {
                const std::lock_guard lock(statsMutex_);
                ++processed_;
                cpuPerFrameMs_ = static_cast<double>(sum) / static_cast<double>(n) / 1000.0;
                latest_ = result.signals;
            }
        } catch (const std::exception& e) {
            setState(VisionState::Failed, std::string("analysis failed: ") + e.what());
            return;
        }
        // Outside the try: an exception of the consumer is the consumer's,
        // not a vision failure to be reported as one.
        frame.reset();
        if (onResult_) {
            onResult_(result);
        }
    }
    setState(VisionState::Stopped, {});
}

} // namespace dmsd
