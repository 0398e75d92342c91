#include <filesystem>
#include <fstream>
#include <string>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

// Runs the real `dmsd check-config`, as an OTA agent or a technician would.

namespace {

std::pair<int, std::string> checkConfig(std::vector<std::string> args) {
    args.insert(args.begin(), {DMSD_BINARY, "check-config"});
    return dmsd::test::runCommand(args, std::chrono::seconds(30));
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << text;
}

} // namespace

TEST_CASE("check-config accepts every shipped configuration", "[config][cli]") {
    std::vector<std::filesystem::path> files = {DMSD_SOURCE_DIR "/configs/dmsd.yaml"};
    for (const auto& entry :
         std::filesystem::directory_iterator(DMSD_SOURCE_DIR "/configs/examples")) {
        if (entry.path().extension() == ".yaml") {
            files.push_back(entry.path());
        }
    }
    REQUIRE(files.size() >= 4);
    for (const auto& file : files) {
        const auto [code, output] = checkConfig({file.string()});
        INFO(file << "\n" << output);
        CHECK(code == 0);
        CHECK(output.starts_with("configuration valid: version \""));
        CHECK(std::count(output.begin(), output.end(), '\n') == 1);
    }
}

TEST_CASE("check-config exit codes and messages", "[config][cli]") {
    dmsd::test::TempDir dir("dmsd-check-config");
    const auto main = dir / "dmsd.yaml";
    writeFile(main, "version: ota-1\ncapture:\n  fps: 10\n");
    writeFile(dir / "conf.d/50-fleet.yaml", "llm:\n  mode: combined\n");

    auto [code, output] = checkConfig({main.string()});
    INFO(output);
    CHECK(code == 0);
    CHECK(output == "configuration valid: version \"ota-1\", source \"v4l2:/dev/video0\", model "
                    "\"llava:7b-v1.6-mistral-q2_K\" at http://127.0.0.1:11434, mode combined; "
                    "files: " +
                        main.string() + ", " + (dir / "conf.d/50-fleet.yaml").string() + "\n");

    // A new drop-in checked before it is renamed into conf.d.
    writeFile(dir / "incoming.yaml", "capture:\n  fps: 0\nllm:\n  url: ftp://x\n");
    std::tie(code, output) = checkConfig({main.string(), (dir / "incoming.yaml").string()});
    CHECK(code == 1);
    CHECK(output.find((dir / "incoming.yaml").string() + ":2:8: capture.fps: 0 is out of range "
                                                         "(accepted: 1..120)\n") !=
          std::string::npos);
    CHECK(output.find((dir / "incoming.yaml").string() + ":4:8: llm.url: ") != std::string::npos);
    CHECK(output.find("dmsd check-config: configuration invalid (2 errors in 3 files)") !=
          std::string::npos);

    writeFile(dir / "broken.yaml", "capture: [\n");
    std::tie(code, output) = checkConfig({(dir / "broken.yaml").string()});
    CHECK(code == 1);
    CHECK(output.starts_with((dir / "broken.yaml").string() + ":"));
    CHECK(output.find("YAML syntax error") != std::string::npos);

    std::tie(code, output) = checkConfig({(dir / "missing.yaml").string()});
    CHECK(code == 1);
    CHECK(output.find("missing.yaml: cannot open: No such file or directory") != std::string::npos);

    std::tie(code, output) = checkConfig({});
    CHECK(code == 2);
    CHECK(output.find("usage: dmsd check-config") != std::string::npos);

    std::tie(code, output) = checkConfig({"--bogus", main.string()});
    CHECK(code == 2);

    std::tie(code, output) = checkConfig({"--print", main.string()});
    CHECK(code == 0);
    CHECK(output.find("\"mode\": \"combined\"") != std::string::npos);
}

TEST_CASE("check-config refuses files that are not files, at once", "[config][cli]") {
    dmsd::test::TempDir dir("dmsd-check-config-fifo");
    const auto main = dir / "dmsd.yaml";
    writeFile(main, "version: ota-1\n");
    const auto fifo = dir / "incoming.yaml";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // Before: check-config blocked in the open (no writer) until killed; runCommand
    // would fail the test at its 30 s limit.
    auto [code, output] = checkConfig({fifo.string()});
    INFO(output);
    CHECK(code == 1);
    CHECK(output.find(fifo.string() + ": is a FIFO (named pipe), not a regular file") !=
          std::string::npos);
    std::tie(code, output) = checkConfig({main.string(), fifo.string()});
    CHECK(code == 1);
    // A FIFO among the drop-ins is refused the same way (a reload is rejected).
    std::filesystem::create_directories(dir / "conf.d");
    REQUIRE(::mkfifo((dir / "conf.d/50-pipe.yaml").c_str(), 0600) == 0);
    std::tie(code, output) = checkConfig({main.string()});
    CHECK(code == 1);
    CHECK(output.find("50-pipe.yaml: is a FIFO (named pipe), not a regular file; a drop-in must "
                      "be a regular file") != std::string::npos);
}

