#pragma once

/// \file
/// GStreamer capture into an appsink, feeding the frame ring
/// (docs/interfaces.md section 2, `capture`).
///
/// Sources (`capture.source`):
///  - `v4l2:DEVICE`   v4l2src device=DEVICE ! decodebin (raw and MJPEG cameras)
///  - `file:PATH`     filesrc location=PATH ! decodebin
///  - `test:PATTERN`  videotestsrc pattern=PATTERN (ball, smpte, snow, ...)
///  - `pipeline:DESC` a gst-launch description for anything else (e.g. a
///    Jetson's `nvarguscamerasrc ! nvvidconv ! video/x-raw`). Rule: the
///    description must leave exactly one unlinked source pad, which must be
///    an always pad producing system-memory `video/x-raw` (anything
///    videoconvert accepts). End a `decodebin` with `! videoconvert`. A
///    trailing caps filter (`... ! video/x-raw`) is accepted: an `identity`
///    element is appended so that gst-launch can link it.
///
/// Every source is followed by videoconvert ! videoscale ! videorate !
/// video/x-raw,format=I420,width=W,height=H,framerate=FPS/1 ! appsink.
///
/// Modes:
///  - Live (`dmsd run`): sources are paced in real time (`file:` and
///    `pipeline:` with appsink sync=true, as a camera would). The streaming
///    thread never blocks: when the ring is full the frame is dropped and
///    counted. A source that errors, ends (EOS) or stops delivering frames
///    (frame-timeout watchdog) is torn down and rebuilt with exponential
///    backoff; the camera state goes Streaming -> Lost -> Retrying -> Streaming.
///  - Offline (`dmsd analyze`): a file is decoded as fast as the consumer
///    takes frames (back-pressure, no frame lost); EOS is the normal end and
///    an error ends the capture with finalError().

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "pipeline/frame.h"
#include "pipeline/frame_ring.h"
#include "pipeline/gst_handles.h"
#include "pipeline/settings.h"

namespace dmsd {

enum class CaptureMode { Live, Offline };

/// Camera state as the daemon reports it (CAMERA_FAULT while not Streaming).
enum class CameraState {
    Stopped,   ///< not started, or stopped
    Starting,  ///< pipeline playing, no frame yet
    Streaming, ///< frames arriving
    Lost,      ///< failed, waiting for the next attempt (backoff)
    Retrying,  ///< rebuilding the pipeline
    Ended,     ///< offline: end of the file
    Failed,    ///< offline: error; see finalError()
};
const char* toString(CameraState state);

/// A failure with a message naming the source, and GStreamer's detail.
struct CaptureError {
    std::string message; ///< for people: names the source and what to do
    std::string detail;  ///< GStreamer's debug text, element names
};

/// Something the supervisor saw; delivered on the supervisor thread.
struct CaptureEvent {
    enum class Kind {
        Streaming,    ///< first frame of a (re)started pipeline
        Warning,      ///< bus WARNING (capture goes on)
        Error,        ///< bus ERROR or a failed (re)start
        EndOfStream,  ///< bus EOS
        FrameTimeout, ///< the watchdog saw no frame for frameTimeout
        Restarting,   ///< a new attempt after backoff
    };
    Kind kind = Kind::Error;
    CameraState state = CameraState::Stopped; ///< the state after the event
    std::string message;
    std::string detail;
    std::uint64_t restarts = 0;
};
const char* toString(CaptureEvent::Kind kind);

struct CaptureOptions {
    CaptureMode mode = CaptureMode::Live;
    std::size_t ringCapacity = 8;
    /// Live: a streaming source silent this long is treated as lost.
    Millis frameTimeout{3000};
    /// Live: the first frame of a (re)started pipeline may take this long.
    Millis firstFrameTimeout{10000};
    /// Offline: the pipeline must preroll within this.
    Millis startTimeout{10000};
    Millis backoffInitial{500};
    Millis backoffMax{10000};
    /// A pipeline that streamed this long resets the backoff to its initial value.
    Millis stableAfter{5000};
    /// Called on the supervisor thread; must not block for long.
    std::function<void(const CaptureEvent&)> onEvent;
    /// Whether Capture logs each event itself. The daemon turns it off: it
    /// writes one journal entry per event (notify/journal.h), with its own fields.
    bool logEvents = true;
};

struct CaptureCounters {
    std::uint64_t framesCaptured = 0;  ///< frames that reached the appsink
    std::uint64_t framesDropped = 0;   ///< live: ring full
    std::uint64_t framesDelivered = 0; ///< frames handed to the consumer
    std::uint64_t restarts = 0;        ///< pipeline rebuild attempts
};

/// A parsed `capture.source`.
struct SourceSpec {
    enum class Kind { V4l2, File, Test, Pipeline };
    Kind kind = Kind::Test;
    std::string value; ///< device, path, pattern or description
};
/// Splits `KIND:VALUE`; an error names the value and the accepted kinds.
std::optional<CaptureError> parseSource(std::string_view source, SourceSpec& out);

/// What FrameSource::nextFrame() returns.
struct PullResult {
    enum class Status {
        Frame,   ///< `frame` is set
        Timeout, ///< nothing within the timeout; call again
        Ended,   ///< no more frames (offline end, failure, or stopped)
    };
    Status status = Status::Timeout;
    FramePtr frame;
};

/// The consumer's view of a frame producer (Capture, or a fake in tests).
class FrameSource {
public:
    virtual ~FrameSource() = default;
    /// Next frame in presentation order; waits at most \a timeout.
    virtual PullResult nextFrame(std::chrono::milliseconds timeout) = 0;
};

/// One capture session: a GStreamer pipeline plus its supervisor thread.
class Capture final : public FrameSource {
public:
    Capture(CaptureSettings settings, CaptureOptions options);
    Capture(const Capture&) = delete;
    Capture& operator=(const Capture&) = delete;
    ~Capture() override;

