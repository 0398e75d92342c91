#include "batch/shard.h"

#include <charconv>
#include <cstdlib>
#include <string_view>

#include <fmt/format.h>

namespace dmsd::batch {

namespace {

std::optional<std::size_t> wholeNumber(std::string_view text) {
    std::size_t value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
        return std::nullopt;
    }
    return value;
}

std::variant<Shard, std::string> checked(Shard shard, std::string_view what) {
    if (shard.count == 0) {
        return fmt::format("{}: the shard count must be at least 1", what);
    }
    if (shard.index >= shard.count) {
        return fmt::format("{}: shard {} is not below the count {} (shards are 0..{})", what,
                           shard.index, shard.count, shard.count - 1);
    }
    return shard;
}

/// A variable that must hold a whole number.
std::variant<std::size_t, std::string> numberVariable(const EnvironmentReader& env,
                                                      const std::string& name) {
    const std::optional<std::string> value = env(name);
    if (!value) {
        return fmt::format("--shard auto: {} is not set", name);
    }
    if (auto n = wholeNumber(*value)) {
        return *n;
    }
    return fmt::format("--shard auto: {}=\"{}\" is not a whole number", name, *value);
}

std::variant<Shard, std::string> fromKubernetes(const EnvironmentReader& env) {
    auto index = numberVariable(env, "JOB_COMPLETION_INDEX");
    if (auto* error = std::get_if<std::string>(&index)) {
        return *error;
    }
    auto count = numberVariable(env, "DMSD_SHARD_COUNT");
    if (auto* error = std::get_if<std::string>(&count)) {
        return *error + " (set it in the Job's environment to spec.completions)";
    }
    return checked(Shard{std::get<std::size_t>(index), std::get<std::size_t>(count),
                         "JOB_COMPLETION_INDEX/DMSD_SHARD_COUNT"},
                   "--shard auto (Kubernetes Indexed Job)");
}

std::variant<Shard, std::string> fromSlurm(const EnvironmentReader& env) {
    auto id = numberVariable(env, "SLURM_ARRAY_TASK_ID");
    if (auto* error = std::get_if<std::string>(&id)) {
        return *error;
    }
    auto count = numberVariable(env, "SLURM_ARRAY_TASK_COUNT");
    if (auto* error = std::get_if<std::string>(&count)) {
        return *error;
    }
    std::size_t min = 0;
    std::size_t step = 1;
    if (env("SLURM_ARRAY_TASK_MIN")) {
        auto value = numberVariable(env, "SLURM_ARRAY_TASK_MIN");
        if (auto* error = std::get_if<std::string>(&value)) {
            return *error;
        }
        min = std::get<std::size_t>(value);
    }
    if (env("SLURM_ARRAY_TASK_STEP")) {
        auto value = numberVariable(env, "SLURM_ARRAY_TASK_STEP");
        if (auto* error = std::get_if<std::string>(&value)) {
            return *error;
        }
        step = std::max<std::size_t>(1, std::get<std::size_t>(value));
    }
    const std::size_t taskId = std::get<std::size_t>(id);
    if (taskId < min || (taskId - min) % step != 0) {
        return fmt::format("--shard auto: SLURM_ARRAY_TASK_ID={} is not in the array {}-:{}",
                           taskId, min, step);
    }
    return checked(Shard{(taskId - min) / step, std::get<std::size_t>(count),
                         "SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT"},
                   "--shard auto (Slurm job array)");
}

} // namespace

EnvironmentReader processEnvironment() {
    return [](const std::string& name) -> std::optional<std::string> {
        // NOLINTNEXTLINE(concurrency-mt-unsafe): read once at start, before any thread
        // Set but empty counts as unset (how a wrapper script clears a variable).
        if (const char* value = std::getenv(name.c_str()); value != nullptr && *value != '\0') {
            return std::string(value);
        }
        return std::nullopt;
    };
}

std::variant<Shard, std::string> parseShard(const std::string& text, const EnvironmentReader& env) {
    if (text == "auto") {
        const bool kubernetes = env("JOB_COMPLETION_INDEX").has_value();
        const bool slurm = env("SLURM_ARRAY_TASK_ID").has_value();
        if (kubernetes && slurm) {
            return std::string("--shard auto: both JOB_COMPLETION_INDEX (Kubernetes) and "
                               "SLURM_ARRAY_TASK_ID (Slurm) are set; give --shard I/N");
        }
        if (kubernetes) {
            return fromKubernetes(env);
        }
        if (slurm) {
            return fromSlurm(env);
        }
        return std::string(
            "--shard auto: not started by a Kubernetes Indexed Job (JOB_COMPLETION_INDEX and "
            "DMSD_SHARD_COUNT) nor a Slurm job array (SLURM_ARRAY_TASK_ID and "
            "SLURM_ARRAY_TASK_COUNT); give --shard I/N");
    }
    const auto slash = text.find('/');
    const std::string_view view(text);
    const auto index =
        slash == std::string::npos ? std::nullopt : wholeNumber(view.substr(0, slash));
    const auto count =
        slash == std::string::npos ? std::nullopt : wholeNumber(view.substr(slash + 1));
    if (!index || !count) {
        return fmt::format("--shard \"{}\": expected I/N with whole numbers (e.g. --shard 0/4) "
                           "or auto",
                           text);
    }
    return checked(Shard{*index, *count, "--shard " + text}, fmt::format("--shard \"{}\"", text));
}

} // namespace dmsd::batch
