#include <filesystem>
#include <fstream>

#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

#include "config/watcher.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;

namespace {

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
}

struct Fixture {
    test::TempDir dir{"dmsd-watch"};
    boost::asio::io_context io;
    std::vector<std::vector<std::string>> calls;
    ConfigWatcher watcher{io, dir / "dmsd.yaml", 50ms, [this](const std::vector<std::string>& f) {
                              calls.push_back(f);
                              io.stop();
                          }};
    Fixture() {
        writeFile(dir / "dmsd.yaml", "version: a\n");
        std::filesystem::create_directory(dir / "conf.d");
    }
    /// Runs the loop until a change is reported or \a limit passes.
    void runUntilChange(std::chrono::milliseconds limit) {
        io.restart();
        io.run_for(limit);
    }
};

} // namespace

TEST_CASE("a drop-in written under a temporary name and renamed in reloads exactly once") {
    Fixture f;
    REQUIRE(f.watcher.start().empty());
    {
        // The half-written temporary file must not trigger anything.
        std::ofstream tmp(f.dir / "conf.d" / ".50-fleet.yaml.tmp");
        tmp << "llm:\n  model: ";
        tmp.flush();
        tmp << "x\n";
    }
    f.runUntilChange(300ms);
    CHECK(f.calls.empty());
    std::filesystem::rename(f.dir / "conf.d" / ".50-fleet.yaml.tmp",
                            f.dir / "conf.d" / "50-fleet.yaml");
    f.runUntilChange(5s);
    REQUIRE(f.calls.size() == 1);
    CHECK(f.calls[0] == std::vector<std::string>{"conf.d/50-fleet.yaml"});
    // Nothing further arrives for the same rename.
    f.runUntilChange(300ms);
    CHECK(f.calls.size() == 1);
}

TEST_CASE("several files dropped together are debounced into one reload") {
    Fixture f;
    REQUIRE(f.watcher.start().empty());
    writeFile(f.dir / "conf.d" / "10-a.yaml", "version: b\n");
    writeFile(f.dir / "conf.d" / "20-b.yml", "version: c\n");
    writeFile(f.dir / "conf.d" / "notes.txt", "ignored\n");
    f.runUntilChange(5s);
    REQUIRE(f.calls.size() == 1);
    CHECK(f.calls[0] == std::vector<std::string>{"conf.d/10-a.yaml", "conf.d/20-b.yml"});
}

TEST_CASE("the main file closed after writing reloads, other files beside it do not") {
    Fixture f;
    REQUIRE(f.watcher.start().empty());
    writeFile(f.dir / "other.yaml", "x: 1\n");
    f.runUntilChange(300ms);
    CHECK(f.calls.empty());
    writeFile(f.dir / "dmsd.yaml", "version: d\n");
    f.runUntilChange(5s);
    REQUIRE(f.calls.size() == 1);
    CHECK(f.calls[0] == std::vector<std::string>{"dmsd.yaml"});
}

TEST_CASE("a conf.d created after start is watched too") {
    test::TempDir dir{"dmsd-watch"};
    writeFile(dir / "dmsd.yaml", "version: a\n");
    boost::asio::io_context io;
    std::vector<std::string> seen;
    ConfigWatcher watcher(io, dir / "dmsd.yaml", 50ms, [&](const std::vector<std::string>& files) {
        seen.insert(seen.end(), files.begin(), files.end());
        io.stop();
    });
    REQUIRE(watcher.start().empty());
    std::filesystem::create_directory(dir / "conf.d");
    io.run_for(5s); // reports the new directory
    CHECK(seen == std::vector<std::string>{"conf.d/"});
    seen.clear();
    writeFile(dir / "conf.d" / "50-x.yaml", "version: z\n");
    io.restart();
    io.run_for(5s);
    CHECK(seen == std::vector<std::string>{"conf.d/50-x.yaml"});
}

TEST_CASE("watching a missing directory is a clear error") {
    boost::asio::io_context io;
    ConfigWatcher watcher(io, "/nonexistent/dmsd/dmsd.yaml", 50ms, [](const auto&) {});
    CHECK(watcher.start().find("cannot watch /nonexistent/dmsd") == 0);
}

TEST_CASE("relevant() ignores temporary and non-YAML names") {
    CHECK(ConfigWatcher::relevant("50-fleet.yaml"));
    CHECK(ConfigWatcher::relevant("dmsd.yml"));
    CHECK_FALSE(ConfigWatcher::relevant(".50-fleet.yaml"));
    CHECK_FALSE(ConfigWatcher::relevant("50-fleet.yaml.tmp"));
    CHECK_FALSE(ConfigWatcher::relevant("50-fleet.yaml~"));
}
