#include "test/support/video_fixture.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <stdexcept>

#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

namespace dmsd::test {

namespace {

// Local owners: test support does not depend on the pipeline library.
struct ObjectUnref {
    void operator()(gpointer p) const { gst_object_unref(p); }
};
struct MessageUnref {
    void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using ElementOwner = std::unique_ptr<GstElement, ObjectUnref>;
using BusOwner = std::unique_ptr<GstBus, ObjectUnref>;
using MessageOwner = std::unique_ptr<GstMessage, MessageUnref>;

std::uint8_t clampByte(double v) {
    return static_cast<std::uint8_t>(std::clamp(std::lround(v), 0L, 255L));
}

std::string messageText(GstMessage* message) {
    GError* error = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(message, &error, &debug);
    std::string text = error != nullptr ? error->message : "unknown error";
    if (debug != nullptr) {
        text += std::string(" (") + debug + ")";
    }
    if (error != nullptr) {
        g_error_free(error);
    }
    g_free(debug);
    return text;
}

} // namespace

std::array<std::uint8_t, 3> rgbToYuv(Rgb c) {
    const double r = c.r;
    const double g = c.g;
    const double b = c.b;
    return {clampByte(16 + 0.257 * r + 0.504 * g + 0.098 * b),
            clampByte(128 - 0.148 * r - 0.291 * g + 0.439 * b),
            clampByte(128 + 0.439 * r - 0.368 * g - 0.071 * b)};
}

VideoContainer containerFor(const std::filesystem::path& path) {
    std::string ext = path.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    return ext == ".avi" ? VideoContainer::AviMjpeg : VideoContainer::Mp4H264;
}

std::size_t frameCount(const VideoSpec& spec) {
    std::size_t total = 0;
    for (const VideoSegment& segment : spec.segments) {
        total += static_cast<std::size_t>(std::lround(segment.seconds * spec.fps));
    }
    return total;
}

void generateVideoFrames(const std::filesystem::path& path, const VideoSpec& spec,
                         std::size_t frames, const FrameFill& fill) {
    const std::string where = "generateVideo " + path.string() + ": ";
    if (spec.width <= 0 || spec.height <= 0 || spec.width % 2 != 0 || spec.height % 2 != 0 ||
        spec.fps <= 0) {
        throw std::runtime_error(where + "width and height must be even and positive, fps > 0");
    }
    GError* initError = nullptr;
    if (!gst_init_check(nullptr, nullptr, &initError)) {
        std::string text = initError != nullptr ? initError->message : "gst_init failed";
        g_clear_error(&initError);
        throw std::runtime_error(where + text);
    }
    const std::string encoder =
        spec.container == VideoContainer::AviMjpeg
            ? "jpegenc quality=90 ! avimux"
            : "x264enc speed-preset=ultrafast bframes=0 key-int-max=" + std::to_string(spec.fps) +
                  " ! video/x-h264,profile=constrained-baseline ! mp4mux";
    const std::string description =
        "appsrc name=src format=time block=true caps=video/x-raw,format=I420,width=" +
        std::to_string(spec.width) + ",height=" + std::to_string(spec.height) +
        ",framerate=" + std::to_string(spec.fps) + "/1 ! " + encoder + " ! filesink name=out";
    GError* parseError = nullptr;
    ElementOwner pipeline(gst_parse_launch(description.c_str(), &parseError));
    if (parseError != nullptr) {
        std::string text = parseError->message;
        g_clear_error(&parseError);
        throw std::runtime_error(where + "cannot build '" + description + "': " + text);
    }
    if (g_object_is_floating(pipeline.get())) {
        gst_object_ref_sink(pipeline.get());
    }
    ElementOwner src(gst_bin_get_by_name(GST_BIN(pipeline.get()), "src"));
    ElementOwner sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "out"));
    g_object_set(sink.get(), "location", path.c_str(), nullptr);
    BusOwner bus(gst_element_get_bus(pipeline.get()));

