#include "alerts/settings.h"

#include <fmt/format.h>

#include "base/duration.h"

namespace dmsd {

std::optional<std::string> AlertRule::escalationProblem(const AlertRule& rule) {
    if (rule.criticalAfter >= rule.raiseAfter) {
        return std::nullopt;
    }
    return fmt::format("critical_after {} is shorter than raise_after {}; an alert is raised "
                       "before it can become critical",
                       formatDuration(rule.criticalAfter), formatDuration(rule.raiseAfter));
}

} // namespace dmsd
