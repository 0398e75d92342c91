#include <catch2/catch.hpp>

#include "base/text.h"

using namespace dmsd;

TEST_CASE("edit distance and near misses", "[base][suggest]") {
    CHECK(editDistance("fps", "fps") == 0);
    CHECK(editDistance("fsp", "fps") == 1); // transposition
    CHECK(editDistance("fp", "fps") == 1);
    CHECK(editDistance("FPS", "fps") == 0);
    CHECK(editDistance("kitten", "sitting") == 3);
    CHECK(editDistance("", "abc") == 3);
    const std::vector<std::string> keys = {"source", "width", "height", "fps"};
    CHECK(nearMiss("fsp", keys) == "fps");
    CHECK(nearMiss("widht", keys) == "width");
    CHECK(nearMiss("hieght", keys) == "height");
    CHECK(nearMiss("sourse", keys) == "source");
    CHECK_FALSE(nearMiss("colour", keys));
    CHECK_FALSE(nearMiss("x", keys));
    CHECK(nearMiss("maxinflight", {"max_in_flight", "model"}) == "max_in_flight");
    CHECK(nearMiss("DROWSINESS", {"drowsiness", "distraction"}) == "drowsiness");
}
