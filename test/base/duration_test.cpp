#include <catch2/catch.hpp>

#include "base/duration.h"

using namespace dmsd;
using namespace std::chrono_literals;

TEST_CASE("durations: seconds as numbers or with a unit", "[base][duration]") {
    CHECK(parseDuration("2") == Millis{2000});
    CHECK(parseDuration("0.5") == Millis{500});
    CHECK(parseDuration("0") == Millis{0});
    CHECK(parseDuration("500ms") == Millis{500});
    CHECK(parseDuration("2s") == Millis{2000});
    CHECK(parseDuration("1.5s") == Millis{1500});
    CHECK(parseDuration("0.1s") == Millis{100});
    CHECK(parseDuration("5m") == Millis{300000});
    CHECK(parseDuration("1h") == Millis{3600000});
    CHECK(parseDuration("0.001") == Millis{1});
    CHECK(parseDuration("720h") == Millis{720LL * 3600000});
}

TEST_CASE("durations: invalid spellings are rejected", "[base][duration]") {
    for (const char* text :
         {"",    "s",   "ms",   "-1",  "-2s",    "2x",    "2 s",   " 2s",  "2sec",
          "2S",  "1.s", ".5s",  "1e3", "0.0001", "1.5ms", "2h30m", "721h", "99999999999999",
          "inf", "nan", "0x10", "1,5s"}) {
        INFO(text);
        CHECK_FALSE(parseDuration(text));
    }
}

TEST_CASE("durations format to their shortest exact spelling", "[base][duration]") {
    CHECK(formatDuration(0ms) == "0s");
    CHECK(formatDuration(500ms) == "500ms");
    CHECK(formatDuration(1500ms) == "1500ms");
    CHECK(formatDuration(2s) == "2s");
    CHECK(formatDuration(60s) == "1m");
    CHECK(formatDuration(5min) == "5m");
    CHECK(formatDuration(1h) == "1h");
    for (Millis value : {Millis{0}, Millis{1}, Millis{999}, Millis{1000}, Millis{61000},
                         Millis{5400000}, Millis{90000000}}) {
        CHECK(parseDuration(formatDuration(value)) == value);
    }
}
