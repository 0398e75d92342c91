#include <fmt/format.h>

#include "daemon/commands.h"

namespace dmsd::cli {

// Placeholder until its issue lands: says so plainly instead of pretending.
int runDaemon(Args) {
    fmt::print(stderr, "dmsd: 'run' is not available in this build yet\n");
    return kExitUsage;
}

} // namespace dmsd::cli
