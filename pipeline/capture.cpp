#include "pipeline/capture.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <unistd.h>

#include <fmt/format.h>
#include <gst/app/gstappsink.h>

#include "base/input_file.h"
#include "base/log.h"

namespace dmsd {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t toNs(SteadyTime t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// decodebin exposes its pads once it has found the streams: link the first
// video pad to the converter, ignore the others (audio).
void onDecodedPad(GstElement*, GstPad* pad, gpointer converter) {
    GstCapsPtr caps = GstCapsPtr::adopt(gst_pad_get_current_caps(pad));
    if (!caps) {
        caps = GstCapsPtr::adopt(gst_pad_query_caps(pad, nullptr));
    }
    if (!caps || gst_caps_get_size(caps.get()) == 0) {
        return;
    }
    const gchar* name = gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
    if (name == nullptr || !g_str_has_prefix(name, "video/")) {
        return;
    }
    GstPadPtr sinkPad =
        GstPadPtr::adopt(gst_element_get_static_pad(GST_ELEMENT(converter), "sink"));
    if (sinkPad && !gst_pad_is_linked(sinkPad.get())) {
        gst_pad_link(pad, sinkPad.get());
    }
}

// gst-launch accepts caps only between two elements; the usual camera
// description ends with them ("nvarguscamerasrc ! nvvidconv ! video/x-raw"),
// so a trailing caps filter gets an identity element to link from.
std::string completeDescription(const std::string& description) {
    const auto bang = description.rfind('!');
    std::string last = description.substr(bang == std::string::npos ? 0 : bang + 1);
    last.erase(0, last.find_first_not_of(" \t"));
    const auto slash = last.find('/');
    const bool isCaps =
        slash != std::string::npos && slash > 0 && last.find_first_of(" =") > slash &&
        std::all_of(last.begin(), last.begin() + static_cast<long>(slash),
                    [](char c) { return std::isalpha(static_cast<unsigned char>(c)); });
    return isCaps ? description + " ! identity" : description;
}

std::string sourceText(const CaptureSettings& settings) {
    return fmt::format("capture.source '{}'", settings.source);
}

} // namespace

const char* toString(CameraState state) {
    switch (state) {
    case CameraState::Stopped:
        return "stopped";
    case CameraState::Starting:
        return "starting";
    case CameraState::Streaming:
        return "streaming";
    case CameraState::Lost:
        return "lost";
    case CameraState::Retrying:
        return "retrying";
    case CameraState::Ended:
        return "ended";
    case CameraState::Failed:
        return "failed";
    }
    return "unknown";
}

const char* toString(CaptureEvent::Kind kind) {
    switch (kind) {
    case CaptureEvent::Kind::Streaming:
        return "streaming";
    case CaptureEvent::Kind::Warning:
        return "warning";
    case CaptureEvent::Kind::Error:
        return "error";
    case CaptureEvent::Kind::EndOfStream:
        return "end-of-stream";
    case CaptureEvent::Kind::FrameTimeout:
        return "frame-timeout";
    case CaptureEvent::Kind::Restarting:
        return "restarting";
    }
    return "unknown";
}

std::optional<CaptureError> parseSource(std::string_view source, SourceSpec& out) {
    const auto colon = source.find(':');
    const std::string_view kind = source.substr(0, colon);
    const std::string_view value =
        colon == std::string_view::npos ? std::string_view{} : source.substr(colon + 1);
    if (colon != std::string_view::npos && !value.empty()) {
        if (kind == "v4l2") {
            out = {SourceSpec::Kind::V4l2, std::string(value)};
            return std::nullopt;
        }
        if (kind == "file") {
            out = {SourceSpec::Kind::File, std::string(value)};
            return std::nullopt;
        }
        if (kind == "test") {
            out = {SourceSpec::Kind::Test, std::string(value)};
            return std::nullopt;
        }
        if (kind == "pipeline") {
            out = {SourceSpec::Kind::Pipeline, std::string(value)};
            return std::nullopt;
        }
    }
    return CaptureError{
        fmt::format("capture.source '{}' is not valid: use v4l2:DEVICE, file:PATH, test:PATTERN "
                    "or pipeline:GST-LAUNCH-DESCRIPTION",
                    source),
        {}};
}

struct Capture::Session {
    GstElementPtr pipeline;
    GstBusPtr bus;
    GstElement* appsink = nullptr; ///< owned by the pipeline
    Clock::time_point startedAt{};
    Clock::time_point streamingSince{};
    std::uint64_t framesAtStart = 0;
    bool streaming = false;

