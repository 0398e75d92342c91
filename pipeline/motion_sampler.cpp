#include "pipeline/motion_sampler.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace dmsd {

namespace {
// Frames that start within this much of a window's end belong to the next one
// (guards against pts rounding: 2.0 s at 15 fps is 29.999999...).
constexpr double kTimeEpsilonS = 1e-6;
} // namespace

void subsampleLuma(const I420View& frame, int step, LumaThumb& out) {
    step = std::max(step, 1);
    out.width = (frame.width + step - 1) / step;
    out.height = (frame.height + step - 1) / step;
    out.pixels.resize(static_cast<std::size_t>(out.width) * static_cast<std::size_t>(out.height));
    std::uint8_t* dst = out.pixels.data();
    for (int y = 0; y < frame.height; y += step) {
        const std::uint8_t* row = frame.row(0, y);
        for (int x = 0; x < frame.width; x += step) {
            *dst++ = row[x];
        }
    }
}

double meanAbsDiff(const LumaThumb& a, const LumaThumb& b) {
    if (a.width != b.width || a.height != b.height || a.pixels.size() != b.pixels.size()) {
        return 1.0;
    }
    if (a.pixels.empty()) {
        return 0.0;
    }
    // Written as a plain loop over bytes so GCC vectorises it (psadbw-like).
    std::uint64_t sum = 0;
    const std::uint8_t* pa = a.pixels.data();
    const std::uint8_t* pb = b.pixels.data();
    const std::size_t n = a.pixels.size();
    for (std::size_t i = 0; i < n; ++i) {
        sum += static_cast<std::uint64_t>(std::abs(int(pa[i]) - int(pb[i])));
    }
    return static_cast<double>(sum) / (static_cast<double>(n) * 255.0);
}

std::uint64_t contentHash(const LumaThumb& thumb) {
    // FNV-1a over 8-byte words (then the tail bytes): a cache key, not a
    // cryptographic hash; word steps make it ~8x cheaper than byte steps.
    std::uint64_t hash = 1469598103934665603ULL;
    auto mix = [&hash](std::uint64_t value) {
        hash ^= value;
        hash *= 1099511628211ULL;
        hash ^= hash >> 29;
    };
    mix(static_cast<std::uint64_t>(thumb.width));
    mix(static_cast<std::uint64_t>(thumb.height));
    const std::uint8_t* data = thumb.pixels.data();
    const std::size_t size = thumb.pixels.size();
    std::size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        std::uint64_t word;
        std::memcpy(&word, data + i, sizeof word);
        mix(word);
    }
    for (; i < size; ++i) {
        mix(data[i]);
    }
    return hash;
}

MotionSampler::MotionSampler(const SamplingSettings& settings, MotionOptions options)
    : settings_(settings), options_(options),
      intervalS_(std::max(0.001, std::chrono::duration<double>(settings.interval).count())),
      maxStaticSkipS_(std::chrono::duration<double>(settings.maxStaticSkip).count()),
      middleSlots_(static_cast<std::size_t>(std::max(settings.framesPerSequence, 2) - 2)) {
}

void MotionSampler::reset() {
    windowOpen_ = false;
    windowFrames_ = 0;
    windowMaxRefDiff_ = 0.0;
    first_.reset();
    last_.reset();
    middles_.clear();
    havePrev_ = false;
    refThumb_.reset();
    lastAnalysedEndS_.reset();
}

std::vector<SamplerOutput> MotionSampler::push(FramePtr frame) {
    std::vector<SamplerOutput> out;
    if (!frame) {
        return out;
    }
    ++framesSeen_;
    const FrameMeta& meta = frame->meta();
    subsampleLuma(frame->planes(), options_.step, thumb_);

    SampledFrame sampled;
    sampled.info.frameId = meta.id;
    sampled.info.ptsSeconds = meta.ptsS;
    sampled.info.contentHash = contentHash(thumb_);
    sampled.info.capturedAt = meta.capturedAt;
    sampled.info.motion = havePrev_ ? meanAbsDiff(prevThumb_, thumb_) : 0.0;
    sampled.frame = std::move(frame);

    double durationS = meta.durationS;
    if (durationS <= 0.0 && havePrev_ && meta.ptsS > prevPtsS_) {
        durationS = meta.ptsS - prevPtsS_;
    }

    // A frame past the window's end (or time going backwards after a source
    // restart) closes the window in progress before starting the next one.
    if (windowOpen_ &&
        (meta.ptsS >= windowStartS_ + intervalS_ - kTimeEpsilonS || meta.ptsS < windowStartS_)) {
        if (auto closed = closeWindow()) {
            out.push_back(std::move(*closed));
        }
    }
    // After the close: the reference may just have become that window's last frame.
    const double refDiff = refThumb_ ? meanAbsDiff(*refThumb_, thumb_) : 1.0;
    if (!windowOpen_) {
        windowOpen_ = true;
        windowStartS_ = meta.ptsS;
    }
    windowMaxRefDiff_ = std::max(windowMaxRefDiff_, refDiff);
    lastDurationS_ = durationS;
    addToWindow(std::move(sampled));

    std::swap(prevThumb_, thumb_);
    havePrev_ = true;
    prevPtsS_ = meta.ptsS;

    // Close as soon as the window's last frame is in, not when the next frame
    // arrives: one frame period less latency.
    if (durationS > 0.0 && meta.ptsS + durationS >= windowStartS_ + intervalS_ - kTimeEpsilonS) {
        if (auto closed = closeWindow()) {
            out.push_back(std::move(*closed));
        }
    }
    return out;
}

