#include <catch2/catch.hpp>

#include "base/latency_window.h"

using namespace dmsd;

TEST_CASE("nearest-rank percentiles over the last N samples", "[base][latency]") {
    LatencyWindow window(4);
    CHECK(window.percentile(50) == 0.0);
    for (double sample : {10.0, 20.0, 30.0, 40.0}) {
        window.add(sample);
    }
    CHECK(window.percentile(0) == 10.0);
    CHECK(window.percentile(50) == 20.0);
    CHECK(window.percentile(75) == 30.0);
    CHECK(window.percentile(100) == 40.0);
    // The fifth sample replaces the oldest.
    window.add(50.0);
    CHECK(window.size() == 4);
    CHECK(window.percentile(0) == 20.0);
    CHECK(window.percentile(100) == 50.0);
}
