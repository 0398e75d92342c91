// dmsd run with several model servers (llm.url a list), one of them dead from
// the start: the model is usable through the other, and GetStatus and the
// metrics file show the dead one set aside (docs/llm.md, "Several model servers").
#include <fstream>
#include <set>
#include <sstream>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "test/integration/harness.h"
#include "test/support/prometheus_text.h"

using namespace dmsd::test;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

constexpr Rgb kGreen{40, 180, 60};

std::string readFile(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

/// The keys of the first entry of `servers` in the documented `model` block
/// (docs/dbus.md, `<!-- example: getstatus-servers -->`).
std::set<std::string> documentedServerKeys() {
    const std::string doc = readFile(std::filesystem::path(DMSD_SOURCE_DIR) / "docs" / "dbus.md");
    const std::string marker = "<!-- example: getstatus-servers -->";
    const auto at = doc.find(marker);
    REQUIRE(at != std::string::npos);
    const auto open = doc.find("```json\n", at);
    const auto close = doc.find("```", open + 8);
    REQUIRE(open != std::string::npos);
    REQUIRE(close != std::string::npos);
    const json::value example = json::parse(doc.substr(open + 8, close - open - 8));
    std::set<std::string> keys;
    for (const auto& member : example.at("servers").as_array().at(0).as_object()) {
        keys.insert(std::string(member.key()));
    }
    return keys;
}

} // namespace

TEST_CASE("with one of two model servers dead from the start, the model is usable and the dead "
          "one is set aside") {
    Harness h;
    h.makeVideo({320, 240, 10, VideoContainer::Mp4H264, {{60.0, kGreen, true}}});
    h.startBus();
    h.startEmulator({"--slots", "2", "--latency-ms", "50"});
    // Port 1 on loopback: nobody listens there, a connection is refused at once.
    const std::string dead = "http://127.0.0.1:1";
    std::string config = h.baseConfig();
    const std::string one = fmt::format("url: \"{}\"", h.emulatorUrl());
    REQUIRE(config.find(one) != std::string::npos);
    config.replace(config.find(one), one.size(),
                   fmt::format("url: [\"{}\", \"{}\"]", dead, h.emulatorUrl()));
    const auto metricsFile = h.dir() / "textfile" / "dmsd.prom";
    std::filesystem::create_directories(metricsFile.parent_path());
    h.writeConfig(config + fmt::format("metrics:\n  textfile: \"{}\"\n  interval: 1s\n",
                                       metricsFile.string()));
    h.startDaemon();
    REQUIRE(h.waitReady(20s));

    json::object status;
    REQUIRE(waitUntil(
        [&] {
            status = h.status();
            return status.at("counters").at("sequences_analysed").to_number<std::int64_t>() >= 2;
        },
        40s));
    INFO(json::serialize(status));
    CHECK(status.at("state") == "running");
    const json::object& model = status.at("model").as_object();
    CHECK(model.at("usable") == true);
    CHECK(model.at("url").as_string() == dead + ", " + h.emulatorUrl());
    const json::array& servers = model.at("servers").as_array();
    REQUIRE(servers.size() == 2);
    const json::object& gone = servers[0].as_object();
    CHECK(gone.at("url").as_string() == dead);
    CHECK(gone.at("in_service") == false);
    CHECK_THAT(std::string(gone.at("reason").as_string()),
               Catch::Contains("cannot reach the model server at " + dead));
    const json::object& alive = servers[1].as_object();
    CHECK(alive.at("url").as_string() == h.emulatorUrl());
    CHECK(alive.at("in_service") == true);
    CHECK(alive.at("reason") == "");
    CHECK(alive.at("requests").to_number<std::int64_t>() >= 2);
    CHECK(alive.at("latency_ewma_ms").is_number());

    // docs/dbus.md shows each server with exactly these keys.
    std::set<std::string> keys;
    for (const auto& member : gone) {
        keys.insert(std::string(member.key()));
    }
    CHECK(keys == documentedServerKeys());

    // The metrics file has a series per server.
    PromText metrics;
    REQUIRE(waitUntil(
        [&] {
            metrics = parsePromText(readFile(metricsFile));
            return metrics.value("dmsd_model_server_up", {{"url", h.emulatorUrl()}}) == 1.0;
        },
        20s));
    CHECK(metrics.errors.empty());
    CHECK(metrics.value("dmsd_model_server_up", {{"url", dead}}) == 0.0);
    CHECK(
        metrics.value("dmsd_model_server_requests_total", {{"url", h.emulatorUrl()}}).value_or(0) >=
        2);
}
