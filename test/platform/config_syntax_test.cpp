#include <catch2/catch.hpp>

#include "platform/config_syntax.h"

using namespace dmsd;
using namespace dmsd::config;
using namespace std::chrono_literals;

TEST_CASE("durations: seconds as numbers or with a unit", "[config][duration]") {
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

TEST_CASE("durations: invalid spellings are rejected", "[config][duration]") {
    for (const char* text :
         {"",    "s",   "ms",   "-1",  "-2s",    "2x",    "2 s",   " 2s",  "2sec",
          "2S",  "1.s", ".5s",  "1e3", "0.0001", "1.5ms", "2h30m", "721h", "99999999999999",
          "inf", "nan", "0x10", "1,5s"}) {
        INFO(text);
        CHECK_FALSE(parseDuration(text));
    }
}

TEST_CASE("durations format to their shortest exact spelling", "[config][duration]") {
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

TEST_CASE("CAN ids: hex or decimal", "[config][can]") {
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

TEST_CASE("model server URLs: http(s)://host[:port] only", "[config][url]") {
    for (const char* url : {"http://127.0.0.1:11434", "http://localhost", "https://gpu.local:443",
                            "http://[::1]:11434", "http://ollama:11434/", "HTTP://host:1"}) {
        INFO(url);
        CHECK_FALSE(urlProblem(url));
    }
    CHECK(urlProblem("127.0.0.1:11434") ==
          "\"127.0.0.1:11434\" has no scheme; write it as http://127.0.0.1:11434");
    CHECK(urlProblem("ftp://host") ==
          "\"ftp://host\": scheme \"ftp\" is not supported, use http or https");
    CHECK(urlProblem("http://host:0") ==
          "\"http://host:0\": port \"0\" is not a number in 1..65535");
    CHECK(urlProblem("http://host:70000")->find("port \"70000\"") != std::string::npos);
    CHECK(urlProblem("http://host:")->find("port \"\"") != std::string::npos);
    CHECK(urlProblem("http://host/api") ==
          "\"http://host/api\": a path (\"/api\") is not allowed; requests go to URL/api/chat");
    CHECK(urlProblem("http://user:pw@host") ==
          "\"http://user:pw@host\": user info is not supported");
    CHECK(urlProblem("http://host?x=1") ==
          "\"http://host?x=1\": a query or fragment is not allowed");
    CHECK(urlProblem("http://host#f"));
    CHECK(urlProblem("http:///x"));
    CHECK(urlProblem("http://ho st"));
}

TEST_CASE("capture sources: known schemes with a non-empty rest", "[config][source]") {
    for (const char* source : {"v4l2:/dev/video0", "file:/tmp/a.mp4", "file:relative.mkv",
                               "test:ball", "pipeline:videotestsrc ! video/x-raw,format=I420"}) {
        INFO(source);
        CHECK_FALSE(sourceProblem(source));
    }
    CHECK(sourceProblem("rtsp://cam/stream") == "unknown source scheme \"rtsp\"");
    CHECK(sourceProblem("v4l:/dev/video0") ==
          "unknown source scheme \"v4l\"; did you mean 'v4l2:'?");
    CHECK(sourceProblem("/dev/video0") ==
          "\"/dev/video0\" has no scheme; did you mean 'v4l2:/dev/video0'?");
    CHECK(sourceProblem("video.mp4") ==
          "\"video.mp4\" has no scheme; did you mean 'file:video.mp4'?");
    CHECK(sourceProblem("v4l2:video0") ==
          "\"v4l2:video0\": v4l2 needs a device path such as v4l2:/dev/video0");
    CHECK(sourceProblem("file:")->find("file needs a path") != std::string::npos);
    CHECK(sourceProblem("test:")->find("test needs a pattern") != std::string::npos);
    CHECK(sourceProblem("pipeline:  ")->find("GStreamer launch description") != std::string::npos);
}

TEST_CASE("D-Bus bus: system, session or an address", "[config][dbus]") {
    for (const char* bus : {"system", "session", "unix:path=/run/dbus/system_bus_socket",
                            "unix:abstract=/tmp/dbus-x,guid=1234", "tcp:host=127.0.0.1,port=1",
                            "unix:path=/a;unix:path=/b", "autolaunch:"}) {
        INFO(bus);
        CHECK_FALSE(busProblem(bus));
    }
    CHECK(busProblem("sytem") ==
          "\"sytem\" is neither system, session nor a D-Bus address; did you mean 'system'?");
    CHECK(busProblem("user") == "\"user\" is neither system, session nor a D-Bus address");
    CHECK(busProblem("unix:path") ==
          "\"unix:path\" is not a D-Bus address: \"path\" is not key=value");
    CHECK(busProblem(":path=/x"));
    CHECK(busProblem("unix:=x"));
}

TEST_CASE("network interface names", "[config][can]") {
    CHECK_FALSE(interfaceProblem("can0"));
    CHECK_FALSE(interfaceProblem("vcan-test.1"));
    CHECK(interfaceProblem(""));
    CHECK(interfaceProblem("a-very-long-name0"));
    CHECK(interfaceProblem("can/0"));
    CHECK(interfaceProblem("can 0"));
    CHECK(interfaceProblem(".."));
}

TEST_CASE("edit distance and near misses", "[config][suggest]") {
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

TEST_CASE("SHA-256 matches the FIPS 180-4 test vectors", "[config][hash]") {
    CHECK(sha256Hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256Hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    CHECK(sha256Hex(std::string(1000000, 'a')) ==
          "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}
