#include "pipeline/frame.h"

#include <cstring>

namespace dmsd {

std::size_t Frame::i420Size(int width, int height) {
    const auto luma = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    const auto chroma =
        static_cast<std::size_t>((width + 1) / 2) * static_cast<std::size_t>((height + 1) / 2);
    return luma + 2 * chroma;
}

FramePtr Frame::fromSample(GstSamplePtr sample, const GstVideoInfo& info, const FrameMeta& meta) {
    if (!sample || GST_VIDEO_INFO_FORMAT(&info) != GST_VIDEO_FORMAT_I420) {
        return nullptr;
    }
    GstBuffer* buffer = gst_sample_get_buffer(sample.get());
    if (buffer == nullptr) {
        return nullptr;
    }
    auto frame = std::make_shared<Frame>(Private{}, meta);
    frame->map_.emplace(buffer, info);
    if (!frame->map_->isValid()) {
        return nullptr;
    }
    for (int plane = 0; plane < 3; ++plane) {
        frame->view_.data[static_cast<std::size_t>(plane)] = frame->map_->plane(plane);
        frame->view_.stride[static_cast<std::size_t>(plane)] = frame->map_->stride(plane);
    }
    frame->view_.width = GST_VIDEO_INFO_WIDTH(&info);
    frame->view_.height = GST_VIDEO_INFO_HEIGHT(&info);
    frame->sample_ = std::move(sample);
    return frame;
}

FramePtr Frame::fromI420(std::vector<std::uint8_t> i420, int width, int height,
                         const FrameMeta& meta) {
    if (width <= 0 || height <= 0 || i420.size() < i420Size(width, height)) {
        return nullptr;
    }
    auto frame = std::make_shared<Frame>(Private{}, meta);
    frame->owned_ = std::move(i420);
    const int cw = (width + 1) / 2;
    const int ch = (height + 1) / 2;
    const std::uint8_t* base = frame->owned_.data();
    const auto lumaSize = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    const auto chromaSize = static_cast<std::size_t>(cw) * static_cast<std::size_t>(ch);
    frame->view_.data = {base, base + lumaSize, base + lumaSize + chromaSize};
    frame->view_.stride = {width, cw, cw};
    frame->view_.width = width;
    frame->view_.height = height;
    return frame;
}

FramePtr Frame::solid(int width, int height, std::uint8_t y, std::uint8_t u, std::uint8_t v,
                      const FrameMeta& meta) {
    std::vector<std::uint8_t> data(i420Size(width, height));
    const auto lumaSize = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    const auto chromaSize = (data.size() - lumaSize) / 2;
    std::memset(data.data(), y, lumaSize);
    std::memset(data.data() + lumaSize, u, chromaSize);
    std::memset(data.data() + lumaSize + chromaSize, v, chromaSize);
    return fromI420(std::move(data), width, height, meta);
}

} // namespace dmsd