std::vector<SamplerOutput> MotionSampler::flush() {
    std::vector<SamplerOutput> out;
    if (windowOpen_ && windowFrames_ >= 2) {
        if (auto closed = closeWindow()) {
            out.push_back(std::move(*closed));
        }
    }
    windowOpen_ = false;
    windowFrames_ = 0;
    first_.reset();
    last_.reset();
    middles_.clear();
    return out;
}

void MotionSampler::addToWindow(SampledFrame&& sampled) {
    ++windowFrames_;
    if (!first_) {
        first_ = std::move(sampled);
        return;
    }
    if (last_ && middleSlots_ > 0) {
        // The previous last frame becomes a candidate for the middle slots,
        // which keep the frames of most change (earliest wins ties).
        if (middles_.size() < middleSlots_) {
            middles_.push_back(std::move(*last_));
        } else {
            auto weakest = std::min_element(middles_.begin(), middles_.end(),
                                            [](const SampledFrame& a, const SampledFrame& b) {
                                                return a.info.motion < b.info.motion;
                                            });
            if (last_->info.motion > weakest->info.motion) {
                *weakest = std::move(*last_);
            }
        }
    }
    last_ = std::move(sampled);
}

void MotionSampler::setInterval(std::chrono::milliseconds interval) {
    intervalS_ = std::max(0.001, std::chrono::duration<double>(interval).count());
}

std::vector<SamplerOutput> MotionSampler::closeNow() {
    std::vector<SamplerOutput> out;
    if (windowOpen_ && windowFrames_ >= 2) {
        if (auto closed = closeWindow(true)) {
            out.push_back(std::move(*closed));
        }
    }
    return out;
}

std::optional<SamplerOutput> MotionSampler::closeWindow(bool analyse) {
    if (!windowOpen_ || windowFrames_ == 0 || !first_) {
        windowOpen_ = false;
        return std::nullopt;
    }
    const SampledFrame& lastFrame = last_ ? *last_ : *first_;
    const double tStart = first_->info.ptsSeconds;
    const double tEnd = lastFrame.info.ptsSeconds + std::max(lastDurationS_, 0.0);
    const bool isStatic = refThumb_.has_value() && windowMaxRefDiff_ <= settings_.motionThreshold;
    const bool young = lastAnalysedEndS_.has_value() &&
                       (tEnd - *lastAnalysedEndS_) < maxStaticSkipS_ - kTimeEpsilonS;

    std::optional<SamplerOutput> result;
    if (isStatic && young && !analyse) {
        SkippedWindow skipped;
        skipped.tStartS = tStart;
        skipped.tEndS = tEnd;
        skipped.motion = windowMaxRefDiff_;
        skipped.frameCount = windowFrames_;
        skipped.sinceAnalysedS = tEnd - *lastAnalysedEndS_;
        skipped.lastSequenceId = lastSequenceId_;
        ++windowsSkipped_;
        result = skipped;
    } else {
        SampledSequence sequence;
        sequence.sequenceId = ++lastSequenceId_;
        sequence.tStartS = tStart;
        sequence.tEndS = tEnd;
        sequence.motion = std::min(windowMaxRefDiff_, 1.0);
        sequence.forcedByMaxStaticSkip = isStatic;
        sequence.frames.reserve(2 + middles_.size());
        sequence.frames.push_back(std::move(*first_));
        std::sort(middles_.begin(), middles_.end(), [](const auto& a, const auto& b) {
            return a.info.ptsSeconds < b.info.ptsSeconds;
        });
        for (auto& middle : middles_) {
            sequence.frames.push_back(std::move(middle));
        }
        if (last_) {
            sequence.frames.push_back(std::move(*last_));
        }
        // The window's last frame is the newest pushed frame, whose thumb is
        // prevThumb_ whenever a window closes.
        refThumb_ = prevThumb_;
        lastAnalysedEndS_ = tEnd;
        ++sequencesEmitted_;
        result = std::move(sequence);
    }
    windowOpen_ = false;
    windowFrames_ = 0;
    windowMaxRefDiff_ = 0.0;
    first_.reset();
    last_.reset();
    middles_.clear();
    return result;
}

} // namespace dmsd