TEST_CASE("check-config never prints a secret it was given", "[config][cli]") {
    dmsd::test::TempDir dir("dmsd-check-config-secret");
    const auto main = dir / "dmsd.yaml";
    writeFile(main, "llm:\n  url: \"http://fleet:Pa55word@127.0.0.1:11434\"\n");
    writeFile(dir / "x.yaml", "llm:\n  url: \"fleet:Pa55word@127.0.0.1:11434\"\n  model: "
                              "\"m?token=Pa55word\"\n  mode: \"token=Pa55word\"\n");
    auto [code, output] = checkConfig({main.string(), (dir / "x.yaml").string()});
    INFO(output);
    CHECK(code == 1);
    CHECK(output.find("llm.url") != std::string::npos);
    CHECK(output.find("***") != std::string::npos);
    CHECK(output.find("Pa55word") == std::string::npos);
}

TEST_CASE("check-config: values that are not UTF-8 text are refused with file:line:column",
          "[config][cli]") {
    dmsd::test::TempDir dir("dmsd-check-config-utf8");
    const auto main = dir / "dmsd.yaml";
    writeFile(main, "version: \"fleet\xff-1\"\nllm:\n  model: \"llava\x1b[2J\"\n");
    auto [code, output] = checkConfig({main.string()});
    INFO(output);
    CHECK(code == 1);
    CHECK(output.find(main.string() + ":1:10: version: byte 0xFF is not valid UTF-8") !=
          std::string::npos);
    CHECK(output.find(main.string() + ":3:10: llm.model: control character U+001B is not "
                                      "allowed") != std::string::npos);
}

TEST_CASE("check-config warns, and still accepts, a configuration whose context budget cannot fit",
          "[config][cli]") {
    dmsd::test::TempDir dir("dmsd-check-config");
    const auto main = dir / "dmsd.yaml";
    // The shipped defaults fit: 4 x 1728 (llava-1.6 at 336x252) + the prompt + 256 <= 8192.
    writeFile(main, "version: budget-1\n");
    auto [code, output] = checkConfig({main.string()});
    CHECK(code == 0);
    CHECK(output.find("warning") == std::string::npos);

    // Full-size 640x480 images: 2880 tokens each with llava-1.6.
    writeFile(dir / "full.yaml", "encode: { max_side: 0 }\n");
    std::tie(code, output) = checkConfig({main.string(), (dir / "full.yaml").string()});
    INFO(output);
    CHECK(code == 0);
    CHECK(output.find("configuration valid: version \"budget-1\"") != std::string::npos);
    CHECK(output.find("dmsd check-config: warning: the context budget does not fit: 4 images of "
                      "640x480 x 2880 tokens (llava-1.6 (anyres)") != std::string::npos);
    CHECK(output.find("= 12736 tokens, beyond the context of 8192 (llm.options.num_ctx)") !=
          std::string::npos);
    CHECK(output.find("Fit: llm.options.num_ctx 8192 -> 12800") != std::string::npos);
    CHECK(output.find("cannot fit within") == std::string::npos); // num_ctx alone fits it

    // Frames x tokens beyond the ceiling: the fit would have to drop frames.
    writeFile(dir / "more.yaml", "encode: { max_side: 0 }\nsampling: { frames_per_sequence: 8 }\n");
    std::tie(code, output) = checkConfig({main.string(), (dir / "more.yaml").string()});
    CHECK(code == 0);
    CHECK(output.find("Fit: sampling.frames_per_sequence 8 -> 5, llm.options.num_ctx 8192 -> "
                      "15872") != std::string::npos);
    CHECK(output.find("warning: sampling.frames_per_sequence 8 x 2880 tokens per image cannot fit "
                      "within 16384 tokens (llm.context.max_num_ctx)") != std::string::npos);

    // A stated figure replaces the family's estimate.
    writeFile(dir / "stated.yaml", "llm: { context: { tokens_per_image: 100 } }\n"
                                   "encode: { max_side: 0 }\n");
    std::tie(code, output) = checkConfig({main.string(), (dir / "stated.yaml").string()});
    CHECK(code == 0);
    CHECK(output.find("warning") == std::string::npos);
}
