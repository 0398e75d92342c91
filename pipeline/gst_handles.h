#pragma once

/// \file
/// Move-only owners of GStreamer/GLib handles. Every reference the frame path
/// holds goes through one of these; no naked `*_unref` in logic code.
///
/// Floating references (what `gst_element_factory_make` and
/// `gst_parse_bin_from_description` return) are sunk in exactly one place:
/// GstPtr<T>::adoptFloating().

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <gst/gst.h>
#include <gst/video/video.h>

namespace dmsd {

/// Initialises GStreamer once per process (thread-safe, idempotent).
/// \return an empty string on success, else GStreamer's reason.
std::string ensureGstreamer();

namespace detail {
struct GstObjectUnref {
    void operator()(gpointer object) const { gst_object_unref(object); }
};
struct GstMiniObjectUnref {
    void operator()(gpointer object) const { gst_mini_object_unref(GST_MINI_OBJECT_CAST(object)); }
};
struct GErrorFree {
    void operator()(GError* error) const { g_error_free(error); }
};
struct GFree {
    void operator()(gpointer p) const { g_free(p); }
};
} // namespace detail

/// Owner of one reference to a GstObject subclass (GstElement, GstBus, GstPad...).
template <class T>
class GstPtr {
public:
    GstPtr() = default;
    /// Takes over a full (non-floating) reference, e.g. from gst_element_get_bus().
    static GstPtr adopt(T* object) { return GstPtr(object); }
    /// Takes a new reference (the caller keeps its own).
    static GstPtr ref(T* object) {
        return GstPtr(object != nullptr ? static_cast<T*>(gst_object_ref(object)) : nullptr);
    }
    /// Takes a freshly created object whose reference may be floating: sinks it.
    static GstPtr adoptFloating(T* object) {
        return GstPtr(object != nullptr ? static_cast<T*>(gst_object_ref_sink(object)) : nullptr);
    }

    T* get() const { return ptr_.get(); }
    T* operator->() const { return ptr_.get(); }
    explicit operator bool() const { return static_cast<bool>(ptr_); }
    void reset() { ptr_.reset(); }
    /// Gives up ownership of the reference.
    [[nodiscard]] T* release() { return ptr_.release(); }

private:
    explicit GstPtr(T* object) : ptr_(object) {}
    std::unique_ptr<T, detail::GstObjectUnref> ptr_;
};

/// Owner of one reference to a GstMiniObject (GstSample, GstBuffer, GstCaps, GstMessage).
template <class T>
class GstMiniPtr {
public:
    GstMiniPtr() = default;
    /// Takes over a reference the caller owned (e.g. from gst_app_sink_pull_sample()).
    static GstMiniPtr adopt(T* object) { return GstMiniPtr(object); }
    /// Takes a new reference.
    static GstMiniPtr ref(T* object) {
        if (object != nullptr) {
            gst_mini_object_ref(GST_MINI_OBJECT_CAST(object));
        }
        return GstMiniPtr(object);
    }

    T* get() const { return ptr_.get(); }
    T* operator->() const { return ptr_.get(); }
    explicit operator bool() const { return static_cast<bool>(ptr_); }
    void reset() { ptr_.reset(); }
    [[nodiscard]] T* release() { return ptr_.release(); }

private:
    explicit GstMiniPtr(T* object) : ptr_(object) {}
    std::unique_ptr<T, detail::GstMiniObjectUnref> ptr_;
};

using GstElementPtr = GstPtr<GstElement>;
using GstBusPtr = GstPtr<GstBus>;
using GstPadPtr = GstPtr<GstPad>;
using GstSamplePtr = GstMiniPtr<GstSample>;
using GstBufferPtr = GstMiniPtr<GstBuffer>;
using GstCapsPtr = GstMiniPtr<GstCaps>;
using GstMessagePtr = GstMiniPtr<GstMessage>;
using GErrorPtr = std::unique_ptr<GError, detail::GErrorFree>;
using GCharPtr = std::unique_ptr<gchar, detail::GFree>;

/// A readable mapping of a GstBuffer's memory, unmapped on destruction.
class BufferMap {
public:
    /// Maps \a buffer for reading; isValid() tells whether it worked.
    explicit BufferMap(GstBuffer* buffer, GstMapFlags flags = GST_MAP_READ);
    BufferMap(const BufferMap&) = delete;
    BufferMap& operator=(const BufferMap&) = delete;
    ~BufferMap();

    bool isValid() const { return buffer_ != nullptr; }
    const guint8* data() const { return info_.data; }
    guint8* mutableData() const { return info_.data; }
    gsize size() const { return info_.size; }

private:
    GstBuffer* buffer_ = nullptr;
    GstMapInfo info_{};
};

/// A mapping of a video buffer's planes (honours GstVideoMeta strides and
/// offsets). Keeps its own reference to the buffer while mapped.
class VideoFrameMap {
public:
    VideoFrameMap(GstBuffer* buffer, const GstVideoInfo& info, GstMapFlags flags = GST_MAP_READ);
    VideoFrameMap(const VideoFrameMap&) = delete;
    VideoFrameMap& operator=(const VideoFrameMap&) = delete;
    ~VideoFrameMap();

    bool isValid() const { return mapped_; }
    const GstVideoFrame& frame() const { return frame_; }
    const guint8* plane(int index) const {
        return static_cast<const guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame_, index));
    }
    guint8* mutablePlane(int index) const {
        return static_cast<guint8*>(GST_VIDEO_FRAME_PLANE_DATA(&frame_, index));
    }
    int stride(int index) const { return GST_VIDEO_FRAME_PLANE_STRIDE(&frame_, index); }

private:
    GstVideoFrame frame_{};
    bool mapped_ = false;
};

/// GStreamer's error message plus its debug detail, from an ERROR or WARNING message.
struct GstMessageText {
    std::string message;
    std::string detail;
    std::string element; ///< name of the element that posted it
};
/// Parses an ERROR or WARNING bus message; empty texts for other types.
GstMessageText parseErrorMessage(GstMessage* message);

} // namespace dmsd
