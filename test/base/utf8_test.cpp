// base/utf8.h: what the configuration reader refuses, and the repair made at
// the output boundaries (D-Bus, journal, JSON).
#include <string>

#include <catch2/catch.hpp>

#include "base/json.h"
#include "base/utf8.h"

using namespace dmsd;

namespace {
const std::string kFffd = "\xEF\xBF\xBD";
}

TEST_CASE("utf8Problem accepts UTF-8 text and names the first bad byte", "[utf8]") {
    std::size_t offset = 99;
    CHECK_FALSE(
        utf8Problem("fleet-2026 \xC3\xA9t\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x9A\x97", {}, offset));
    CHECK_FALSE(utf8Problem("", {}, offset));

    auto problem = utf8Problem("ab\xFF"
                               "cd",
                               {}, offset);
    REQUIRE(problem);
    CHECK(offset == 2);
    CHECK_THAT(*problem, Catch::Contains("0xFF") && Catch::Contains("not valid UTF-8"));

    // Overlong, surrogate, beyond U+10FFFF, truncated sequences.
    for (const std::string bad : {"\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "x\xE2\x82"}) {
        INFO(bad.size());
        CHECK(utf8Problem(bad, {}, offset));
        CHECK_FALSE(isValidUtf8(bad));
    }
}

TEST_CASE("utf8Problem refuses control characters but those allowed", "[utf8]") {
    std::size_t offset = 0;
    auto escape = utf8Problem("v1\x1B[2J", {}, offset);
    REQUIRE(escape);
    CHECK(offset == 2);
    CHECK_THAT(*escape, Catch::Contains("U+001B"));
    CHECK(utf8Problem("a\x7F", {}, offset));
    CHECK(utf8Problem("a\xC2\x85", {}, offset)); // NEL, a C1 control
    CHECK(utf8Problem("two\nlines", {}, offset));
    CHECK_FALSE(utf8Problem("two\nlines\tand a tab", "\t\n", offset));
    CHECK(utf8Problem("carriage\rreturn", "\t\n", offset));
}

TEST_CASE("validUtf8 and safeText repair whatever came in", "[utf8]") {
    CHECK(validUtf8("fine \xC3\xA9") == "fine \xC3\xA9");
    CHECK(validUtf8("v\xFF\xFE-1") == "v" + kFffd + kFffd + "-1");
    CHECK(validUtf8("cut \xE2\x82") == "cut " + kFffd + kFffd);
    CHECK(isValidUtf8(validUtf8("\xC0\xAF\xED\xA0\x80\xF8")));
    // safeText: control characters too, but line feed and tab.
    CHECK(safeText("red\x1B[31m\r\nnext\tcol") == "red" + kFffd + "[31m" + kFffd + "\nnext\tcol");
    CHECK(safeText("\xC2\x9B") == kFffd);
}

TEST_CASE("JSON strings are valid UTF-8 whatever the text held", "[utf8][json]") {
    // Before: Boost.JSON copied the bytes, and the line was not valid JSON text.
    std::string out;
    appendJsonString(out, "yawn\xFF\x01");
    CHECK(out == "\"yawn" + kFffd + "\\u0001\"");
    CHECK(isValidUtf8(writeJson(boost::json::object{{"d\xFE", "\xE2\x28\xA1"}})));
}
