#include <catch2/catch.hpp>

#include "notify/settings.h"

using namespace dmsd;

TEST_CASE("D-Bus bus: system, session or an address", "[notify][dbus]") {
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

TEST_CASE("network interface names", "[notify][can]") {
    CHECK_FALSE(interfaceProblem("can0"));
    CHECK_FALSE(interfaceProblem("vcan-test.1"));
    CHECK(interfaceProblem(""));
    CHECK(interfaceProblem("a-very-long-name0"));
    CHECK(interfaceProblem("can/0"));
    CHECK(interfaceProblem("can 0"));
    CHECK(interfaceProblem(".."));
}
