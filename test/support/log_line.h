#pragma once

/// \file
/// Reads back the stderr form of dmsd's log entries (base/log.h stderrLine):
/// "[label: ]MESSAGE NAME=value NAME=\"quoted value\" ...".

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd::test {

struct LogLine {
    std::string label;   ///< "critical", "error", "warning", "debug", or "" (notice, info)
    std::string message; ///< MESSAGE
    std::map<std::string, std::string> fields;
    std::vector<std::string> order; ///< field names in the order written

    /// The value of \a name, nullopt when absent.
    std::optional<std::string> field(const std::string& name) const;
    /// True for what `journalctl -p warning` shows (label critical, error or warning).
    bool warningOrWorse() const;
};

/// Parses one line; nullopt when it is not an entry (a fields part that does not
/// read back).
std::optional<LogLine> parseLogLine(std::string_view line);

/// Every entry in \a text (one per line).
std::vector<LogLine> parseLogLines(std::string_view text);

} // namespace dmsd::test
