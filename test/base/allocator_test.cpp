#include <cstdlib>
#include <malloc.h>

#include <catch2/catch.hpp>

#include "base/allocator.h"

#if defined(__SANITIZE_ADDRESS__)
#define DMSD_OWN_MALLOC 1 // ASan replaces malloc: mallopt and mallinfo2 do not apply
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DMSD_OWN_MALLOC 1
#endif
#endif

TEST_CASE("after tuneAllocator a request-body-sized buffer comes from the heap, not mmap",
          "[allocator]") {
#ifdef DMSD_OWN_MALLOC
    SUCCEED("sanitizer build: glibc malloc is not in use");
#else
    // 900 kB: above glibc's default mmap threshold (128 kB, raised only after
    // a block that large has been freed, which this process has not done),
    // below dmsd's 1 MiB. Without tuneAllocator it would be mmapped.
    constexpr std::size_t kBlock = 900 * 1024;
    REQUIRE(dmsd::tuneAllocator());
    const std::size_t mapped = mallinfo2().hblkhd;
    void* body = std::malloc(kBlock);
    REQUIRE(body != nullptr);
    CHECK(mallinfo2().hblkhd == mapped);
    std::free(body);
    // Beyond the threshold, blocks are still mmapped (and returned at free).
    void* large = std::malloc(2 * dmsd::kMmapThreshold);
    REQUIRE(large != nullptr);
    CHECK(mallinfo2().hblkhd >= mapped + 2 * dmsd::kMmapThreshold);
    std::free(large);
#endif
}
