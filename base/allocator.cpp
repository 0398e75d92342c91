#include "base/allocator.h"

#include <malloc.h>

namespace dmsd {

bool tuneAllocator() {
    const bool mmap = ::mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold)) == 1;
    const bool trim = ::mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimThreshold)) == 1;
    return mmap && trim;
}

} // namespace dmsd
