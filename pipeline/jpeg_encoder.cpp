#include "pipeline/jpeg_encoder.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <mutex>
#include <opencv2/core/mat.hpp>
#include <opencv2/imgproc.hpp>

#include "base/base64.h"
#include "pipeline/tj_handle.h"

namespace dmsd {

namespace {

struct ThreadCompressor {
    TjHandle handle = TjHandle::compressor();
    std::vector<unsigned char> scratch; ///< worst-case output buffer, reused
};

ThreadCompressor& threadCompressor() {
    thread_local ThreadCompressor compressor;
    return compressor;
}

// Box filter: each destination sample is the mean of the source block it
// covers. Integer factors (the usual 2x2 mosaic) give an exact 2:1 average.
void scalePlane(const std::uint8_t* src, int srcStride, int srcW, int srcH, std::uint8_t* dst,
                int dstStride, int dstW, int dstH) {
    std::vector<int> x0(static_cast<std::size_t>(dstW) + 1);
    for (int x = 0; x <= dstW; ++x) {
        x0[static_cast<std::size_t>(x)] = static_cast<int>(static_cast<long>(x) * srcW / dstW);
    }
    for (int y = 0; y < dstH; ++y) {
        const int y0 = static_cast<int>(static_cast<long>(y) * srcH / dstH);
        const int y1 = std::max(y0 + 1, static_cast<int>(static_cast<long>(y + 1) * srcH / dstH));
        std::uint8_t* out = dst + static_cast<std::ptrdiff_t>(y) * dstStride;
        for (int x = 0; x < dstW; ++x) {
            const int xa = x0[static_cast<std::size_t>(x)];
            const int xb = std::max(xa + 1, x0[static_cast<std::size_t>(x) + 1]);
            unsigned sum = 0;
            for (int sy = y0; sy < y1; ++sy) {
                const std::uint8_t* row = src + static_cast<std::ptrdiff_t>(sy) * srcStride;
                for (int sx = xa; sx < xb; ++sx) {
                    sum += row[sx];
                }
            }
            const unsigned count = static_cast<unsigned>((y1 - y0) * (xb - xa));
            out[x] = static_cast<std::uint8_t>((sum + count / 2) / count);
        }
    }
}

/// \a image scaled to \a width x \a height, packed I420. OpenCV's area
/// interpolation is a box filter for downscaling (every source pixel counts,
/// no aliasing from skipped rows), on each plane in place of its stride.
std::vector<std::uint8_t> scaleI420(const I420View& image, int width, int height) {
    std::vector<std::uint8_t> out(Frame::i420Size(width, height));
    const int cw = (width + 1) / 2;
    const int ch = (height + 1) / 2;
    std::uint8_t* dst = out.data();
    const std::array<std::array<int, 4>, 3> sizes = {{
        {image.width, image.height, width, height},
        {image.chromaWidth(), image.chromaHeight(), cw, ch},
        {image.chromaWidth(), image.chromaHeight(), cw, ch},
    }};
    for (std::size_t plane = 0; plane < 3; ++plane) {
        const auto& [sw, sh, dw, dh] = sizes[plane];
        // cv::Mat over the frame's own bytes: no copy of the source; OpenCV
        // does not write through a source Mat.
        const cv::Mat src(sh, sw, CV_8UC1, const_cast<std::uint8_t*>(image.data[plane]),
                          static_cast<std::size_t>(image.stride[plane]));
        cv::Mat target(dh, dw, CV_8UC1, dst);
        cv::resize(src, target, target.size(), 0, 0, cv::INTER_AREA);
        dst += static_cast<std::ptrdiff_t>(dw) * dh;
    }
    return out;
}

} // namespace

std::optional<JpegImage> encodeI420(const I420View& image, int quality, std::string* error) {
    ThreadCompressor& compressor = threadCompressor();
    if (!compressor.handle) {
        if (error != nullptr) {
            *error =
                std::string("cannot create a TurboJPEG compressor: ") + tjGetErrorStr2(nullptr);
        }
        return std::nullopt;
    }
    if (image.width <= 0 || image.height <= 0 || image.data[0] == nullptr) {
        if (error != nullptr) {
            *error = "empty image";
        }
        return std::nullopt;
    }
    const unsigned long worstCase = tjBufSize(image.width, image.height, TJSAMP_420);
    if (compressor.scratch.size() < worstCase) {
        compressor.scratch.resize(worstCase);
    }
    unsigned char* out = compressor.scratch.data();
    unsigned long outSize = compressor.scratch.size();
    const unsigned char* planes[3] = {image.data[0], image.data[1], image.data[2]};
    const int strides[3] = {image.stride[0], image.stride[1], image.stride[2]};
    const int rc = tjCompressFromYUVPlanes(
        compressor.handle.get(), planes, image.width, strides, image.height, TJSAMP_420, &out,
        &outSize, std::clamp(quality, 1, 100), kJpegFlags | TJFLAG_NOREALLOC);
    if (rc != 0) {
        if (error != nullptr) {
            *error = std::string("JPEG encoding failed: ") + compressor.handle.errorText();
        }
        return std::nullopt;
    }
    // The only copy: compressed bytes (tens of kB) into an exactly sized,
    // shared buffer; and their base64, once, for every request that sends it.
    JpegImage jpeg;
    jpeg.bytes = std::make_shared<const std::vector<unsigned char>>(out, out + outSize);
    jpeg.base64 = std::make_shared<const std::string>(base64(out, outSize));
    jpeg.width = image.width;
    jpeg.height = image.height;
    return jpeg;
}

std::optional<JpegImage> encodeI420Scaled(const I420View& image, int quality, int maxSide,
                                          std::string* error) {
    const auto [width, height] = scaledToMaxSide(image.width, image.height, maxSide);
    if (width == image.width && height == image.height) {
        return encodeI420(image, quality, error);
    }
    const std::vector<std::uint8_t> scaled = scaleI420(image, width, height);
    const std::size_t luma = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    const std::size_t chroma =
        static_cast<std::size_t>((width + 1) / 2) * static_cast<std::size_t>((height + 1) / 2);
    I420View view;
    view.data = {scaled.data(), scaled.data() + luma, scaled.data() + luma + chroma};
    view.stride = {width, (width + 1) / 2, (width + 1) / 2};
    view.width = width;
    view.height = height;
    return encodeI420(view, quality, error);
}

MosaicLayout mosaicLayout(std::size_t count, int frameWidth, int frameHeight) {
    MosaicLayout layout;
    count = std::max<std::size_t>(count, 1);
    layout.columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(count))));
    layout.rows = static_cast<int>((count + static_cast<std::size_t>(layout.columns) - 1) /
                                   static_cast<std::size_t>(layout.columns));
    layout.tileWidth = std::max(2, (frameWidth / layout.columns) & ~1);
    layout.tileHeight = std::max(2, (frameHeight / layout.columns) & ~1);
    return layout;
}

