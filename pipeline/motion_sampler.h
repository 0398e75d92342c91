#pragma once

/// \file
/// Motion-adaptive sampling (docs/interfaces.md section 2, `sampling`): cuts the
/// frame stream into windows of `interval` video time and picks, per window,
/// the frames worth asking about, or skips a window whose scene has not
/// changed since the last analysed frame. Pure logic on frame views: no
/// threads, no clock, no GStreamer calls.

#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include "pipeline/frame.h"
#include "pipeline/settings.h"

namespace dmsd {

/// Luma plane subsampled on a regular grid (every `step`-th pixel of every
/// `step`-th row): what the motion score and the content hash look at.
struct LumaThumb {
    std::vector<std::uint8_t> pixels;
    int width = 0;
    int height = 0;
};

/// Fills \a out with the subsampled Y plane of \a frame (reuses its storage).
void subsampleLuma(const I420View& frame, int step, LumaThumb& out);
/// Mean absolute difference of two thumbs, 0 (same) .. 1 (black vs white).
/// Thumbs of different sizes are maximally different (1.0).
double meanAbsDiff(const LumaThumb& a, const LumaThumb& b);
/// 64-bit FNV-1a-style hash of the thumb, word-wise (content key for caches).
std::uint64_t contentHash(const LumaThumb& thumb);

/// A frame chosen for a sequence, with its reference kept alive.
struct SampledFrame {
    FramePtr frame;
    SampledFrameInfo info;
};

/// A window to analyse.
struct SampledSequence {
    std::uint64_t sequenceId = 0; ///< 1, 2, ... per sampler
    double tStartS = 0.0;         ///< pts of the window's first frame
    double tEndS = 0.0;           ///< pts of its last frame plus one frame duration
    /// First and last of the window always; in between the frames that differ
    /// most from their predecessor; in presentation order.
    std::vector<SampledFrame> frames;
    /// Largest difference of any frame of the window to the last analysed
    /// frame (1.0 when nothing was analysed yet).
    double motion = 0.0;
    /// True when the window was static but max_static_skip forced it.
    bool forcedByMaxStaticSkip = false;
};

/// A static window that was not analysed: the daemon carries the last answers forward.
struct SkippedWindow {
    double tStartS = 0.0;
    double tEndS = 0.0;
    double motion = 0.0;              ///< largest difference to the last analysed frame
    std::size_t frameCount = 0;       ///< frames in the window
    double sinceAnalysedS = 0.0;      ///< window end minus the last analysed sequence's end
    std::uint64_t lastSequenceId = 0; ///< the sequence whose answers still stand
};

using SamplerOutput = std::variant<SampledSequence, SkippedWindow>;

struct MotionOptions {
    int step = 4; ///< grid step of the luma subsampling (4: 160x120 samples at 640x480)
};

/// Decides per window of video time. Feed frames in presentation order.
class MotionSampler {
public:
    explicit MotionSampler(const SamplingSettings& settings, MotionOptions options = {});

    /// Takes the next frame; returns the windows it closed (usually none, one
    /// at the end of each interval).
    std::vector<SamplerOutput> push(FramePtr frame);
    /// End of stream: closes the partial window if it holds at least 2 frames.
    std::vector<SamplerOutput> flush();
    /// Closes the window in progress now, as an analysed sequence whatever its
    /// motion (an event worth asking about happened in it), if it holds at
    /// least 2 frames; the next frame starts a new window. Nothing otherwise.
    std::vector<SamplerOutput> closeNow();
    /// The length of windows from now on, the one in progress included (it
    /// closes at the first frame past its start + \a interval); at least 1 ms.
    void setInterval(std::chrono::milliseconds interval);
    /// Forgets the window in progress and the last analysed frame (e.g. after
    /// the camera was restarted: the next window is analysed).
    void reset();

    std::uint64_t framesSeen() const { return framesSeen_; }
    std::uint64_t sequencesEmitted() const { return sequencesEmitted_; }
    std::uint64_t windowsSkipped() const { return windowsSkipped_; }
    const SamplingSettings& settings() const { return settings_; }

private:
    void addToWindow(SampledFrame&& sampled);
    std::optional<SamplerOutput> closeWindow(bool analyse = false);

    SamplingSettings settings_;
    MotionOptions options_;
    double intervalS_;
    double maxStaticSkipS_;
    std::size_t middleSlots_;

    // Window in progress.
    bool windowOpen_ = false;
    double windowStartS_ = 0.0;
    std::size_t windowFrames_ = 0;
    double windowMaxRefDiff_ = 0.0;
    double lastDurationS_ = 0.0;
    std::optional<SampledFrame> first_;
    std::optional<SampledFrame> last_;
    std::vector<SampledFrame> middles_;

    // History.
    LumaThumb thumb_;     ///< scratch for the frame being pushed
    LumaThumb prevThumb_; ///< the previous frame
    bool havePrev_ = false;
    double prevPtsS_ = 0.0;
    std::optional<LumaThumb> refThumb_; ///< the last analysed frame
    std::optional<double> lastAnalysedEndS_;
    std::uint64_t lastSequenceId_ = 0;

    std::uint64_t framesSeen_ = 0;
    std::uint64_t sequencesEmitted_ = 0;
    std::uint64_t windowsSkipped_ = 0;
};

} // namespace dmsd
