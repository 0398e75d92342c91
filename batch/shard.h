#pragma once

/// \file
/// Which part of a batch this process takes (`dmsd analyze --shard`): given
/// as I/N, or `auto` from the job engine that started it, a Kubernetes
/// Indexed Job or a Slurm job array, so that one manifest starts every shard.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <variant>

namespace dmsd::batch {

/// Shard `index` of `count`: the videos whose 0-based position modulo count is index.
struct Shard {
    std::size_t index = 0;
    std::size_t count = 1;
    std::string origin; ///< where it came from, for the log: "--shard 1/4", "SLURM_ARRAY_TASK_ID"
};

/// Reads an environment variable (nullopt when unset); std::getenv in the program.
using EnvironmentReader = std::function<std::optional<std::string>(const std::string&)>;

/// The process environment (a variable set to "" counts as unset).
EnvironmentReader processEnvironment();

/// Parses the value of `--shard`: "I/N", or "auto" read through \a env:
/// - Kubernetes Indexed Job: `JOB_COMPLETION_INDEX` (set by Kubernetes) and
///   `DMSD_SHARD_COUNT` (set in the manifest to the Job's `completions`);
/// - Slurm job array: `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_COUNT`, and
///   `SLURM_ARRAY_TASK_MIN`/`SLURM_ARRAY_TASK_STEP` when the array does not
///   start at 0 or has a step (`--array=1-8`, `--array=0-14:2`).
/// \return the shard, or a message naming the option or variable at fault.
std::variant<Shard, std::string> parseShard(const std::string& text, const EnvironmentReader& env);

} // namespace dmsd::batch
