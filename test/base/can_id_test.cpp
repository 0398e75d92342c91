#include <catch2/catch.hpp>

#include "base/can_id.h"

using namespace dmsd;

TEST_CASE("CAN ids: hex or decimal", "[base][can]") {
    CHECK(parseCanId("0x6D0") == 0x6D0u);
    CHECK(parseCanId("0x6d0") == 0x6D0u);
    CHECK(parseCanId("0X7FF") == 0x7FFu);
    CHECK(parseCanId("1744") == 1744u);
    CHECK(parseCanId("0") == 0u);
    CHECK(parseCanId("0x800") == 0x800u); // parsed; the 11-bit range is the loader's check
    CHECK(parseCanId("4294967295") == 4294967295u);
    for (const char* text :
         {"", "0x", "x6D0", "-1", "6D0", "0x6G0", "1.5", "4294967296", "0x100000000", " 1", "+1"}) {
        INFO(text);
        CHECK_FALSE(parseCanId(text));
    }
    CHECK(formatCanId(0x6D0) == "0x6D0");
    CHECK(formatCanId(0x12) == "0x012");
}
