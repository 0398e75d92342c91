#pragma once

/// \file
/// Subcommands of the dmsd executable (docs/interfaces.md section 1). Each takes the
/// arguments after the subcommand name and returns the process exit code.

#include <span>
#include <string_view>

namespace dmsd::cli {

/// Exit codes of docs/interfaces.md section 1.
inline constexpr int kExitOk = 0;
inline constexpr int kExitInputFailed = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitModelUnusable = 3;

using Args = std::span<const std::string_view>;

int runDaemon(Args args);      ///< dmsd run
int runAnalyze(Args args);     ///< dmsd analyze
int runCheckConfig(Args args); ///< dmsd check-config
int runReport(Args args);      ///< dmsd report (alert intervals from analyze's output)
int runProbe(Args args);       ///< dmsd probe (measures the model server, recommends settings)
int runSample(Args args);      ///< dmsd sample (capture + sampling only; prints sequences)
int runStatus(Args args);      ///< dmsd status (GetStatus of the running daemon over D-Bus)

} // namespace dmsd::cli
