#include <fmt/format.h>

#include "daemon/commands.h"

namespace dmsd::cli {

// Placeholder until its issue lands: says so plainly instead of pretending.
int runAnalyze(Args) {
    fmt::print(stderr, "dmsd: 'analyze' is not available in this build yet\n");
    return kExitUsage;
}

} // namespace dmsd::cli
