#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "pipeline/frame_ring.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

CapturedSample entry(std::uint64_t id) {
    CapturedSample sample;
    sample.frameId = id;
    sample.ptsS = static_cast<double>(id) / 10.0;
    return sample;
}

GstSample* newSample() {
    REQUIRE(ensureGstreamer().empty());
    GstBuffer* buffer = gst_buffer_new_allocate(nullptr, 16, nullptr);
    GstSample* sample = gst_sample_new(buffer, nullptr, nullptr, nullptr);
    gst_buffer_unref(buffer);
    return sample;
}

int refcount(GstSample* sample) {
    return GST_MINI_OBJECT_REFCOUNT_VALUE(sample);
}

} // namespace

TEST_CASE("ring keeps FIFO order and refuses when full", "[ring]") {
    FrameRing ring(3);
    REQUIRE(ring.capacity() == 3);
    CHECK(ring.tryPush(entry(1)));
    CHECK(ring.tryPush(entry(2)));
    CHECK(ring.tryPush(entry(3)));
    CHECK_FALSE(ring.tryPush(entry(4)));
    for (std::uint64_t id = 1; id <= 3; ++id) {
        auto popped = ring.tryPop();
        REQUIRE(popped);
        CHECK(popped->frameId == id);
        CHECK(popped->ptsS == Approx(static_cast<double>(id) / 10.0));
    }
    CHECK_FALSE(ring.tryPop());
}

TEST_CASE("ring holds references, never copies, and releases dropped and leftover ones", "[ring]") {
    GstSample* kept = newSample();
    GstSample* dropped = newSample();
    GstSample* leftover = newSample();
    {
        FrameRing ring(2);
        CapturedSample a;
        a.sample = GstSamplePtr::ref(kept);
        CapturedSample b;
        b.sample = GstSamplePtr::ref(leftover);
        CapturedSample c;
        c.sample = GstSamplePtr::ref(dropped);
        REQUIRE(ring.tryPush(std::move(a)));
        REQUIRE(ring.tryPush(std::move(b)));
        CHECK(refcount(kept) == 2);
        CHECK_FALSE(ring.tryPush(std::move(c)));
        CHECK(refcount(dropped) == 1); // the drop released its reference

        auto popped = ring.tryPop();
        REQUIRE(popped);
        CHECK(popped->sample.get() == kept); // the same object, not a copy
        CHECK(refcount(kept) == 2);
        popped.reset();
        CHECK(refcount(kept) == 1);
        CHECK(refcount(leftover) == 2);
    }
    CHECK(refcount(leftover) == 1); // the ring's destructor released it
    gst_sample_unref(kept);
    gst_sample_unref(dropped);
    gst_sample_unref(leftover);
}

TEST_CASE("ring pop waits for a frame, times out, and honours a latched wake", "[ring]") {
    FrameRing ring(4);
    CHECK_FALSE(ring.pop(20ms));

    ring.wakeConsumer(); // before the wait: must not be lost
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(ring.pop(10s));
    CHECK(std::chrono::steady_clock::now() - start < 5s);

    std::thread producer([&ring] { ring.tryPush(entry(7)); });
    auto popped = ring.pop(10s);
    producer.join();
    REQUIRE(popped);
    CHECK(popped->frameId == 7);
}

TEST_CASE("ring pushWait blocks until there is room, or until cancelled", "[ring]") {
    FrameRing ring(1);
    std::atomic<bool> cancel{false};
    REQUIRE(ring.tryPush(entry(1)));
    std::atomic<bool> pushed{false};
    std::thread producer([&] { pushed = ring.pushWait(entry(2), cancel); });
    auto first = ring.pop(10s);
    REQUIRE(first);
    CHECK(first->frameId == 1);
    auto second = ring.pop(10s);
    producer.join();
    REQUIRE(second);
    CHECK(second->frameId == 2);
    CHECK(pushed);

    REQUIRE(ring.tryPush(entry(3)));
    std::thread cancelled([&] { pushed = ring.pushWait(entry(4), cancel, 5ms); });
    cancel = true;
    ring.wakeProducer();
    cancelled.join();
    CHECK_FALSE(pushed);
}

TEST_CASE("ring two-thread stress: lossless with back-pressure", "[ring][stress]") {
    // Every few items one side sleeps on the other: keep it short on loaded machines.
    constexpr std::uint64_t kCount = 20000;
    FrameRing ring(8);
    std::atomic<bool> cancel{false};
    std::thread producer([&] {
        for (std::uint64_t id = 1; id <= kCount; ++id) {
            ring.pushWait(entry(id), cancel, 1ms);
        }
    });
    std::uint64_t expected = 1;
    bool inOrder = true;
    while (expected <= kCount) {
        auto popped = ring.pop(1s);
        if (!popped) {
            break;
        }
        inOrder = inOrder && popped->frameId == expected;
        ++expected;
    }
    producer.join();
    CHECK(inOrder);
    CHECK(expected == kCount + 1);
}

TEST_CASE("ring two-thread stress: drops are counted, delivered frames stay in order",
          "[ring][stress]") {
    constexpr std::uint64_t kCount = 200000;
    FrameRing ring(4);
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<bool> done{false};
    std::thread producer([&] {
        for (std::uint64_t id = 1; id <= kCount; ++id) {
            if (!ring.tryPush(entry(id))) {
                ++dropped;
            }
        }
        done = true;
        ring.wakeConsumer();
    });
    std::uint64_t received = 0;
    std::uint64_t last = 0;
    bool increasing = true;
    for (;;) {
        auto popped = ring.pop(100ms);
        if (popped) {
            increasing = increasing && popped->frameId > last;
            last = popped->frameId;
            ++received;
            continue;
        }
        if (done) {
            while (auto rest = ring.tryPop()) {
                increasing = increasing && rest->frameId > last;
                last = rest->frameId;
                ++received;
            }
            break;
        }
    }
    producer.join();
    CHECK(increasing);
    CHECK(received + dropped == kCount);
    CHECK(received > 0);
}
