#include "batch/duration_probe.h"

#include <chrono>

#include "pipeline/gst_handles.h"

namespace dmsd::batch {

namespace {

/// Owns the pipeline and puts it back to NULL before the last reference goes
/// (GStreamer requires it; a PAUSED pipeline must not be unreferenced).
class ProbePipeline {
public:
    ProbePipeline() : pipeline_(GstElementPtr::adoptFloating(gst_pipeline_new("dmsd-probe"))) {}
    ProbePipeline(const ProbePipeline&) = delete;
    ProbePipeline& operator=(const ProbePipeline&) = delete;
    ~ProbePipeline() {
        if (pipeline_) {
            gst_element_set_state(pipeline_.get(), GST_STATE_NULL);
        }
    }
    GstElement* get() const { return pipeline_.get(); }

private:
    GstElementPtr pipeline_;
};

/// parsebin exposes one pad per elementary stream; each gets its own sink so
/// that no stream is left unlinked (which would be an error).
void onPadAdded(GstElement* /*parser*/, GstPad* pad, gpointer pipeline) {
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    if (sink == nullptr) {
        return;
    }
    g_object_set(sink, "sync", FALSE, nullptr);
    // gst_bin_add sinks the floating reference: the bin owns the sink.
    gst_bin_add(GST_BIN(pipeline), sink);
    gst_element_sync_state_with_parent(sink);
    GstPadPtr sinkPad = GstPadPtr::adopt(gst_element_get_static_pad(sink, "sink"));
    if (sinkPad) {
        gst_pad_link(pad, sinkPad.get());
    }
}

} // namespace

std::optional<double> probeDurationSeconds(const std::string& path) {
    if (!ensureGstreamer().empty()) {
        return std::nullopt;
    }
    ProbePipeline pipeline;
    if (pipeline.get() == nullptr) {
        return std::nullopt;
    }
    GstElement* source = gst_element_factory_make("filesrc", nullptr);
    GstElement* parser = gst_element_factory_make("parsebin", nullptr);
    if (parser == nullptr) {
        parser = gst_element_factory_make("decodebin", nullptr);
    }
    if (source == nullptr || parser == nullptr) {
        // Not yet in a bin: these references are still floating and ours.
        GstElementPtr::adoptFloating(source);
        GstElementPtr::adoptFloating(parser);
        return std::nullopt;
    }
    g_object_set(source, "location", path.c_str(), nullptr);
    gst_bin_add_many(GST_BIN(pipeline.get()), source, parser, nullptr);
    if (!gst_element_link(source, parser)) {
        return std::nullopt;
    }
    g_signal_connect(parser, "pad-added", G_CALLBACK(onPadAdded), pipeline.get());
    if (gst_element_set_state(pipeline.get(), GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
        return std::nullopt;
    }
    // Bounded: a file that does not preroll within this is left to Capture to judge.
    constexpr GstClockTime kTimeout = 5 * GST_SECOND;
    GstState state = GST_STATE_NULL;
    if (gst_element_get_state(pipeline.get(), &state, nullptr, kTimeout) !=
        GST_STATE_CHANGE_SUCCESS) {
        return std::nullopt;
    }
    gint64 duration = -1;
    if (!gst_element_query_duration(pipeline.get(), GST_FORMAT_TIME, &duration) || duration <= 0) {
        return std::nullopt;
    }
    return static_cast<double>(duration) / static_cast<double>(GST_SECOND);
}

} // namespace dmsd::batch