    if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
        gst_element_set_state(pipeline.get(), GST_STATE_NULL);
        throw std::runtime_error(where + "cannot start the encoding pipeline");
    }

    const std::size_t lumaSize =
        static_cast<std::size_t>(spec.width) * static_cast<std::size_t>(spec.height);
    const std::size_t size = lumaSize + 2 * (lumaSize / 4);
    bool failed = false;
    for (std::size_t index = 0; index < frames && !failed; ++index) {
        GstBuffer* buffer = gst_buffer_new_allocate(nullptr, size, nullptr);
        GstMapInfo map;
        gst_buffer_map(buffer, &map, GST_MAP_WRITE);
        fill(index, map.data);
        gst_buffer_unmap(buffer, &map);
        GST_BUFFER_PTS(buffer) = gst_util_uint64_scale(index, GST_SECOND, spec.fps);
        GST_BUFFER_DURATION(buffer) = gst_util_uint64_scale(1, GST_SECOND, spec.fps);
        // Takes the buffer; fails only when the pipeline already errored.
        failed = gst_app_src_push_buffer(GST_APP_SRC(src.get()), buffer) != GST_FLOW_OK;
    }
    gst_app_src_end_of_stream(GST_APP_SRC(src.get()));
    MessageOwner message(gst_bus_timed_pop_filtered(
        bus.get(), 60 * GST_SECOND,
        static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR)));
    std::string error;
    if (!message) {
        error = "timed out writing the video";
    } else if (GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_ERROR) {
        error = messageText(message.get());
    }
    gst_element_set_state(pipeline.get(), GST_STATE_NULL);
    if (!error.empty()) {
        throw std::runtime_error(where + error);
    }
}

void generateVideo(const std::filesystem::path& path, const VideoSpec& spec) {
    const int w = spec.width;
    const int h = spec.height;
    const std::size_t lumaSize = static_cast<std::size_t>(w) * static_cast<std::size_t>(h);
    const std::size_t chromaSize = lumaSize / 4;
    const int square = std::max(2, static_cast<int>(spec.height * spec.squareFraction) & ~1);
    // Which segment, and which frame of it, each frame index is.
    std::vector<std::pair<std::size_t, std::size_t>> at;
    for (std::size_t s = 0; s < spec.segments.size(); ++s) {
        const auto frames =
            static_cast<std::size_t>(std::lround(spec.segments[s].seconds * spec.fps));
        for (std::size_t i = 0; i < frames; ++i) {
            at.emplace_back(s, i);
        }
    }
    generateVideoFrames(path, spec, at.size(), [&](std::size_t index, std::uint8_t* data) {
        const VideoSegment& segment = spec.segments[at[index].first];
        const std::size_t i = at[index].second;
        const auto frames = static_cast<std::size_t>(std::lround(segment.seconds * spec.fps));
        const auto yuv = rgbToYuv(segment.colour);
        const std::uint8_t squareY = yuv[0] < 128 ? 235 : 16;
        std::memset(data, yuv[0], lumaSize);
        std::memset(data + lumaSize, yuv[1], chromaSize);
        std::memset(data + lumaSize + chromaSize, yuv[2], chromaSize);
        if (segment.moving) {
            const double progress = frames > 1 ? double(i) / double(frames - 1) : 0.0;
            const int x0 = static_cast<int>(progress * (w - square)) & ~1;
            const int y0 = ((h - square) / 2) & ~1;
            for (int y = y0; y < y0 + square; ++y) {
                std::memset(data + static_cast<std::size_t>(y) * w + x0, squareY,
                            static_cast<std::size_t>(square));
            }
            for (int y = y0 / 2; y < (y0 + square) / 2; ++y) {
                std::memset(data + lumaSize + static_cast<std::size_t>(y) * (w / 2) + x0 / 2, 128,
                            static_cast<std::size_t>(square / 2));
                std::memset(data + lumaSize + chromaSize + static_cast<std::size_t>(y) * (w / 2) +
                                x0 / 2,
                            128, static_cast<std::size_t>(square / 2));
            }
        }
    });
}

void writeCorruptVideo(const std::filesystem::path& path, Corruption corruption,
                       const VideoSpec& spec) {
    if (corruption == Corruption::Garbage) {
        std::mt19937 random(42);
        std::ofstream out(path, std::ios::binary | std::ios::trunc);
        for (int i = 0; i < 64 * 1024; ++i) {
            out.put(static_cast<char>(random() & 0xff));
        }
        if (!out) {
            throw std::runtime_error("writeCorruptVideo " + path.string() + ": cannot write");
        }
        return;
    }
    generateVideo(path, spec);
    const auto size = std::filesystem::file_size(path);
    std::filesystem::resize_file(path, size / 3);
}

} // namespace dmsd::test
