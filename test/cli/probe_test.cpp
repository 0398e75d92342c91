#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

// Runs the real `dmsd probe` against the Ollama emulator (both of its APIs),
// as a technician tuning a new box would.

using namespace std::chrono_literals;

namespace {

class Emulator {
public:
    explicit Emulator(std::vector<std::string> args) : process_(argv(std::move(args))) {
        auto line = process_.waitForLine(
            [](const std::string& l) { return l.starts_with("listening on "); }, 20s);
        REQUIRE(line);
        url_ = line->substr(std::string("listening on ").size());
    }
    const std::string& url() const { return url_; }

private:
    static std::vector<std::string> argv(std::vector<std::string> extra) {
        std::vector<std::string> args{DMSD_OLLAMA_EMULATOR, "--port", "0", "--preloaded"};
        args.insert(args.end(), extra.begin(), extra.end());
        return args;
    }
    dmsd::test::ChildProcess process_;
    std::string url_;
};

std::string writeConfig(const dmsd::test::TempDir& dir, const std::string& url,
                        const std::string& extra = "") {
    const auto path = dir / "dmsd.yaml";
    std::ofstream(path) << "version: probe-test\nvision: { enabled: false }\nllm: { url: \"" << url
                        << "\"" << extra << " }\n";
    return path.string();
}

std::pair<int, std::string> runDmsd(std::vector<std::string> args) {
    args.insert(args.begin(), DMSD_BINARY);
    return dmsd::test::runCommand(args, 120s);
}

bool has(const std::string& text, const std::string& part) {
    return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("probe: four slots, four images, tokens measured, a drop-in check-config accepts",
          "[cli][probe]") {
    dmsd::test::TempDir dir("dmsd-probe");
    Emulator emulator({"--slots", "4", "--latency-ms", "500", "--tokens-per-image", "576"});
    const std::string config = writeConfig(dir, emulator.url(), ", options: { num_ctx: 2048 }");
    const auto dropIn = dir / "60-probe.yaml";
    const auto [code, output] = runDmsd({"probe", "--config", config, "--write", dropIn.string()});
    INFO(output);
    REQUIRE(code == 0);
    CHECK(has(output, "largest image count: 4\n"));
    CHECK(has(output, "tokens per image: 576\n"));
    // Four images (4 x 576 + text) do not fit num_ctx 2048: the probe asked
    // again with a context that fits, and recommends it: 4 x 576 + 185 of text
    // + 256 to answer = 2745, rounded up to 256 as the daemon's fit rounds.
    CHECK(has(output, "num_ctx was raised to 2816 where 2048 did not hold the prompt"));
    CHECK(has(output, "  frames_per_sequence: 4\n"));
    CHECK(has(output, "  mode: parallel\n"));
    CHECK(has(output, "    num_ctx: 2816\n"));
    // The drop-in is what was printed, and a valid part of the configuration.
    std::ifstream in(dropIn);
    const std::string written((std::istreambuf_iterator<char>(in)), {});
    CHECK(has(output, written));
    const auto [checked, checkOutput] = runDmsd({"check-config", config, dropIn.string()});
    INFO(checkOutput);
    CHECK(checked == 0);
    CHECK(has(checkOutput, "mode parallel"));
}

TEST_CASE("probe: one slot is asked one combined question, one image per question is the mosaic",
          "[cli][probe]") {
    dmsd::test::TempDir dir("dmsd-probe-small");
    Emulator emulator({"--slots", "1", "--latency-ms", "200", "--max-images", "1"});
    const auto [code, output] = runDmsd({"probe", "--config", writeConfig(dir, emulator.url())});
    INFO(output);
    REQUIRE(code == 0);
    CHECK(has(output, "largest image count: 1\n"));
    CHECK(has(output, "  layout: mosaic\n"));
    CHECK(has(output, "  mode: combined\n")); // concurrent questions only queue at one slot
}

TEST_CASE("probe: the OpenAI API keeps the server's context, a dead server is exit 3",
          "[cli][probe]") {
    dmsd::test::TempDir dir("dmsd-probe-openai");
    {
        Emulator emulator({"--slots", "4", "--latency-ms", "100", "--tokens-per-image", "300"});
        const auto [code, output] =
            runDmsd({"probe", "--config", writeConfig(dir, emulator.url(), ", api: openai")});
        INFO(output);
        REQUIRE(code == 0);
        CHECK(has(output, "(llm.api openai)"));
        CHECK(has(output, "tokens per image: 300\n"));
        CHECK_FALSE(has(output, "num_ctx"));
    }
    const auto [code, output] =
        runDmsd({"probe", "--config", writeConfig(dir, "http://127.0.0.1:9")});
    INFO(output);
    CHECK(code == 3);
    CHECK(has(output, "127.0.0.1:9"));
}
