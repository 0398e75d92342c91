#include "batch/duration_probe.h"

#include <memory>

#include <gst/pbutils/pbutils.h>

#include "pipeline/gst_handles.h"

namespace dmsd::batch {

namespace {

/// GstDiscoverer and GstDiscovererInfo are plain GObjects (not GstObjects).
struct GObjectUnref {
    void operator()(gpointer object) const { g_object_unref(object); }
};
template <class T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

} // namespace

std::optional<double> probeDurationSeconds(const std::string& path,
                                           std::chrono::milliseconds timeout) {
    if (!ensureGstreamer().empty()) {
        return std::nullopt;
    }
    GError* rawError = nullptr;
    const GstClockTime limit = static_cast<GstClockTime>(timeout.count()) * GST_MSECOND;
    GObjectPtr<GstDiscoverer> discoverer(gst_discoverer_new(limit, &rawError));
    GErrorPtr error(rawError);
    if (!discoverer) {
        return std::nullopt;
    }
    rawError = nullptr;
    GCharPtr uri(gst_filename_to_uri(path.c_str(), &rawError));
    error.reset(rawError);
    if (!uri) {
        return std::nullopt;
    }
    rawError = nullptr;
    // Synchronous: runs its own main context on this thread, so several
    // workers may probe at once, each with its own discoverer.
    GObjectPtr<GstDiscovererInfo> info(
        gst_discoverer_discover_uri(discoverer.get(), uri.get(), &rawError));
    error.reset(rawError);
    if (!info || gst_discoverer_info_get_result(info.get()) != GST_DISCOVERER_OK) {
        return std::nullopt;
    }
    const GstClockTime duration = gst_discoverer_info_get_duration(info.get());
    if (!GST_CLOCK_TIME_IS_VALID(duration) || duration == 0) {
        return std::nullopt;
    }
    return static_cast<double>(duration) / static_cast<double>(GST_SECOND);
}

} // namespace dmsd::batch
