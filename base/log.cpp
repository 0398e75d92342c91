#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <vector>

// sd_journal_sendv() is a macro adding CODE_FILE/CODE_LINE of *this* file;
// entries carry their caller's position instead (journalFields).
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "base/redact.h"

namespace dmsd::log {
namespace {

std::atomic<Backend> gBackend{Backend::Auto};
std::atomic<int> gMaxPriority{static_cast<int>(Priority::Info)};
std::atomic<bool> gStderrLocation{false};
std::mutex gStderrMutex;

// systemd sets JOURNAL_STREAM=<dev>:<ino> for the service's stderr; only when our
// stderr is still that stream should entries go to the journal natively.
bool stderrIsJournal() {
    const char* stream = std::getenv("JOURNAL_STREAM");
    if (stream == nullptr) {
        return false;
    }
    unsigned long long dev = 0;
    unsigned long long ino = 0;
    if (std::sscanf(stream, "%llu:%llu", &dev, &ino) != 2) {
        return false;
    }
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0) {
        return false;
    }
    return st.st_dev == dev && st.st_ino == ino;
}

const char* priorityLabel(Priority priority) {
    switch (priority) {
    case Priority::Emerg:
    case Priority::Alert:
    case Priority::Crit:
        return "critical: ";
    case Priority::Err:
        return "error: ";
    case Priority::Warning:
        return "warning: ";
    case Priority::Notice:
    case Priority::Info:
        return "";
    case Priority::Debug:
        return "debug: ";
    }
    return "";
}

bool needsQuotes(std::string_view value) {
    if (value.empty()) {
        return true;
    }
    for (char c : value) {
        if (c == ' ' || c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 ||
            c == 0x7f) {
            return true;
        }
    }
    return false;
}

void appendField(std::string& line, std::string_view name, std::string_view value) {
    line.push_back(' ');
    line.append(name);
    line.push_back('=');
    if (!needsQuotes(value)) {
        line.append(value);
        return;
    }
    line.push_back('"');
    for (char c : value) {
        switch (c) {
        case '"':
            line.append("\\\"");
            break;
        case '\\':
            line.append("\\\\");
            break;
        case '\n':
            line.append("\\n");
            break;
        case '\t':
            line.append("\\t");
            break;
        default:
            line.push_back(c);
        }
    }
    line.push_back('"');
}

} // namespace

std::string_view codeFunction(std::string_view function) {
    // g++ gives the whole signature ("void dmsd::Daemon::shutdown(const string&)");
    // the journal's CODE_FUNC is the name, as __func__ would give it, qualified.
    const std::size_t paren = function.find('(');
    if (paren != std::string_view::npos && paren > 0) {
        function = function.substr(0, paren);
    }
    const std::size_t space = function.rfind(' ');
    if (space != std::string_view::npos) {
        function = function.substr(space + 1);
    }
    return function;
}

void configure(Backend backend, Priority maxPriority) {
    if (backend == Backend::Auto) {
        backend = stderrIsJournal() ? Backend::Journal : Backend::Stderr;
    }
    gBackend = backend;
    gMaxPriority = static_cast<int>(maxPriority);
}

void setLevel(Priority maxPriority) {
    gMaxPriority = static_cast<int>(maxPriority);
}

Priority level() {
    return static_cast<Priority>(gMaxPriority.load());
}

bool enabled(Priority priority) {
    return static_cast<int>(priority) <= gMaxPriority.load();
}

void setStderrLocation(bool on) {
    gStderrLocation = on;
}

bool toJournal() {
    Backend backend = gBackend.load();
    if (backend == Backend::Auto) {
        configure(Backend::Auto, static_cast<Priority>(gMaxPriority.load()));
        backend = gBackend.load();
    }
    return backend == Backend::Journal;
}

std::string_view sourcePath(std::string_view file) {
    if (file.empty() || file.front() == '/') {
        return {};
    }
    return file;
}

std::vector<std::string> journalFields(Priority priority, std::string_view message,
                                       std::string_view messageId, std::span<const Field> fields,
                                       const SourceLocation& where) {
    std::vector<std::string> lines;
    lines.reserve(fields.size() + 7);
    lines.push_back("MESSAGE=" + std::string(message));
    lines.push_back("PRIORITY=" + std::to_string(static_cast<int>(priority)));
    lines.push_back("SYSLOG_IDENTIFIER=dmsd");
    if (!messageId.empty()) {
        lines.push_back("MESSAGE_ID=" + std::string(messageId));
    }
    if (const std::string_view file = sourcePath(where.file_name()); !file.empty()) {
        lines.push_back("CODE_FILE=" + std::string(file));
        lines.push_back("CODE_LINE=" + std::to_string(where.line()));
    }
    if (const std::string_view function = codeFunction(where.function_name()); !function.empty()) {
        lines.push_back("CODE_FUNC=" + std::string(function));
    }
    for (const Field& field : fields) {
        lines.push_back(std::string(field.name) + "=" + field.value);
    }
    return lines;
}

std::string stderrLine(Priority priority, std::string_view message, std::string_view messageId,
                       std::span<const Field> fields, const SourceLocation& where,
                       bool withLocation) {
    std::string line = priorityLabel(priority);
    line.append(message);
    if (!messageId.empty()) {
        appendField(line, "MESSAGE_ID", messageId);
    }
    for (const Field& field : fields) {
        appendField(line, field.name, field.value);
    }
    if (withLocation) {
        appendField(line, "PRIORITY", std::to_string(static_cast<int>(priority)));
        if (const std::string_view file = sourcePath(where.file_name()); !file.empty()) {
            appendField(line, "CODE_FILE", file);
            appendField(line, "CODE_LINE", std::to_string(where.line()));
        }
        if (const std::string_view function = codeFunction(where.function_name());
            !function.empty()) {
            appendField(line, "CODE_FUNC", function);
        }
    }
    return line;
}

void write(Priority priority, std::string_view message, std::string_view messageId,
           std::initializer_list<Field> fields, SourceLocation where) {
    write(priority, message, messageId, std::span<const Field>(fields.begin(), fields.size()),
          where);
}

void write(Priority priority, std::string_view message, std::string_view messageId,
           std::span<const Field> fields, SourceLocation where) {
    if (!enabled(priority)) {
        return;
    }
    // Whatever came in (a file name, a model's answer, a URL with a password),
    // what is written is UTF-8 text without secrets (base/redact.h).
    const std::string shownMessage = publicText(message);
    message = shownMessage;
    std::vector<Field> shownFields(fields.begin(), fields.end());
    for (Field& field : shownFields) {
        field.value = publicText(field.value);
    }
    fields = shownFields;
    if (toJournal()) {
        std::vector<std::string> lines = journalFields(priority, message, messageId, fields, where);
        std::vector<iovec> iov;
        iov.reserve(lines.size());
        for (std::string& line : lines) {
            iov.push_back({line.data(), line.size()});
        }
        if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0) {
            return;
        }
        // Journal unavailable: fall through to stderr so nothing is lost.
    }
    std::string line =
        stderrLine(priority, message, messageId, fields, where, gStderrLocation.load());
    line.push_back('\n');
    std::lock_guard lock(gStderrMutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace dmsd::log
