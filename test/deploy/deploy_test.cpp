// deploy/: the Kubernetes and Slurm recipes against the program they run.

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>
#include <yaml-cpp/yaml.h>

#include "test/support/child_process.h"
#include "test/support/temp_dir.h"

using dmsd::test::ChildProcess;
using dmsd::test::TempDir;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path kDeploy = std::filesystem::path(DMSD_SOURCE_DIR) / "deploy";

std::optional<int> run(std::vector<std::string> argv, std::string* output = nullptr) {
    ChildProcess child(ChildProcess::Options{std::move(argv), {}, true, false});
    const std::string text = child.readAll(60s);
    if (output != nullptr) {
        *output = text;
    }
    return child.wait(10s);
}

} // namespace

TEST_CASE("the Indexed Job runs --shard auto with DMSD_SHARD_COUNT = completions", "[deploy]") {
    const YAML::Node job = YAML::LoadFile((kDeploy / "kubernetes/analyze-job.yaml").string());
    REQUIRE(job["kind"].as<std::string>() == "Job");
    const YAML::Node spec = job["spec"];
    CHECK(spec["completionMode"].as<std::string>() == "Indexed");
    const int completions = spec["completions"].as<int>();
    const YAML::Node container = spec["template"]["spec"]["containers"][0];
    std::optional<int> count;
    for (const YAML::Node& env : container["env"]) {
        if (env["name"].as<std::string>() == "DMSD_SHARD_COUNT") {
            count = std::stoi(env["value"].as<std::string>());
        }
    }
    REQUIRE(count);
    CHECK(*count == completions);
    const std::string script = container["args"][0].as<std::string>();
    CHECK(script.find("dmsd analyze") != std::string::npos);
    CHECK(script.find("--shard auto") != std::string::npos);
    CHECK(script.find("$JOB_COMPLETION_INDEX") != std::string::npos);
    CHECK(script.find("| sort") != std::string::npos);
    // The script itself parses.
    TempDir dir("dmsd-deploy");
    const auto file = dir / "analyze.sh";
    std::ofstream(file) << script;
    CHECK(run({"bash", "-n", file.string()}) == 0);
}

TEST_CASE("the configuration in the ConfigMap passes check-config", "[deploy]") {
    const YAML::Node map = YAML::LoadFile((kDeploy / "kubernetes/configmap.yaml").string());
    TempDir dir("dmsd-deploy");
    const auto config = dir / "dmsd.yaml";
    std::ofstream(config) << map["data"]["dmsd.yaml"].as<std::string>();
    std::string output;
    CHECK(run({DMSD_BINARY, "check-config", config.string()}, &output) == 0);
    INFO(output);
    // The pods reach the model server through the Service of model-server.yaml.
    const std::vector<YAML::Node> server =
        YAML::LoadAllFromFile((kDeploy / "kubernetes/model-server.yaml").string());
    bool service = false;
    for (const YAML::Node& doc : server) {
        if (doc["kind"].as<std::string>() == "Service") {
            service = true;
            const std::string url =
                YAML::Load(map["data"]["dmsd.yaml"].as<std::string>())["llm"]["url"]
                    .as<std::string>();
            CHECK(url == "http://" + doc["metadata"]["name"].as<std::string>() + ":" +
                             doc["spec"]["ports"][0]["port"].as<std::string>());
        }
    }
    CHECK(service);
}

TEST_CASE("the Slurm script parses and shards with --shard auto", "[deploy]") {
    const auto script = kDeploy / "slurm/dmsd-analyze.sbatch";
    CHECK(run({"bash", "-n", script.string()}) == 0);
    std::ifstream in(script);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(text.find("#SBATCH --array=") != std::string::npos);
    CHECK(text.find("--shard auto") != std::string::npos);
    CHECK(text.find("| sort") != std::string::npos);
}
