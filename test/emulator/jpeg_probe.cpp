#include "test/emulator/jpeg_probe.h"

#include <stdexcept>
#include <vector>

#include <turbojpeg.h>

namespace dmsd::emulator {

void JpegProbe::Deleter::operator()(void* handle) const {
    tjDestroy(static_cast<tjhandle>(handle));
}

JpegProbe::JpegProbe() : handle_(tjInitDecompress()) {
    if (!handle_) {
        throw std::runtime_error("tjInitDecompress failed");
    }
}

std::optional<ColourSum> JpegProbe::colourSum(std::string_view jpeg) {
    auto* data = reinterpret_cast<const unsigned char*>(jpeg.data());
    auto size = static_cast<unsigned long>(jpeg.size());
    int width = 0, height = 0, subsampling = 0, colorspace = 0;
    if (tjDecompressHeader3(handle_.get(), data, size, &width, &height, &subsampling,
                            &colorspace) != 0 ||
        width <= 0 || height <= 0) {
        return std::nullopt;
    }
    const tjscalingfactor eighth{1, 8};
    const int w = TJSCALED(width, eighth);
    const int h = TJSCALED(height, eighth);
    std::vector<unsigned char> rgb(static_cast<std::size_t>(w) * h * 3);
    if (tjDecompress2(handle_.get(), data, size, rgb.data(), w, 0, h, TJPF_RGB, 0) != 0 &&
        tjGetErrorCode(handle_.get()) == TJERR_FATAL) {
        return std::nullopt;
    }
    ColourSum sum;
    sum.width = width;
    sum.height = height;
    sum.pixels = static_cast<std::uint64_t>(w) * h;
    for (std::size_t i = 0; i + 2 < rgb.size(); i += 3) {
        sum.r += rgb[i];
        sum.g += rgb[i + 1];
        sum.b += rgb[i + 2];
    }
    return sum;
}

bool looksLikePng(std::string_view bytes) {
    return bytes.size() >= 8 && bytes.substr(0, 8) == std::string_view("\x89PNG\r\n\x1a\n", 8);
}

} // namespace dmsd::emulator