FramePtr composeMosaic(const std::vector<FramePtr>& frames, int maxSide) {
    if (frames.empty() || !frames.front()) {
        return nullptr;
    }
    const auto [frameWidth, frameHeight] =
        scaledToMaxSide(frames.front()->width(), frames.front()->height(), maxSide);
    const MosaicLayout layout = mosaicLayout(frames.size(), frameWidth, frameHeight);
    const int width = layout.width();
    const int height = layout.height();
    const int cw = width / 2;
    const int ch = height / 2;
    std::vector<std::uint8_t> data(Frame::i420Size(width, height));
    const std::size_t lumaSize = static_cast<std::size_t>(width) * static_cast<std::size_t>(height);
    const std::size_t chromaSize = static_cast<std::size_t>(cw) * static_cast<std::size_t>(ch);
    std::uint8_t* y = data.data();
    std::uint8_t* u = y + lumaSize;
    std::uint8_t* v = u + chromaSize;
    std::memset(y, 16, lumaSize); // video-range black
    std::memset(u, 128, 2 * chromaSize);

    for (std::size_t i = 0; i < frames.size(); ++i) {
        if (!frames[i]) {
            continue;
        }
        const I420View& src = frames[i]->planes();
        const int col = static_cast<int>(i) % layout.columns;
        const int row = static_cast<int>(i) / layout.columns;
        const int tx = col * layout.tileWidth;
        const int ty = row * layout.tileHeight;
        scalePlane(src.data[0], src.stride[0], src.width, src.height,
                   y + static_cast<std::ptrdiff_t>(ty) * width + tx, width, layout.tileWidth,
                   layout.tileHeight);
        const std::ptrdiff_t chromaOffset = static_cast<std::ptrdiff_t>(ty / 2) * cw + tx / 2;
        scalePlane(src.data[1], src.stride[1], src.chromaWidth(), src.chromaHeight(),
                   u + chromaOffset, cw, layout.tileWidth / 2, layout.tileHeight / 2);
        scalePlane(src.data[2], src.stride[2], src.chromaWidth(), src.chromaHeight(),
                   v + chromaOffset, cw, layout.tileWidth / 2, layout.tileHeight / 2);
    }
    FrameMeta meta = frames.back()->meta();
    return Frame::fromI420(std::move(data), width, height, meta);
}

