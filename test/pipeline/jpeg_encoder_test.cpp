#include <cstdlib>
#include <utility>
#include <vector>

#include <catch2/catch.hpp>

#include "base/base64.h"
#include "pipeline/jpeg_encoder.h"
#include "pipeline/tj_handle.h"

using namespace dmsd;

namespace {

struct Decoded {
    int width = 0;
    int height = 0;
    int subsampling = -1;
    std::vector<unsigned char> i420; ///< packed Y, U, V
    unsigned char lumaAt(int x, int y) const {
        return i420[static_cast<std::size_t>(y * width + x)];
    }
};

Decoded decode(const JpegImage& image) {
    REQUIRE(image.bytes);
    TjHandle handle = TjHandle::decompressor();
    REQUIRE(handle);
    Decoded out;
    int colourspace = 0;
    REQUIRE(tjDecompressHeader3(handle.get(), image.bytes->data(), image.bytes->size(), &out.width,
                                &out.height, &out.subsampling, &colourspace) == 0);
    out.i420.resize(tjBufSizeYUV2(out.width, 1, out.height, out.subsampling));
    REQUIRE(tjDecompressToYUV2(handle.get(), image.bytes->data(), image.bytes->size(),
                               out.i420.data(), out.width, 1, out.height, 0) == 0);
    return out;
}

FramePtr gradient(int width, int height, std::uint64_t id = 1) {
    std::vector<std::uint8_t> data(Frame::i420Size(width, height), 128);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            data[static_cast<std::size_t>(y * width + x)] =
                static_cast<std::uint8_t>(16 + (x * 200) / width);
        }
    }
    FrameMeta meta;
    meta.id = id;
    return Frame::fromI420(std::move(data), width, height, meta);
}

double lumaError(const Decoded& decoded, const I420View& source) {
    double sum = 0;
    for (int y = 0; y < source.height; ++y) {
        for (int x = 0; x < source.width; ++x) {
            sum += std::abs(int(decoded.lumaAt(x, y)) - int(source.row(0, y)[x]));
        }
    }
    return sum / (source.width * source.height);
}

FramePtr solidRgbish(std::uint8_t y, std::uint64_t id) {
    FrameMeta meta;
    meta.id = id;
    meta.ptsS = static_cast<double>(id) / 10.0;
    return Frame::solid(64, 48, y, 128, 128, meta);
}

} // namespace

TEST_CASE("encoded JPEG decodes back to the right size and close pixels", "[encoder]") {
    FramePtr frame = gradient(160, 120);
    std::string error;
    auto image = encodeI420(frame->planes(), 85, &error);
    REQUIRE(image);
    CHECK(error.empty());
    CHECK(image->width == 160);
    CHECK(image->height == 120);
    CHECK(image->bytes->size() > 100);
    CHECK((*image->bytes)[0] == 0xFF);
    CHECK((*image->bytes)[1] == 0xD8);
    Decoded decoded = decode(*image);
    CHECK(decoded.width == 160);
    CHECK(decoded.height == 120);
    CHECK(decoded.subsampling == TJSAMP_420);
    CHECK(lumaError(decoded, frame->planes()) < 2.0);
    // Its base64 is made once, here, and is exactly the bytes' encoding.
    REQUIRE(image->base64);
    CHECK(*image->base64 == base64(image->bytes->data(), image->bytes->size()));
    CHECK(image->base64->starts_with("/9j/"));
}

TEST_CASE("encoder respects plane strides", "[encoder]") {
    constexpr int width = 64;
    constexpr int height = 32;
    constexpr int padding = 48;
    FramePtr packed = gradient(width, height);
    // The same image with padded rows full of white: a stride bug shows up as stripes.
    std::vector<std::uint8_t> y(static_cast<std::size_t>((width + padding) * height), 255);
    std::vector<std::uint8_t> u(static_cast<std::size_t>((width / 2 + padding) * height / 2), 255);
    std::vector<std::uint8_t> v(u.size(), 255);
    for (int row = 0; row < height; ++row) {
        std::copy_n(packed->planes().row(0, row), width, y.begin() + row * (width + padding));
    }
    for (int row = 0; row < height / 2; ++row) {
        std::copy_n(packed->planes().row(1, row), width / 2,
                    u.begin() + row * (width / 2 + padding));
        std::copy_n(packed->planes().row(2, row), width / 2,
                    v.begin() + row * (width / 2 + padding));
    }
    I420View padded;
    padded.data = {y.data(), u.data(), v.data()};
    padded.stride = {width + padding, width / 2 + padding, width / 2 + padding};
    padded.width = width;
    padded.height = height;
    auto image = encodeI420(padded, 90);
    REQUIRE(image);
    Decoded decoded = decode(*image);
    CHECK(lumaError(decoded, packed->planes()) < 2.0);
}

