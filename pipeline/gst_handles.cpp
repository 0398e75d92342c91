#include "pipeline/gst_handles.h"

#include <mutex>

namespace dmsd {

std::string ensureGstreamer() {
    static std::once_flag once;
    static std::string failure;
    std::call_once(once, [] {
        GError* raw = nullptr;
        if (!gst_init_check(nullptr, nullptr, &raw)) {
            GErrorPtr error(raw);
            failure = error ? error->message : "gst_init_check failed";
            if (failure.empty()) {
                failure = "gst_init_check failed";
            }
        }
    });
    return failure;
}

BufferMap::BufferMap(GstBuffer* buffer, GstMapFlags flags) {
    if (buffer != nullptr && gst_buffer_map(buffer, &info_, flags)) {
        buffer_ = buffer;
    }
}

BufferMap::~BufferMap() {
    if (buffer_ != nullptr) {
        gst_buffer_unmap(buffer_, &info_);
    }
}

VideoFrameMap::VideoFrameMap(GstBuffer* buffer, const GstVideoInfo& info, GstMapFlags flags) {
    // gst_video_frame_map takes its own buffer reference (no NO_REF flag), so
    // the planes stay valid for this object's lifetime.
    mapped_ = buffer != nullptr &&
              gst_video_frame_map(&frame_, const_cast<GstVideoInfo*>(&info), buffer, flags);
}

VideoFrameMap::~VideoFrameMap() {
    if (mapped_) {
        gst_video_frame_unmap(&frame_);
    }
}

GstMessageText parseErrorMessage(GstMessage* message) {
    GstMessageText text;
    if (message == nullptr) {
        return text;
    }
    GError* rawError = nullptr;
    gchar* rawDebug = nullptr;
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) {
        gst_message_parse_error(message, &rawError, &rawDebug);
    } else if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_WARNING) {
        gst_message_parse_warning(message, &rawError, &rawDebug);
    } else {
        return text;
    }
    GErrorPtr error(rawError);
    GCharPtr debug(rawDebug);
    if (error && error->message != nullptr) {
        text.message = error->message;
    }
    if (debug) {
        text.detail = debug.get();
    }
    if (GST_MESSAGE_SRC(message) != nullptr) {
        text.element = GST_OBJECT_NAME(GST_MESSAGE_SRC(message));
    }
    return text;
}

} // namespace dmsd
