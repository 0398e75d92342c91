#pragma once

/// \file
/// glibc malloc settings for the frame and request path.
///
/// Each analysed sequence allocates a few buffers of 100-500 kB (JPEG bytes,
/// their base64, one request body per analysis). Above glibc's default mmap
/// threshold (128 kB, raised dynamically only after a first free) every one of
/// them is a fresh mmap: page faults and zeroed pages for each request, about
/// a quarter of the daemon's CPU per sequence (docs/performance.md). Keeping
/// them on the heap and letting freed space be reused costs a bounded amount
/// of memory (at most kTrimThreshold of free heap kept per arena).

#include <cstddef>

namespace dmsd {

inline constexpr std::size_t kMmapThreshold = 1 << 20; ///< 1 MiB: request bodies stay on the heap
inline constexpr std::size_t kTrimThreshold = 8 << 20; ///< 8 MiB of free heap kept for reuse

/// Applies the settings above (mallopt). Call once, early in main(), before
/// threads start. Returns false if glibc refused one of them (not fatal).
bool tuneAllocator();

} // namespace dmsd
