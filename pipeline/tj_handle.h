#pragma once

/// \file
/// Move-only owner of a TurboJPEG handle (compressor or decompressor).

#include <utility>

#include <turbojpeg.h>

namespace dmsd {

class TjHandle final {
public:
    TjHandle() = default;
    explicit TjHandle(tjhandle handle) : handle_(handle) {}
    TjHandle(TjHandle&& other) noexcept : handle_(other.release()) {}
    TjHandle& operator=(TjHandle&& other) noexcept {
        reset(other.release());
        return *this;
    }
    TjHandle(const TjHandle&) = delete;
    TjHandle& operator=(const TjHandle&) = delete;
    ~TjHandle() { reset(); }

    static TjHandle compressor() { return TjHandle(tjInitCompress()); }
    static TjHandle decompressor() { return TjHandle(tjInitDecompress()); }

    [[nodiscard]] tjhandle release() { return std::exchange(handle_, nullptr); }
    void reset(tjhandle handle = nullptr) {
        if (handle_ != nullptr && handle_ != handle) {
            tjDestroy(handle_);
        }
        handle_ = handle;
    }
    tjhandle get() const { return handle_; }
    bool isValid() const { return handle_ != nullptr; }
    explicit operator bool() const { return isValid(); }

    /// TurboJPEG's message for the last error on this handle.
    const char* errorText() const { return tjGetErrorStr2(handle_); }

private:
    tjhandle handle_ = nullptr;
};

} // namespace dmsd
