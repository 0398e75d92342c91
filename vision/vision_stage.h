#pragma once

/// \file
/// `VisionStage`: the per-frame driver vision on its own thread. The frame
/// path offers it every captured frame by reference (`offer()`: never
/// blocks, never allocates); a one-slot, latest-wins mailbox hands the
/// newest to the vision thread, so a busy vision thread skips frames (and
/// counts them) instead of slowing capture. Each analysed frame goes
/// through `FaceAnalyzer` and `SignalTracker` and its `VisionResult` to the
/// callback, on the vision thread. A failure (model unreadable, a dlib or
/// OpenCV exception) puts the stage in the `Failed` state with a reason;
/// it never ends the process.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "pipeline/frame.h"
#include "vision/evidence_frames.h"
#include "vision/face_analyzer.h"
#include "vision/settings.h"
#include "vision/signals.h"

namespace dmsd {

/// Where the vision stage is: loading the model, analysing, failed (and
/// why), or stopped.
enum class VisionState { Starting, Running, Failed, Stopped };

/// "starting", "running", "failed", "stopped" (for GetStatus and the journal).
std::string_view visionStateName(VisionState state);

/// One analysed frame.
struct VisionResult {
    std::uint64_t frameId = 0;
    double ptsS = 0.0;       ///< the frame's video time (the signals' time base)
    SteadyTime capturedAt{}; ///< when the frame left the capture
    DriverSignals signals;
    FaceObservation face; ///< box and landmarks (for overlays and snapshots)
    AnalysisCost cost;
    /// The frame as JPEG when it is notable (an onset, a condition turning
    /// on: vision/evidence_frames.h), for the snapshots of vision's alerts.
    std::optional<EvidenceFrame> evidence;
};

/// Counters and state, for GetStatus.
struct VisionStats {
    VisionState state = VisionState::Stopped;
    std::string failure;             ///< why, when Failed
    std::uint64_t framesOffered = 0; ///< frames given to offer()
    std::uint64_t framesProcessed = 0;
    std::uint64_t framesSkipped = 0;     ///< replaced in the mailbox before the thread took them
    std::uint64_t framesNotSelected = 0; ///< passed over by `every_nth_frame`
    double cpuPerFrameMs = 0.0;          ///< mean thread CPU per analysed frame, last 64 frames
    std::optional<DriverSignals> latest; ///< the signals of the last analysed frame
};

class VisionStage {
public:
    /// Called on the vision thread for each analysed frame, in frame order.
    using ResultCallback = std::function<void(const VisionResult&)>;
    /// Called on the vision thread when the state changes (with the failure reason).
    using StateCallback = std::function<void(VisionState, const std::string& reason)>;

    VisionStage(VisionSettings settings, ResultCallback onResult, StateCallback onState = {});
    ~VisionStage(); ///< stop()
    VisionStage(const VisionStage&) = delete;
    VisionStage& operator=(const VisionStage&) = delete;

    /// Starts the thread; it loads the model, then takes frames. Not blocking.
    void start();
    /// Asks the thread to end after the frame in hand and joins it.
    void stop();

    /// Offers a frame from the frame path's thread: takes a reference, never
    /// waits and never allocates (an atomic exchange into the one slot). A
    /// frame still in the slot is replaced and counted as skipped. Frames
    /// not selected by `every_nth_frame`, and every frame unless the state
    /// is Starting or Running, are not taken.
    void offer(const FramePtr& frame);

    VisionStats stats() const;
    VisionState state() const { return state_.load(std::memory_order_acquire); }

private:
    void run();
    void setState(VisionState state, std::string reason);

    const VisionSettings settings_;
    ResultCallback onResult_;
    StateCallback onState_;

    std::atomic<std::shared_ptr<const Frame>> slot_;
    std::atomic<std::uint32_t> wake_{0}; ///< bumped by offer() and stop(); waited on
    std::atomic<bool> stopping_{false};
    std::atomic<VisionState> state_{VisionState::Stopped};
    std::atomic<std::uint64_t> offered_{0};
    std::atomic<std::uint64_t> skipped_{0};
    std::atomic<std::uint64_t> notSelected_{0};

    mutable std::mutex statsMutex_; ///< guards the fields below (vision thread writes)
    std::string failure_;
    std::uint64_t processed_ = 0;
    double cpuPerFrameMs_ = 0.0;
    std::optional<DriverSignals> latest_;

    std::array<std::int64_t, 64> cpuUs_{}; ///< the last analysed frames' CPU (vision thread only)

    std::thread thread_;
};

} // namespace dmsd