    /// Builds the pipeline without running it (config validation: bad
    /// source kinds, unknown test patterns, missing files or plugins, gst-launch
    /// syntax errors).
    static std::optional<CaptureError> validate(const CaptureSettings& settings);

    /// Builds and starts the pipeline and its supervisor. Errors in the
    /// settings (see validate()) are returned in both modes; a source that
    /// fails to start is an error offline, and Lost-then-retried live.
    std::optional<CaptureError> start();
    /// Stops capture; safe to call twice, and while another thread waits in nextFrame().
    void stop();

    /// Consumer thread only.
    PullResult nextFrame(std::chrono::milliseconds timeout) override;

    CameraState state() const { return state_.load(); }
    /// When the last frame reached the appsink (watchdog stamp); epoch if none yet.
    SteadyTime lastFrameAt() const;
    CaptureCounters counters() const;
    /// Offline: why capture ended early; empty after a clean EOS.
    std::optional<CaptureError> finalError() const;
    const CaptureSettings& settings() const { return settings_; }
    const CaptureOptions& options() const { return options_; }

private:
    struct Session;

    std::optional<CaptureError> buildSession(Session& session) const;
    std::optional<CaptureError> playSession(Session& session);
    void teardownSession();
    void supervise();
    void handleBusMessage(GstMessage* message);
    void loseSource(CaptureEvent::Kind kind, std::string message, std::string detail = {});
    void emit(CaptureEvent::Kind kind, std::string message, std::string detail = {});
    bool waitStop(std::chrono::steady_clock::duration duration);
    void setState(CameraState state);
    static GstFlowReturn onNewSample(GstElement* appsink, gpointer self);
    GstFlowReturn pushSample(GstSamplePtr sample);

    CaptureSettings settings_;
    CaptureOptions options_;
    SourceSpec spec_;
    FrameRing ring_;

    std::unique_ptr<Session> session_; ///< start(), then the supervisor, then stop()
    std::thread supervisor_;
    std::mutex stopMutex_;
    std::condition_variable stopCv_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> started_{false};

    std::atomic<CameraState> state_{CameraState::Stopped};
    std::atomic<std::int64_t> lastFrameNs_{0};
    std::atomic<std::uint64_t> framesCaptured_{0};
    std::atomic<std::uint64_t> framesDropped_{0};
    std::atomic<std::uint64_t> framesDelivered_{0};
    std::atomic<std::uint64_t> restarts_{0};

    mutable std::mutex errorMutex_;
    std::optional<CaptureError> finalError_;

    // Streaming thread only (sessions run one after another).
    std::uint64_t nextFrameId_ = 1;
    bool sessionHasFrame_ = false;
    bool anySessionHadFrame_ = false;
    double ptsOffsetS_ = 0.0;
    double nextPtsS_ = 0.0;

    // Consumer thread only.
    GstCapsPtr cachedCaps_;
    GstVideoInfo videoInfo_{};
};

} // namespace dmsd
