#pragma once

/// \file
/// Mean colour of JPEG images, decoded with TurboJPEG at 1/8 scale (the DCT
/// DC terms, so the mean is that of the full image at a fraction of the cost).

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "test/emulator/answer_script.h"

namespace dmsd::emulator {

/// Sum of the RGB values of an image's decoded (scaled) pixels.
struct ColourSum {
    double r = 0, g = 0, b = 0;
    std::uint64_t pixels = 0;
    int width = 0;  ///< of the full image
    int height = 0; ///< of the full image
};

/// Owns one TurboJPEG decompressor (not thread-safe; the emulator has one thread).
class JpegProbe {
public:
    JpegProbe();
    /// Decodes \a jpeg; nullopt when it is not a JPEG TurboJPEG can decode.
    std::optional<ColourSum> colourSum(std::string_view jpeg);

private:
    struct Deleter {
        void operator()(void* handle) const;
    };
    std::unique_ptr<void, Deleter> handle_;
};

/// True if \a bytes start like a PNG (accepted by Ollama; not decoded here).
bool looksLikePng(std::string_view bytes);

} // namespace dmsd::emulator