    ~Session() {
        if (pipeline) {
            // Joins the streaming threads: no callback runs after this.
            gst_element_set_state(pipeline.get(), GST_STATE_NULL);
        }
    }
};

Capture::Capture(CaptureSettings settings, CaptureOptions options)
    : settings_(std::move(settings)), options_(std::move(options)), ring_(options_.ringCapacity) {
    gst_video_info_init(&videoInfo_);
}

Capture::~Capture() {
    stop();
}

std::optional<CaptureError> Capture::validate(const CaptureSettings& settings) {
    Capture capture(settings, CaptureOptions{});
    if (auto error = parseSource(settings.source, capture.spec_)) {
        return error;
    }
    if (std::string failure = ensureGstreamer(); !failure.empty()) {
        return CaptureError{"GStreamer cannot be initialised: " + failure, {}};
    }
    Session session;
    return capture.buildSession(session);
}

std::optional<CaptureError> Capture::buildSession(Session& session) const {
    const std::string culprit = sourceText(settings_);
    if (settings_.width <= 0 || settings_.height <= 0 || settings_.fps <= 0) {
        return CaptureError{fmt::format("capture.width/height/fps must be positive (got {}x{}@{})",
                                        settings_.width, settings_.height, settings_.fps),
                            {}};
    }
    auto make = [](const char* factory, std::optional<CaptureError>& error) {
        GstElementPtr element =
            GstElementPtr::adoptFloating(gst_element_factory_make(factory, nullptr));
        if (!element && !error) {
            error = CaptureError{
                fmt::format("the GStreamer element '{}' is missing; install the GStreamer "
                            "plugins (scripts/install-deps)",
                            factory),
                {}};
        }
        return element;
    };
    std::optional<CaptureError> error;
    const bool live = options_.mode == CaptureMode::Live;

    session.pipeline = GstElementPtr::adoptFloating(gst_pipeline_new("dmsd-capture"));
    GstElementPtr convert = make("videoconvert", error);
    GstElementPtr scale = make("videoscale", error);
    GstElementPtr rate = make("videorate", error);
    GstElementPtr filter = make("capsfilter", error);
    GstElementPtr sink = make("appsink", error);
    if (error) {
        return error;
    }

    // The source part: its last element's src pad links to `convert`, or a
    // decodebin links it when the stream is known.
    std::vector<GstElementPtr> sourceChain;
    GstElementPtr decoder;
    bool syncToClock = false;
    switch (spec_.kind) {
    case SourceSpec::Kind::File: {
        std::error_code ec;
        if (!std::filesystem::exists(spec_.value, ec)) {
            return CaptureError{fmt::format("{}: no such file; check the path", culprit), {}};
        }
        if (std::filesystem::is_directory(spec_.value, ec) ||
            ::access(spec_.value.c_str(), R_OK) != 0) {
            return CaptureError{fmt::format("{}: not a readable file; check the path and its "
                                            "permissions",
                                            culprit),
                                {}};
        }
        // filesrc would block in a read of a FIFO (and the open of one, with
        // no writer), deaf to stop(): only regular files and devices are read.
        if (auto problem = inputFileProblem(spec_.value, InputKind::FileOrDevice)) {
            return CaptureError{fmt::format("{}: {}", culprit, *problem), {}};
        }
        GstElementPtr src = make("filesrc", error);
        decoder = make("decodebin", error);
        if (error) {
            return error;
        }
        g_object_set(src.get(), "location", spec_.value.c_str(), nullptr);
        sourceChain.push_back(std::move(src));
        syncToClock = live;
        break;
    }
    case SourceSpec::Kind::V4l2: {
        GstElementPtr src = make("v4l2src", error);
        decoder = make("decodebin", error);
        if (error) {
            return error;
        }
        g_object_set(src.get(), "device", spec_.value.c_str(), nullptr);
        sourceChain.push_back(std::move(src));
        break;
    }
    case SourceSpec::Kind::Test: {
        GstElementPtr src = make("videotestsrc", error);
        if (error) {
            return error;
        }
        GParamSpec* property =
            g_object_class_find_property(G_OBJECT_GET_CLASS(src.get()), "pattern");
        GEnumClass* patterns =
            property != nullptr ? G_PARAM_SPEC_ENUM(property)->enum_class : nullptr;
        const GEnumValue* pattern =
            patterns != nullptr ? g_enum_get_value_by_nick(patterns, spec_.value.c_str()) : nullptr;
        if (pattern == nullptr) {
            std::string known;
            for (guint i = 0; patterns != nullptr && i < patterns->n_values; ++i) {
                known += (i == 0 ? "" : ", ");
                known += patterns->values[i].value_nick;
            }
            return CaptureError{
                fmt::format("{}: unknown test pattern; use one of: {}", culprit, known), {}};
        }
        g_object_set(src.get(), "pattern", pattern->value, "is-live", live ? TRUE : FALSE, nullptr);
        sourceChain.push_back(std::move(src));
        break;
    }
    case SourceSpec::Kind::Pipeline: {
        GError* rawError = nullptr;
        const std::string description = completeDescription(spec_.value);
        GstElement* bin = gst_parse_bin_from_description_full(
            description.c_str(), TRUE, nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &rawError);
        GErrorPtr parseError(rawError);
        GstElementPtr binPtr = GstElementPtr::adoptFloating(bin);
        if (parseError || !binPtr) {
            return CaptureError{fmt::format("{}: the GStreamer description cannot be built: {}",
                                            culprit,
                                            parseError ? parseError->message : "unknown error"),
                                {}};
        }
        GstPadPtr srcPad = GstPadPtr::adopt(gst_element_get_static_pad(binPtr.get(), "src"));
        if (!srcPad) {
            return CaptureError{
                fmt::format("{}: the description must leave exactly one unlinked source pad "
                            "producing video/x-raw (for example end it with '! videoconvert'); "
                            "it leaves none",
                            culprit),
                {}};
        }
        sourceChain.push_back(std::move(binPtr));
        syncToClock = live;
        break;
    }
    }

    const std::string capsText =
        fmt::format("video/x-raw,format=I420,width={},height={},framerate={}/1,"
                    "pixel-aspect-ratio=1/1",
                    settings_.width, settings_.height, settings_.fps);
    GstCapsPtr caps = GstCapsPtr::adopt(gst_caps_from_string(capsText.c_str()));
    g_object_set(filter.get(), "caps", caps.get(), nullptr);
    // Live: our callback never blocks, so appsink's own queue stays short;
    // offline: one buffer at a time, the ring provides the back-pressure.
    g_object_set(sink.get(), "sync", syncToClock ? TRUE : FALSE, "max-buffers", live ? 2u : 1u,
                 "drop", live ? TRUE : FALSE, "enable-last-sample", FALSE, "emit-signals", FALSE,
                 nullptr);
    GstAppSinkCallbacks callbacks{};
    callbacks.new_sample = [](GstAppSink* appsink, gpointer self) {
        return Capture::onNewSample(GST_ELEMENT(appsink), self);
    };
    gst_app_sink_set_callbacks(GST_APP_SINK(sink.get()), &callbacks, const_cast<Capture*>(this),
                               nullptr);

    GstBin* bin = GST_BIN(session.pipeline.get());
    // gst_bin_add takes its own reference (ours are already sunk); ours are
    // dropped when this function returns.
    for (const auto& element : sourceChain) {
        gst_bin_add(bin, element.get());
    }
    if (decoder) {
        gst_bin_add(bin, decoder.get());
    }
    for (GstElement* element : {convert.get(), scale.get(), rate.get(), filter.get(), sink.get()}) {
        gst_bin_add(bin, element);
    }
    for (std::size_t i = 1; i < sourceChain.size(); ++i) {
        gst_element_link(sourceChain[i - 1].get(), sourceChain[i].get());
    }
    bool linked = gst_element_link_many(convert.get(), scale.get(), rate.get(), filter.get(),
                                        sink.get(), nullptr);
    if (decoder) {
        linked = linked && gst_element_link(sourceChain.back().get(), decoder.get());
        g_signal_connect(decoder.get(), "pad-added", G_CALLBACK(onDecodedPad), convert.get());
    } else {
        linked = linked && gst_element_link(sourceChain.back().get(), convert.get());
    }
    if (!linked) {
        return CaptureError{
            fmt::format("{}: cannot link the source to videoconvert; the source must produce "
                        "video/x-raw in system memory",
                        culprit),
            {}};
    }
    session.appsink = sink.get();
    session.bus = GstBusPtr::adopt(gst_element_get_bus(session.pipeline.get()));
    return std::nullopt;
}

std::optional<CaptureError> Capture::playSession(Session& session) {
    session.startedAt = Clock::now();
    session.framesAtStart = framesCaptured_.load();
    sessionHasFrame_ = false;
    const GstStateChangeReturn ret =
        gst_element_set_state(session.pipeline.get(), GST_STATE_PLAYING);
    GstStateChangeReturn result = ret;
    if (ret == GST_STATE_CHANGE_ASYNC && options_.mode == CaptureMode::Offline) {
        const auto timeout =
            std::chrono::duration_cast<std::chrono::nanoseconds>(options_.startTimeout);
        result = gst_element_get_state(session.pipeline.get(), nullptr, nullptr,
                                       static_cast<GstClockTime>(timeout.count()));
        if (result == GST_STATE_CHANGE_ASYNC) {
            return CaptureError{fmt::format("{}: the pipeline did not start within {} ms",
                                            sourceText(settings_), options_.startTimeout.count()),
                                {}};
        }
    }
    if (result == GST_STATE_CHANGE_FAILURE) {
        GstMessagePtr message =
            GstMessagePtr::adopt(gst_bus_pop_filtered(session.bus.get(), GST_MESSAGE_ERROR));
        const GstMessageText text = parseErrorMessage(message.get());
        return CaptureError{
            fmt::format("{}: cannot start: {}", sourceText(settings_),
                        text.message.empty() ? "state change failed" : text.message),
            text.detail};
    }
    return std::nullopt;
}

std::optional<CaptureError> Capture::start() {
    if (started_.exchange(true)) {
        return CaptureError{"capture already started", {}};
    }
    if (auto error = parseSource(settings_.source, spec_)) {
        return error;
    }
    if (std::string failure = ensureGstreamer(); !failure.empty()) {
        return CaptureError{"GStreamer cannot be initialised: " + failure, {}};
    }
    auto session = std::make_unique<Session>();
    if (auto error = buildSession(*session)) {
        if (options_.mode == CaptureMode::Live && spec_.kind == SourceSpec::Kind::File) {
            // A file missing or unreadable at start (a mount still coming up, a
            // recording being copied in) is retried with the camera back-off.
            session.reset();
            setState(CameraState::Lost);
            emit(CaptureEvent::Kind::Error, error->message, error->detail);
            supervisor_ = std::thread([this] { supervise(); });
            return std::nullopt;
        }
        return error;
    }
    setState(CameraState::Starting);
    if (auto error = playSession(*session)) {
        if (options_.mode == CaptureMode::Offline) {
            session.reset();
            setState(CameraState::Failed);
            std::lock_guard lock(errorMutex_);
            finalError_ = error;
            return error;
        }
        // Live: a camera that is not there yet is a state, not a fatal error.
        session.reset();
        setState(CameraState::Lost);
        emit(CaptureEvent::Kind::Error, error->message, error->detail);
        supervisor_ = std::thread([this] { supervise(); });
        return std::nullopt;
    }
    session_ = std::move(session);
    supervisor_ = std::thread([this] { supervise(); });
    return std::nullopt;
}

void Capture::stop() {
    {
        std::lock_guard lock(stopMutex_);
        stopping_.store(true);
    }
    stopCv_.notify_all();
    ring_.wakeProducer();
    if (supervisor_.joinable()) {
        supervisor_.join();
    }
    teardownSession();
    const CameraState current = state_.load();
    if (current != CameraState::Ended && current != CameraState::Failed) {
        setState(CameraState::Stopped);
    }
    ring_.wakeConsumer();
}

void Capture::teardownSession() {
    session_.reset();
}

bool Capture::waitStop(std::chrono::steady_clock::duration duration) {
    std::unique_lock lock(stopMutex_);
    return stopCv_.wait_for(lock, duration, [this] { return stopping_.load(); });
}

void Capture::setState(CameraState state) {
    state_.store(state);
}

SteadyTime Capture::lastFrameAt() const {
    return SteadyTime(std::chrono::nanoseconds(lastFrameNs_.load()));
}

CaptureCounters Capture::counters() const {
    CaptureCounters c;
    c.framesCaptured = framesCaptured_.load();
    c.framesDropped = framesDropped_.load();
    c.framesDelivered = framesDelivered_.load();
    c.restarts = restarts_.load();
    return c;
}

std::optional<CaptureError> Capture::finalError() const {
    std::lock_guard lock(errorMutex_);
    return finalError_;
}

void Capture::emit(CaptureEvent::Kind kind, std::string message, std::string detail) {
    CaptureEvent event;
    event.kind = kind;
    event.state = state_.load();
    event.message = std::move(message);
    event.detail = std::move(detail);
    event.restarts = restarts_.load();
    if (options_.logEvents) {
        const auto priority =
            kind == CaptureEvent::Kind::Streaming || kind == CaptureEvent::Kind::Restarting
                ? log::Priority::Info
            : kind == CaptureEvent::Kind::EndOfStream && options_.mode == CaptureMode::Offline
                ? log::Priority::Debug
                : log::Priority::Warning;
        log::write(priority, fmt::format("camera {}: {}", toString(kind), event.message), {},
                   {{"DMS_CAMERA", settings_.source},
                    {"DMS_CAMERA_STATE", toString(event.state)},
                    {"DMS_DETAIL", event.detail}});
    }
    if (options_.onEvent) {
        options_.onEvent(event);
    }
}

void Capture::loseSource(CaptureEvent::Kind kind, std::string message, std::string detail) {
    teardownSession();
    setState(CameraState::Lost);
    emit(kind, std::move(message), std::move(detail));
}

void Capture::handleBusMessage(GstMessage* message) {
    const bool offline = options_.mode == CaptureMode::Offline;
    switch (GST_MESSAGE_TYPE(message)) {
    case GST_MESSAGE_WARNING: {
        const GstMessageText text = parseErrorMessage(message);
        emit(CaptureEvent::Kind::Warning,
             fmt::format("{}: {} ({})", sourceText(settings_), text.message, text.element),
             text.detail);
        break;
    }
    case GST_MESSAGE_ERROR: {
        const GstMessageText text = parseErrorMessage(message);
        std::string what =
            fmt::format("{}: {} ({})", sourceText(settings_), text.message, text.element);
        if (offline) {
            {
                std::lock_guard lock(errorMutex_);
                finalError_ = CaptureError{what, text.detail};
            }
            teardownSession();
            setState(CameraState::Failed);
            ring_.wakeConsumer();
            emit(CaptureEvent::Kind::Error, std::move(what), text.detail);
        } else {
            loseSource(CaptureEvent::Kind::Error, std::move(what), text.detail);
        }
        break;
    }
    case GST_MESSAGE_EOS:
        if (offline) {
            teardownSession();
            setState(CameraState::Ended);
            ring_.wakeConsumer();
            emit(CaptureEvent::Kind::EndOfStream,
                 fmt::format("{}: end of stream", sourceText(settings_)));
        } else {
            // A camera does not end: treat it as lost (a file in run mode loops).
            loseSource(CaptureEvent::Kind::EndOfStream,
                       fmt::format("{}: end of stream", sourceText(settings_)));
        }
        break;
    default:
        break;
    }
}

void Capture::supervise() {
    const bool live = options_.mode == CaptureMode::Live;
    auto backoff = std::chrono::duration_cast<Clock::duration>(options_.backoffInitial);
    Clock::time_point retryAt = Clock::now() + backoff;
    bool retryScheduled = state_.load() == CameraState::Lost;

    while (!stopping_.load()) {
        if (session_) {
            GstMessagePtr message = GstMessagePtr::adopt(gst_bus_timed_pop_filtered(
                session_->bus.get(), 50 * GST_MSECOND,
                static_cast<GstMessageType>(GST_MESSAGE_ERROR | GST_MESSAGE_EOS |
                                            GST_MESSAGE_WARNING)));
            const auto now = Clock::now();
            if (session_ && !session_->streaming &&
                framesCaptured_.load() > session_->framesAtStart) {
                session_->streaming = true;
                session_->streamingSince = now;
                setState(CameraState::Streaming);
                emit(CaptureEvent::Kind::Streaming,
                     fmt::format("{}: streaming", sourceText(settings_)));
            }
            bool streamedLongEnough = false;
            if (session_ && session_->streaming) {
                streamedLongEnough = now - session_->streamingSince >= options_.stableAfter;
                if (streamedLongEnough) {
                    backoff = std::chrono::duration_cast<Clock::duration>(options_.backoffInitial);
                }
            }
            if (message) {
                handleBusMessage(message.get());
            } else if (live && session_) {
                // Watchdog: some sources fail silently (unplugged USB cameras).
                const auto last = std::max(session_->startedAt, lastFrameAt());
                const auto limit =
                    session_->streaming ? options_.frameTimeout : options_.firstFrameTimeout;
                if (now - last > limit) {
                    loseSource(CaptureEvent::Kind::FrameTimeout,
                               fmt::format("{}: no frame for {} ms", sourceText(settings_),
                                           std::chrono::duration_cast<Millis>(now - last).count()));
                }
            }
            if (live && !session_ && state_.load() == CameraState::Lost) {
                retryAt = Clock::now() + backoff;
                retryScheduled = true;
            }
            continue;
        }
        if (!live || !retryScheduled) {
            // Offline end or failure: nothing left to supervise.
            waitStop(std::chrono::hours(1));
            continue;
        }
        if (waitStop(retryAt - Clock::now())) {
            break;
        }
        retryScheduled = false;
        restarts_.fetch_add(1);
        setState(CameraState::Retrying);
        emit(CaptureEvent::Kind::Restarting,
             fmt::format("{}: restarting (attempt {}, after {} ms)", sourceText(settings_),
                         restarts_.load(), std::chrono::duration_cast<Millis>(backoff).count()));
        backoff =
            std::min(backoff * 2, std::chrono::duration_cast<Clock::duration>(options_.backoffMax));
        auto session = std::make_unique<Session>();
        std::optional<CaptureError> error = buildSession(*session);
        if (!error) {
            setState(CameraState::Starting);
            error = playSession(*session);
        }
        if (error) {
            session.reset();
            setState(CameraState::Lost);
            emit(CaptureEvent::Kind::Error, error->message, error->detail);
            retryAt = Clock::now() + backoff;
            retryScheduled = true;
            continue;
        }
        session_ = std::move(session);
    }
}

GstFlowReturn Capture::onNewSample(GstElement* appsink, gpointer self) {
    GstSamplePtr sample = GstSamplePtr::adopt(gst_app_sink_pull_sample(GST_APP_SINK(appsink)));
    if (!sample) {
        return GST_FLOW_FLUSHING;
    }
    return static_cast<Capture*>(self)->pushSample(std::move(sample));
}

GstFlowReturn Capture::pushSample(GstSamplePtr sample) {
    const auto now = Clock::now();
    GstBuffer* buffer = gst_sample_get_buffer(sample.get());
    if (buffer == nullptr) {
        return GST_FLOW_OK;
    }
    const double nominalS = 1.0 / std::max(settings_.fps, 1);
    const GstClockTime duration = GST_BUFFER_DURATION(buffer);
    const double durationS =
        GST_CLOCK_TIME_IS_VALID(duration) ? static_cast<double>(duration) / GST_SECOND : nominalS;
    const GstClockTime pts = GST_BUFFER_PTS(buffer);
    double ptsS = GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<double>(pts) / GST_SECOND : nextPtsS_;
    if (!sessionHasFrame_) {
        sessionHasFrame_ = true;
        // The first session keeps the stream's own times (a file's pts); a
        // restarted one continues where the previous stopped, so video time
        // never goes backwards for the sampler.
        ptsOffsetS_ = anySessionHadFrame_ ? nextPtsS_ - ptsS : 0.0;
        anySessionHadFrame_ = true;
    }
    ptsS += ptsOffsetS_;
    nextPtsS_ = ptsS + durationS;

    CapturedSample captured;
    captured.sample = std::move(sample);
    captured.frameId = nextFrameId_++;
    captured.ptsS = ptsS;
    captured.durationS = durationS;
    captured.capturedAt = now;
    lastFrameNs_.store(toNs(now));
    framesCaptured_.fetch_add(1);

    if (options_.mode == CaptureMode::Live) {
        if (!ring_.tryPush(std::move(captured))) {
            framesDropped_.fetch_add(1);
        }
        return GST_FLOW_OK;
    }
    return ring_.pushWait(std::move(captured), stopping_) ? GST_FLOW_OK : GST_FLOW_FLUSHING;
}

PullResult Capture::nextFrame(std::chrono::milliseconds timeout) {
    std::optional<CapturedSample> captured = ring_.pop(timeout);
    if (!captured) {
        const CameraState current = state_.load();
        const bool over = current == CameraState::Ended || current == CameraState::Failed ||
                          (current == CameraState::Stopped && stopping_.load());
        if (!over) {
            return {PullResult::Status::Timeout, nullptr};
        }
        // Everything pushed before the end is visible now; drain it first.
        captured = ring_.tryPop();
        if (!captured) {
            return {PullResult::Status::Ended, nullptr};
        }
    }
    GstCaps* caps = gst_sample_get_caps(captured->sample.get());
    if (caps == nullptr) {
        return {PullResult::Status::Timeout, nullptr};
    }
    if (caps != cachedCaps_.get()) {
        if (!gst_video_info_from_caps(&videoInfo_, caps)) {
            return {PullResult::Status::Timeout, nullptr};
        }
        cachedCaps_ = GstCapsPtr::ref(caps);
    }
    FrameMeta meta;
    meta.id = captured->frameId;
    meta.ptsS = captured->ptsS;
    meta.durationS = captured->durationS;
    meta.capturedAt = captured->capturedAt;
    FramePtr frame = Frame::fromSample(std::move(captured->sample), videoInfo_, meta);
    if (!frame) {
        return {PullResult::Status::Timeout, nullptr};
    }
    framesDelivered_.fetch_add(1);
    return {PullResult::Status::Frame, std::move(frame)};
}

} // namespace dmsd
