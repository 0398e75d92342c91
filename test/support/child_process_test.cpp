#include <csignal>

#include <catch2/catch.hpp>

#include "test/support/child_process.h"

using namespace dmsd::test;
using namespace std::chrono_literals;

TEST_CASE("ChildProcess reads lines, passes environment and reports the exit code") {
    ChildProcess child(ChildProcess::Options{
        {"sh", "-c", "echo one; echo \"$DMSD_X\"; exit 3"}, {{"DMSD_X", "two"}}, false, false});
    CHECK(child.readLine(5s) == "one");
    CHECK(child.readLine(5s) == "two");
    CHECK_FALSE(child.readLine(5s).has_value());
    CHECK(child.wait(5s) == 3);
}

TEST_CASE("ChildProcess times out on a silent child and terminates it") {
    ChildProcess child(std::vector<std::string>{"sleep", "30"});
    CHECK_FALSE(child.readLine(50ms).has_value());
    CHECK(child.running());
    CHECK(child.terminate(2s) == 128 + SIGTERM);
}

TEST_CASE("runCommand captures stdout and stderr") {
    auto [code, out] = runCommand({"sh", "-c", "echo out; echo err >&2; exit 1"});
    CHECK(code == 1);
    CHECK(out.find("out") != std::string::npos);
    CHECK(out.find("err") != std::string::npos);
}

TEST_CASE("ChildProcess fails clearly for a missing program") {
    CHECK_THROWS_WITH(ChildProcess(std::vector<std::string>{"/nonexistent/dmsd-test-program"}),
                      Catch::Contains("cannot start /nonexistent/dmsd-test-program"));
}