JpegEncoder::JpegEncoder(EncodeSettings settings, std::size_t cacheEntries)
    : settings_(settings), cacheEntries_(std::max<std::size_t>(cacheEntries, 1)) {
}

std::optional<JpegImage> JpegEncoder::encode(const Frame& frame) {
    if (auto found = index_.find(frame.id()); found != index_.end()) {
        lru_.splice(lru_.begin(), lru_, found->second);
        ++cacheHits_;
        return found->second->second;
    }
    // Scaled to encode.max_side here, once per frame: the frame itself keeps
    // its full size for the vision stage and the snapshots.
    auto image =
        encodeI420Scaled(frame.planes(), settings_.jpegQuality, settings_.maxSide, &lastError_);
    if (!image) {
        return std::nullopt;
    }
    ++framesEncoded_;
    lru_.emplace_front(frame.id(), *image);
    index_[frame.id()] = lru_.begin();
    if (lru_.size() > cacheEntries_) {
        index_.erase(lru_.back().first);
        lru_.pop_back();
    }
    return image;
}

namespace {
// Shared by the copies of an EncodedSequence's makeMosaic: the mosaic is
// composed and encoded at most once, on whichever thread first asks.
struct MosaicMaker {
    std::vector<FramePtr> frames;
    int quality = 85;
    int maxSide = 0;
    std::mutex mutex;
    bool done = false;
    std::optional<JpegImage> image;

    std::optional<JpegImage> get() {
        std::lock_guard lock(mutex);
        if (!done) {
            done = true;
            if (FramePtr mosaic = composeMosaic(frames, maxSide)) {
                image = encodeI420(mosaic->planes(), quality);
            }
            frames.clear(); // release the captured buffers once encoded
        }
        return image;
    }
};
} // namespace

EncodedSequencePtr JpegEncoder::encodeSequence(const SampledSequence& sequence) {
    auto encoded = std::make_shared<EncodedSequence>();
    encoded->sequenceId = sequence.sequenceId;
    encoded->tStartS = sequence.tStartS;
    encoded->tEndS = sequence.tEndS;
    encoded->motion = sequence.motion;
    encoded->frames.reserve(sequence.frames.size());
    auto maker = std::make_shared<MosaicMaker>();
    maker->quality = settings_.jpegQuality;
    maker->maxSide = settings_.maxSide;
    for (const SampledFrame& sampled : sequence.frames) {
        encoded->frames.push_back(sampled.info);
        maker->frames.push_back(sampled.frame);
    }
    if (!sequence.frames.empty()) {
        encoded->lastFrameAt = sequence.frames.back().info.capturedAt;
    }

    if (settings_.layout == ImageLayout::Mosaic) {
        auto mosaic = maker->get();
        if (!mosaic) {
            lastError_ =
                "cannot encode the mosaic of sequence " + std::to_string(sequence.sequenceId);
            return nullptr;
        }
        ++framesEncoded_;
        encoded->images.push_back(*mosaic);
        encoded->mosaic = true;
    } else {
        for (const SampledFrame& sampled : sequence.frames) {
            auto image = encode(*sampled.frame);
            if (!image) {
                return nullptr;
            }
            encoded->images.push_back(std::move(*image));
        }
    }
    encoded->makeMosaic = [maker] {
        return maker->get();
    };
    return encoded;
}

} // namespace dmsd
