#include <boost/json.hpp>
#include <catch2/catch.hpp>

#include "test/emulator/go_compat.h"

using namespace dmsd::emulator;
namespace json = boost::json;

TEST_CASE("goMarshal writes compact JSON like Go's encoding/json") {
    json::object o{{"a", "<b>&"},   {"n", 0.9},       {"i", 2},    {"big", 1e21},
                   {"small", 1e-7}, {"whole", 100.0}, {"t", true}, {"z", nullptr}};
    CHECK(
        goMarshal(o) ==
        R"({"a":"\u003cb\u003e\u0026","n":0.9,"i":2,"big":1e+21,"small":1e-7,"whole":100,"t":true,"z":null})");
    CHECK(goMarshal(json::string("<"), false) == R"("<")");
    CHECK(goMarshal(json::string("line\nsep\xE2\x80\xA8")) == R"("line\nsep\u2028")");
    CHECK(goMarshal(json::string("\x01")) == R"("\u0001")");
    CHECK(goMarshal(json::string("bad\xFF")) == R"("bad\ufffd")");
}

TEST_CASE("decodeBase64Std reports Go's error offsets") {
    std::string out;
    CHECK(decodeBase64Std("QUJD", out).ok);
    CHECK(out == "ABC");
    CHECK(decodeBase64Std("QUI=", out).ok);
    CHECK(out == "AB");
    CHECK(decodeBase64Std("QQ==", out).ok);
    CHECK(out == "A");
    CHECK(decodeBase64Std("QU\nJD", out).ok);
    CHECK(out == "ABC");
    auto dataUri = decodeBase64Std("data:image/jpeg;base64,QUJD", out);
    CHECK_FALSE(dataUri.ok);
    CHECK(dataUri.errorByte == 4);
    auto unpadded = decodeBase64Std("QUJDQQ", out);
    CHECK_FALSE(unpadded.ok);
    CHECK(unpadded.errorByte == 4);
    CHECK_FALSE(decodeBase64Std("QU-_", out).ok);
    CHECK_FALSE(decodeBase64Std("QUI=QUJD", out).ok);
}

TEST_CASE("parseGoDuration follows time.ParseDuration") {
    std::string error;
    CHECK(parseGoDuration("5m", error) == std::chrono::minutes(5));
    CHECK(parseGoDuration("1h30m", error) == std::chrono::minutes(90));
    CHECK(parseGoDuration("300ms", error) == std::chrono::milliseconds(300));
    CHECK(parseGoDuration("-1m", error) == std::chrono::minutes(-1));
    CHECK(parseGoDuration("0", error) == std::chrono::nanoseconds(0));
    CHECK_FALSE(parseGoDuration("-1", error));
    CHECK(error == "time: missing unit in duration \"-1\"");
    CHECK_FALSE(parseGoDuration("1x", error));
    CHECK(error == "time: unknown unit \"x\" in duration \"1x\"");
    CHECK_FALSE(parseGoDuration("", error));
}

TEST_CASE("rfc3339Nano trims trailing zeros") {
    using namespace std::chrono;
    system_clock::time_point t{seconds(1700000000) + milliseconds(120)};
    CHECK(rfc3339Nano(t) == "2023-11-14T22:13:20.12Z");
    CHECK(rfc3339Nano(system_clock::time_point{seconds(1700000000)}) == "2023-11-14T22:13:20Z");
}

TEST_CASE("goJsonSyntaxError gives Go decoder texts") {
    CHECK(goJsonSyntaxError(R"({"a":1})").empty());
    CHECK(goJsonSyntaxError(R"({"a":1} trailing)").empty()); // a json.Decoder stops after one value
    CHECK(goJsonSyntaxError("x") == "invalid character 'x' looking for beginning of value");
    CHECK(goJsonSyntaxError("{x") ==
          "invalid character 'x' looking for beginning of object key string");
    CHECK(goJsonSyntaxError(R"({"a" 1})") == "invalid character '1' after object key");
    CHECK(goJsonSyntaxError(R"({"a":1 "b"})") ==
          "invalid character '\"' after object key:value pair");
    CHECK(goJsonSyntaxError("[1,]") == "invalid character ']' looking for beginning of value");
    CHECK(goJsonSyntaxError(R"({"a":tru})") ==
          "invalid character '}' in literal true (expecting 'e')");
    CHECK(goJsonSyntaxError(R"({"a":)") == "unexpected EOF");
}
