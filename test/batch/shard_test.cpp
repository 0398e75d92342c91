// batch/shard.h: --shard I/N and --shard auto from a Kubernetes Indexed Job
// or a Slurm job array (the environment is given, not the process's).

#include <map>

#include <catch2/catch.hpp>

#include "batch/shard.h"

using namespace dmsd::batch;

namespace {

EnvironmentReader environment(std::map<std::string, std::string> vars) {
    return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
        if (auto it = vars.find(name); it != vars.end()) {
            return it->second;
        }
        return std::nullopt;
    };
}

Shard shardOf(const std::string& text, std::map<std::string, std::string> vars = {}) {
    auto parsed = parseShard(text, environment(std::move(vars)));
    if (auto* error = std::get_if<std::string>(&parsed)) {
        FAIL(*error);
    }
    return std::get<Shard>(parsed);
}

std::string errorOf(const std::string& text, std::map<std::string, std::string> vars = {}) {
    auto parsed = parseShard(text, environment(std::move(vars)));
    REQUIRE(std::holds_alternative<std::string>(parsed));
    return std::get<std::string>(parsed);
}

} // namespace

TEST_CASE("shard given as I/N", "[batch][shard]") {
    const Shard s = shardOf("2/5");
    CHECK(s.index == 2);
    CHECK(s.count == 5);
    CHECK_THAT(errorOf("5/5"), Catch::Contains("not below the count 5"));
    CHECK_THAT(errorOf("0/0"), Catch::Contains("at least 1"));
    CHECK_THAT(errorOf("x"), Catch::Contains("expected I/N"));
    CHECK_THAT(errorOf("1/"), Catch::Contains("expected I/N"));
    CHECK_THAT(errorOf("-1/4"), Catch::Contains("expected I/N"));
}

TEST_CASE("shard auto in a Kubernetes Indexed Job", "[batch][shard]") {
    const Shard s = shardOf("auto", {{"JOB_COMPLETION_INDEX", "3"}, {"DMSD_SHARD_COUNT", "8"}});
    CHECK(s.index == 3);
    CHECK(s.count == 8);
    CHECK_THAT(s.origin, Catch::Contains("JOB_COMPLETION_INDEX"));
    CHECK_THAT(errorOf("auto", {{"JOB_COMPLETION_INDEX", "3"}}),
               Catch::Contains("DMSD_SHARD_COUNT is not set") &&
                   Catch::Contains("spec.completions"));
    CHECK_THAT(errorOf("auto", {{"JOB_COMPLETION_INDEX", "8"}, {"DMSD_SHARD_COUNT", "8"}}),
               Catch::Contains("not below the count 8"));
    CHECK_THAT(errorOf("auto", {{"JOB_COMPLETION_INDEX", "three"}, {"DMSD_SHARD_COUNT", "8"}}),
               Catch::Contains("JOB_COMPLETION_INDEX=\"three\" is not a whole number"));
}

TEST_CASE("shard auto in a Slurm job array", "[batch][shard]") {
    Shard s = shardOf("auto", {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_TASK_COUNT", "4"}});
    CHECK(s.index == 0);
    CHECK(s.count == 4);
    // --array=1-8: IDs 1..8 are shards 0..7
    s = shardOf("auto", {{"SLURM_ARRAY_TASK_ID", "8"},
                         {"SLURM_ARRAY_TASK_COUNT", "8"},
                         {"SLURM_ARRAY_TASK_MIN", "1"}});
    CHECK(s.index == 7);
    // --array=0-14:2: IDs 0,2,..,14 are shards 0..7
    s = shardOf("auto", {{"SLURM_ARRAY_TASK_ID", "6"},
                         {"SLURM_ARRAY_TASK_COUNT", "8"},
                         {"SLURM_ARRAY_TASK_MIN", "0"},
                         {"SLURM_ARRAY_TASK_STEP", "2"}});
    CHECK(s.index == 3);
    CHECK_THAT(errorOf("auto", {{"SLURM_ARRAY_TASK_ID", "2"}}),
               Catch::Contains("SLURM_ARRAY_TASK_COUNT is not set"));
}

TEST_CASE("shard auto outside a job engine, or in both, is an error", "[batch][shard]") {
    CHECK_THAT(errorOf("auto"), Catch::Contains("not started by a Kubernetes Indexed Job") &&
                                    Catch::Contains("Slurm job array"));
    CHECK_THAT(errorOf("auto", {{"JOB_COMPLETION_INDEX", "1"}, {"SLURM_ARRAY_TASK_ID", "1"}}),
               Catch::Contains("both"));
}
