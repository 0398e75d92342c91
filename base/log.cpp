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

#include <systemd/sd-journal.h>

#include "base/redact.h"

namespace dmsd::log {
namespace {

std::atomic<Backend> gBackend{Backend::Auto};
std::atomic<int> gMaxPriority{static_cast<int>(Priority::Info)};
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

} // namespace

void configure(Backend backend, Priority maxPriority) {
    if (backend == Backend::Auto) {
        backend = stderrIsJournal() ? Backend::Journal : Backend::Stderr;
    }
    gBackend = backend;
    gMaxPriority = static_cast<int>(maxPriority);
}

bool toJournal() {
    Backend backend = gBackend.load();
    if (backend == Backend::Auto) {
        configure(Backend::Auto, static_cast<Priority>(gMaxPriority.load()));
        backend = gBackend.load();
    }
    return backend == Backend::Journal;
}

void write(Priority priority, std::string_view message, std::string_view messageId,
           std::initializer_list<Field> fields) {
    write(priority, message, messageId, std::span<const Field>(fields.begin(), fields.size()));
}

void write(Priority priority, std::string_view message, std::string_view messageId,
           std::span<const Field> fields) {
    if (static_cast<int>(priority) > gMaxPriority.load()) {
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
        std::vector<std::string> lines;
        lines.reserve(fields.size() + 4);
        lines.push_back("MESSAGE=" + std::string(message));
        lines.push_back("PRIORITY=" + std::to_string(static_cast<int>(priority)));
        lines.push_back("SYSLOG_IDENTIFIER=dmsd");
        if (!messageId.empty()) {
            lines.push_back("MESSAGE_ID=" + std::string(messageId));
        }
        for (const Field& field : fields) {
            lines.push_back(std::string(field.name) + "=" + field.value);
        }
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
    std::string line = priorityLabel(priority);
    line.append(message);
    for (const Field& field : fields) {
        line += fmt::format(" {}={}", field.name, field.value);
    }
    line.push_back('\n');
    std::lock_guard lock(gStderrMutex);
    std::fwrite(line.data(), 1, line.size(), stderr);
}

} // namespace dmsd::log