TEST_CASE("each frame is encoded at most once", "[encoder]") {
    EncodeSettings settings;
    JpegEncoder encoder(settings, 2);
    FramePtr a = gradient(64, 48, 1);
    FramePtr b = gradient(64, 48, 2);
    auto first = encoder.encode(*a);
    auto again = encoder.encode(*a);
    REQUIRE(first);
    REQUIRE(again);
    CHECK(first->bytes == again->bytes); // the same shared buffer
    CHECK(encoder.framesEncoded() == 1);
    CHECK(encoder.cacheHits() == 1);
    encoder.encode(*b);
    encoder.encode(*gradient(64, 48, 3)); // evicts frame 1 (LRU of 2)
    encoder.encode(*a);
    CHECK(encoder.framesEncoded() == 4);
}

TEST_CASE("mosaic layout keeps the mosaic about one frame wide", "[encoder][mosaic]") {
    auto four = mosaicLayout(4, 640, 480);
    CHECK(four.columns == 2);
    CHECK(four.rows == 2);
    CHECK(four.width() == 640);
    CHECK(four.height() == 480);
    auto two = mosaicLayout(2, 640, 480);
    CHECK(two.columns == 2);
    CHECK(two.rows == 1);
    CHECK(two.width() == 640);
    CHECK(two.height() == 240);
    auto three = mosaicLayout(3, 640, 480);
    CHECK(three.rows == 2);
    auto six = mosaicLayout(6, 640, 480);
    CHECK(six.columns == 3);
    CHECK(six.rows == 2);
    CHECK(six.tileWidth % 2 == 0);
}

TEST_CASE("mosaic tiles the frames in order and decodes back", "[encoder][mosaic]") {
    std::vector<FramePtr> frames = {solidRgbish(40, 1), solidRgbish(90, 2), solidRgbish(160, 3),
                                    solidRgbish(220, 4)};
    FramePtr mosaic = composeMosaic(frames);
    REQUIRE(mosaic);
    CHECK(mosaic->width() == 64);
    CHECK(mosaic->height() == 48);
    auto image = encodeI420(mosaic->planes(), 90);
    REQUIRE(image);
    Decoded decoded = decode(*image);
    REQUIRE(decoded.width == 64);
    REQUIRE(decoded.height == 48);
    // The centre of each 32x24 tile has its frame's luma.
    CHECK(std::abs(decoded.lumaAt(16, 12) - 40) <= 3);
    CHECK(std::abs(decoded.lumaAt(48, 12) - 90) <= 3);
    CHECK(std::abs(decoded.lumaAt(16, 36) - 160) <= 3);
    CHECK(std::abs(decoded.lumaAt(48, 36) - 220) <= 3);
}

TEST_CASE("encodeSequence: separate images, and the mosaic on demand", "[encoder][mosaic]") {
    SampledSequence sequence;
    sequence.sequenceId = 9;
    sequence.tStartS = 0.0;
    sequence.tEndS = 0.4;
    for (std::uint64_t id = 1; id <= 3; ++id) {
        SampledFrame sampled;
        sampled.frame = solidRgbish(static_cast<std::uint8_t>(50 * id), id);
        sampled.info.frameId = id;
        sampled.info.ptsSeconds = sampled.frame->ptsS();
        sequence.frames.push_back(sampled);
    }
    SECTION("separate") {
        JpegEncoder encoder(EncodeSettings{80, ImageLayout::Separate});
        EncodedSequencePtr encoded = encoder.encodeSequence(sequence);
        REQUIRE(encoded);
        CHECK(encoded->sequenceId == 9);
        CHECK_FALSE(encoded->mosaic);
        REQUIRE(encoded->images.size() == 3);
        REQUIRE(encoded->frames.size() == 3);
        CHECK(encoded->frames[2].frameId == 3);
        CHECK(decode(encoded->images[1]).width == 64);
        REQUIRE(encoded->makeMosaic);
        auto mosaic = encoded->makeMosaic();
        REQUIRE(mosaic);
        CHECK(mosaic->width == 64);
        CHECK(mosaic->height == 48);
        auto again = encoded->makeMosaic();
        REQUIRE(again);
        CHECK(again->bytes == mosaic->bytes); // composed and encoded once
    }
    SECTION("mosaic") {
        JpegEncoder encoder(EncodeSettings{80, ImageLayout::Mosaic});
        EncodedSequencePtr encoded = encoder.encodeSequence(sequence);
        REQUIRE(encoded);
        CHECK(encoded->mosaic);
        REQUIRE(encoded->images.size() == 1);
        CHECK(decode(encoded->images[0]).width == 64);
        REQUIRE(encoded->makeMosaic);
        CHECK(encoded->makeMosaic()->bytes == encoded->images[0].bytes);
    }
}

