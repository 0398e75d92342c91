#include <cmath>
#include <limits>

#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "base/json.h"

using namespace dmsd;
namespace json = boost::json;

TEST_CASE("numbers are written as people write them, never in exponent form", "[base][json]") {
    CHECK(writeJson(json::value(0.9)) == "0.9");
    CHECK(writeJson(json::value(4.0)) == "4.0");
    CHECK(writeJson(json::value(0.02)) == "0.02");
    CHECK(writeJson(json::value(-2.5)) == "-2.5");
    CHECK(writeJson(json::value(1e-7)) == "0.0000001");
    CHECK(writeJson(json::value(1.5e20)) == "150000000000000000000");
    CHECK(writeJson(json::value(std::nan(""))) == "null");
    CHECK(writeJson(json::value(std::numeric_limits<double>::infinity())) == "null");
    CHECK(writeJson(json::value(std::int64_t{-3})) == "-3");
    CHECK(writeJson(json::value(std::uint64_t{18446744073709551615ULL})) == "18446744073709551615");
    // Boost's own serialiser is what this replaces.
    CHECK(json::serialize(json::value(0.9)) == "9E-1");
}

TEST_CASE("whatever is written reads back as the same value", "[base][json]") {
    const json::value value = {{"kind", "DROWSINESS"},
                               {"confidence", 0.8300000000000001},
                               {"list", json::array{1, 2.5, nullptr, true, "a\"b\n"}},
                               {"nested", {{"x", 1e300}, {"empty", json::object{}}}}};
    CHECK(json::parse(writeJson(value)) == value);
    CHECK(json::parse(writeJsonPretty(value)) == value);
}

TEST_CASE("strings are escaped by Boost.JSON", "[base][json]") {
    CHECK(writeJson(json::value("tab\tquote\"back\\slash")) == R"("tab\tquote\"back\\slash")");
    std::string out;
    appendJsonString(out, std::string_view("\x01", 1));
    CHECK(out == R"("\u0001")");
}

TEST_CASE("pretty output indents objects and keeps arrays on one line", "[base][json]") {
    const json::value value = {{"a", 1}, {"b", {{"c", json::array{1, 2}}, {"d", json::object{}}}}};
    CHECK(writeJsonPretty(value) == "{\n"
                                    "  \"a\": 1,\n"
                                    "  \"b\": {\n"
                                    "    \"c\": [1,2],\n"
                                    "    \"d\": {}\n"
                                    "  }\n"
                                    "}");
}
