#pragma once

/// \file
/// Two-level logging: a short MESSAGE for the technician plus structured fields
/// for the detail. Goes to the journal (sd_journal_send) when stderr is the
/// journal (JOURNAL_STREAM) or when forced, else readable text on stderr.
/// Thread-safe.

#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace dmsd::log {

/// syslog priorities, as journald uses them.
enum class Priority : int {
    Emerg = 0,
    Alert = 1,
    Crit = 2,
    Err = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
};

/// One structured journal field: NAME must be uppercase letters, digits and '_'.
struct Field {
    std::string_view name;
    std::string value;
};

enum class Backend {
    Auto,    ///< journal when stderr is connected to it (JOURNAL_STREAM), else stderr
    Stderr,  ///< text on stderr
    Journal, ///< sd_journal_send
};

/// Chooses the backend (default Auto) and the lowest priority written (default Info).
void configure(Backend backend, Priority maxPriority = Priority::Info);

/// True when entries currently go to the journal.
bool toJournal();

/// Writes one entry. \a messageId is a 32-hex-digit id128 or empty.
void write(Priority priority, std::string_view message, std::string_view messageId = {},
           std::initializer_list<Field> fields = {});

/// Same as above, with a field list composed at run time (e.g. notify/journal.h).
void write(Priority priority, std::string_view message, std::string_view messageId,
           std::span<const Field> fields);

template <class... Args>
void debug(fmt::format_string<Args...> format, Args&&... args) {
    write(Priority::Debug, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void info(fmt::format_string<Args...> format, Args&&... args) {
    write(Priority::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void notice(fmt::format_string<Args...> format, Args&&... args) {
    write(Priority::Notice, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void warning(fmt::format_string<Args...> format, Args&&... args) {
    write(Priority::Warning, fmt::format(format, std::forward<Args>(args)...));
}
template <class... Args>
void error(fmt::format_string<Args...> format, Args&&... args) {
    write(Priority::Err, fmt::format(format, std::forward<Args>(args)...));
}

} // namespace dmsd::log
