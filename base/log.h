#pragma once

/// \file
/// Logging: a short MESSAGE for the technician plus structured fields for the
/// detail. Goes to the journal (sd_journal_send) when stderr is the journal
/// (JOURNAL_STREAM) or when forced, else readable text on stderr. Every entry
/// carries the place of the call that made it (CODE_FILE relative to the
/// source tree, CODE_LINE, CODE_FUNC), taken with std::source_location at the
/// caller. Entries below the chosen level (`log.level`, `dmsd run --verbose`)
/// are dropped before they are formatted. Thread-safe.

#include <array>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if __has_include(<source_location>)
#include <source_location>
#endif

#include <fmt/format.h>

#include "base/keys.h"

namespace dmsd::log {

#if defined(__cpp_lib_source_location)
/// Where a log call was made: std::source_location (g++, which builds dmsd).
using SourceLocation = std::source_location;
#else
/// clang 14 (clang-tidy, the libFuzzer builds) has no std::source_location:
/// the same builtins behind the same interface.
struct SourceLocation {
    static constexpr SourceLocation current(const char* file = __builtin_FILE(),
                                            unsigned line = __builtin_LINE(),
                                            const char* function = __builtin_FUNCTION()) noexcept {
        SourceLocation where;
        where.file_ = file;
        where.line_ = line;
        where.function_ = function;
        return where;
    }
    constexpr const char* file_name() const noexcept { return file_; }
    constexpr unsigned line() const noexcept { return line_; }
    constexpr const char* function_name() const noexcept { return function_; }

private:
    const char* file_ = "";
    unsigned line_ = 0;
    const char* function_ = "";
};
#endif

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

/// The spellings of `log.level` (and of priorities in messages).
inline constexpr std::array<std::pair<std::string_view, Priority>, 5> kLevelNames{{
    {"debug", Priority::Debug},
    {"info", Priority::Info},
    {"notice", Priority::Notice},
    {"warning", Priority::Warning},
    {"err", Priority::Err},
}};

/// `log:` of the configuration (docs/configuration.md): the lowest priority written.
struct LogSettings {
    Priority level = Priority::Info;

    friend bool operator==(const LogSettings&, const LogSettings&) = default;

    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.choice("level", s.level, ChoiceNames<Priority>(kLevelNames));
    }
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

/// The lowest priority written from now on (a reload of `log.level`).
void setLevel(Priority maxPriority);
Priority level();
/// True when an entry of \a priority would be written.
bool enabled(Priority priority);

/// Whether stderr lines end with PRIORITY, CODE_FILE, CODE_LINE and CODE_FUNC
/// (`dmsd run --verbose`); the journal always has them.
void setStderrLocation(bool on);

/// True when entries currently go to the journal.
bool toJournal();

/// Writes one entry. \a messageId is a 32-hex-digit id128 or empty. \a where
/// is the caller's position (leave the default).
void write(Priority priority, std::string_view message, std::string_view messageId = {},
           std::initializer_list<Field> fields = {},
           SourceLocation where = SourceLocation::current());

/// Same as above, with a field list composed at run time (e.g. notify/journal.h).
void write(Priority priority, std::string_view message, std::string_view messageId,
           std::span<const Field> fields, SourceLocation where = SourceLocation::current());

/// \a file (a source_location file name) relative to the source tree
/// ("notify/journal.cpp"); empty when it is not in it. The build maps the
/// tree's prefix away (-fmacro-prefix-map); an absolute path left over is
/// outside it and not reported.
std::string_view sourcePath(std::string_view file);

/// The name of a function as source_location gives it, without return type
/// and parameters ("dmsd::Daemon::shutdown"), for CODE_FUNC.
std::string_view codeFunction(std::string_view function);

/// The fields of one journal entry as sent to journald ("NAME=value"):
/// MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, MESSAGE_ID (if any), CODE_FILE,
/// CODE_LINE, CODE_FUNC (if known), then \a fields.
std::vector<std::string> journalFields(Priority priority, std::string_view message,
                                       std::string_view messageId, std::span<const Field> fields,
                                       const SourceLocation& where);

/// The stderr form of one entry: "warning: MESSAGE MESSAGE_ID=... NAME=value ...",
/// without the newline. A value with a blank, a quote, a backslash or a
/// control character, or an empty one, is written in double quotes with `\"`,
/// `\\`, `\n` and `\t` escaped, so that every line splits back into its fields.
/// \a withLocation adds PRIORITY, CODE_FILE, CODE_LINE and CODE_FUNC.
std::string stderrLine(Priority priority, std::string_view message, std::string_view messageId,
                       std::span<const Field> fields, const SourceLocation& where,
                       bool withLocation);

/// A format string with the position of the call that gave it.
template <class... Args>
struct FormatAt {
    template <class S>
    consteval FormatAt(const S& text, SourceLocation at = SourceLocation::current())
        : format(text), where(at) {}
    fmt::format_string<Args...> format;
    SourceLocation where;
};

template <class... Args>
void at(Priority priority, FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    if (enabled(priority)) {
        write(priority, fmt::format(format.format, std::forward<Args>(args)...), {}, {},
              format.where);
    }
}

template <class... Args>
void debug(FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    at<Args...>(Priority::Debug, std::move(format), std::forward<Args>(args)...);
}
template <class... Args>
void info(FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    at<Args...>(Priority::Info, std::move(format), std::forward<Args>(args)...);
}
template <class... Args>
void notice(FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    at<Args...>(Priority::Notice, std::move(format), std::forward<Args>(args)...);
}
template <class... Args>
void warning(FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    at<Args...>(Priority::Warning, std::move(format), std::forward<Args>(args)...);
}
template <class... Args>
void error(FormatAt<std::type_identity_t<Args>...> format, Args&&... args) {
    at<Args...>(Priority::Err, std::move(format), std::forward<Args>(args)...);
}

} // namespace dmsd::log