TEST_CASE("scaledToMaxSide keeps the aspect, even sizes, and never enlarges", "[jpeg]") {
    CHECK(scaledToMaxSide(640, 480, 0) == std::pair{640, 480});
    CHECK(scaledToMaxSide(640, 480, 640) == std::pair{640, 480});
    CHECK(scaledToMaxSide(640, 480, 1000) == std::pair{640, 480});
    CHECK(scaledToMaxSide(640, 480, 336) == std::pair{336, 252});
    CHECK(scaledToMaxSide(480, 640, 336) == std::pair{252, 336});
    CHECK(scaledToMaxSide(1280, 720, 448) == std::pair{448, 252});
    CHECK(scaledToMaxSide(640, 480, 335) == std::pair{334, 250}); // rounded down to even
    CHECK_FALSE(maxSideProblem(0));
    CHECK_FALSE(maxSideProblem(32));
    CHECK(maxSideProblem(16));
}

TEST_CASE("encode.max_side: the JPEGs the model receives are scaled down, the frame is not",
          "[jpeg]") {
    SampledSequence sequence;
    sequence.sequenceId = 3;
    for (std::uint64_t id = 1; id <= 4; ++id) {
        SampledFrame sampled;
        sampled.frame = gradient(640, 480, id);
        sampled.info.frameId = id;
        sequence.frames.push_back(sampled);
    }
    SECTION("separate: each frame at 336x252, encoded once") {
        JpegEncoder encoder(EncodeSettings{85, ImageLayout::Separate, 336});
        EncodedSequencePtr encoded = encoder.encodeSequence(sequence);
        REQUIRE(encoded);
        REQUIRE(encoded->images.size() == 4);
        for (const JpegImage& image : encoded->images) {
            const Decoded d = decode(image);
            CHECK(d.width == 336);
            CHECK(d.height == 252);
            CHECK(image.width == 336);
            CHECK(image.height == 252);
            // The gradient survives the scaling: left dark, right bright.
            CHECK(d.lumaAt(2, 100) < 30);
            CHECK(d.lumaAt(333, 100) > 200);
        }
        CHECK(encoder.framesEncoded() == 4);
        CHECK(sequence.frames[0].frame->width() == 640); // the frame keeps its size
        encoder.encode(*sequence.frames[0].frame);
        CHECK(encoder.framesEncoded() == 4); // from the cache, not again
        // The mosaic fallback follows the same limit.
        auto mosaic = encoded->makeMosaic();
        REQUIRE(mosaic);
        CHECK(decode(*mosaic).width == 336);
        CHECK(decode(*mosaic).height == 252);
    }
    SECTION("mosaic: the whole grid within 336") {
        JpegEncoder encoder(EncodeSettings{85, ImageLayout::Mosaic, 336});
        EncodedSequencePtr encoded = encoder.encodeSequence(sequence);
        REQUIRE(encoded);
        REQUIRE(encoded->images.size() == 1);
        const Decoded d = decode(encoded->images[0]);
        CHECK(d.width == 336);
        CHECK(d.height == 252);
    }
    SECTION("0: the capture size") {
        JpegEncoder encoder(EncodeSettings{85, ImageLayout::Separate, 0});
        EncodedSequencePtr encoded = encoder.encodeSequence(sequence);
        REQUIRE(encoded);
        CHECK(decode(encoded->images[0]).width == 640);
        CHECK(decode(encoded->images[0]).height == 480);
    }
}
