#include "notify/journal.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "base/json.h"

namespace dmsd {
namespace {

using log::Priority;
using std::chrono::milliseconds;

void writeThroughLog(const JournalEntry& entry) {
    std::vector<log::Field> fields;
    fields.reserve(entry.fields.size());
    for (const auto& [name, value] : entry.fields) {
        fields.push_back({name, value});
    }
    log::write(entry.priority, entry.message, entry.messageId, fields, entry.where);
}

std::chrono::steady_clock::time_point steadyNow() {
    return std::chrono::steady_clock::now();
}

Priority alertPriority(AlertLevel level) {
    switch (level) {
    case AlertLevel::Critical:
        return Priority::Crit;
    case AlertLevel::Warning:
        return Priority::Warning;
    case AlertLevel::Info:
    case AlertLevel::Cleared:
        return Priority::Notice;
    }
    return Priority::Notice;
}

std::string faultKey(std::string_view id, std::string_view subject, std::string_view reason) {
    return fmt::format("{}\x1f{}\x1f{}", id, subject, reason);
}

std::string subjectPrefix(std::string_view id, std::string_view subject) {
    return fmt::format("{}\x1f{}\x1f", id, subject);
}

std::string seconds(milliseconds span) {
    return fmt::format("{:.1f} s", static_cast<double>(span.count()) / 1000.0);
}

} // namespace

std::optional<std::string> JournalEntry::field(std::string_view name) const {
    for (const auto& [fieldName, value] : fields) {
        if (fieldName == name) {
            return value;
        }
    }
    return std::nullopt;
}

std::string formatConfidence(double confidence) {
    if (!std::isfinite(confidence)) {
        confidence = 0.0;
    }
    return fmt::format("{:.2f}", std::clamp(confidence, 0.0, 1.0));
}

// --- FaultRateLimiter -------------------------------------------------------

bool FaultRateLimiter::admit(const std::string& key, const JournalEntry& entry, TimePoint now,
                             std::vector<Summary>& due) {
    collect(now, due);
    auto it = bursts_.find(key);
    if (it == bursts_.end()) {
        bursts_.emplace(key, Burst{entry, now, now, now, 0});
        return true;
    }
    it->second.lastAt = now;
    ++it->second.suppressed;
    return false;
}

void FaultRateLimiter::collect(TimePoint now, std::vector<Summary>& due) {
    for (auto it = bursts_.begin(); it != bursts_.end();) {
        Burst& burst = it->second;
        auto span = std::chrono::duration_cast<milliseconds>(now - burst.summaryFrom);
        if (now - burst.lastAt >= policy_.quiet) {
            if (burst.suppressed > 0) {
                due.push_back(
                    {burst.first, burst.suppressed,
                     std::chrono::duration_cast<milliseconds>(burst.lastAt - burst.summaryFrom),
                     true});
            }
            it = bursts_.erase(it);
            continue;
        }
        if (burst.suppressed > 0 && span >= policy_.summaryEvery) {
            due.push_back({burst.first, burst.suppressed, span, false});
            burst.suppressed = 0;
            burst.summaryFrom = now;
        }
        ++it;
    }
}

std::uint64_t FaultRateLimiter::end(std::string_view keyPrefix, TimePoint now,
                                    std::vector<Summary>& due) {
    std::uint64_t total = 0;
    for (auto it = bursts_.lower_bound(keyPrefix);
         it != bursts_.end() && std::string_view(it->first).starts_with(keyPrefix);) {
        Burst& burst = it->second;
        if (burst.suppressed > 0) {
            total += burst.suppressed;
            due.push_back({burst.first, burst.suppressed,
                           std::chrono::duration_cast<milliseconds>(now - burst.summaryFrom),
                           true});
        }
        it = bursts_.erase(it);
    }
    return total;
}

// --- Journal ------------------------------------------------------------------

Journal::Journal(JournalSink sink, JournalClock clock, FaultRatePolicy policy)
    : sink_(sink ? std::move(sink) : JournalSink(writeThroughLog)),
      clock_(clock ? std::move(clock) : JournalClock(steadyNow)), limiter_(policy) {
}

Journal& Journal::process() {
    static Journal journal;
    return journal;
}

void Journal::emit(const JournalEntry& entry) {
    sink_(entry);
}

void Journal::emitAll(std::vector<JournalEntry>& entries) {
    for (const JournalEntry& entry : entries) {
        emit(entry);
    }
}

JournalEntry Journal::summaryEntry(const FaultRateLimiter::Summary& summary) {
    JournalEntry entry;
    entry.where = summary.first.where;
    entry.priority = summary.first.priority;
    entry.messageId = std::string(message_id::kSuppressed);
    entry.message = fmt::format("{} more \"{}\" suppressed over {}{}", summary.suppressed,
                                summary.first.message, seconds(summary.span),
                                summary.burstEnded ? "" : " (still occurring)");
    entry.fields = summary.first.fields;
    entry.fields.emplace_back("DMS_SUPPRESSED_COUNT", std::to_string(summary.suppressed));
    entry.fields.emplace_back("DMS_SUPPRESSED_MESSAGE_ID", summary.first.messageId);
    entry.fields.emplace_back("DMS_SUPPRESSED_SPAN_MS", std::to_string(summary.span.count()));
    entry.fields.emplace_back("DMS_BURST_ENDED", summary.burstEnded ? "1" : "0");
    return entry;
}

void Journal::fault(const std::string& key, JournalEntry entry) {
    std::vector<FaultRateLimiter::Summary> due;
    bool write = false;
    {
        std::lock_guard lock(mutex_);
        write = limiter_.admit(key, entry, clock_(), due);
    }
    std::vector<JournalEntry> out;
    out.reserve(due.size() + 1);
    for (const auto& summary : due) {
        out.push_back(summaryEntry(summary));
    }
    if (write) {
        out.push_back(std::move(entry));
    }
    emitAll(out);
}

void Journal::recovered(std::string_view keyPrefix, JournalEntry entry) {
    std::vector<FaultRateLimiter::Summary> due;
    std::uint64_t suppressed = 0;
    {
        std::lock_guard lock(mutex_);
        auto now = clock_();
        limiter_.collect(now, due);
        suppressed = limiter_.end(keyPrefix, now, due);
    }
    std::vector<JournalEntry> out;
    out.reserve(due.size() + 1);
    for (const auto& summary : due) {
        out.push_back(summaryEntry(summary));
    }
    entry.fields.emplace_back("DMS_SUPPRESSED_COUNT", std::to_string(suppressed));
    out.push_back(std::move(entry));
    emitAll(out);
}

void Journal::flushSuppressed() {
    std::vector<FaultRateLimiter::Summary> due;
    {
        std::lock_guard lock(mutex_);
        limiter_.collect(clock_(), due);
    }
    for (const auto& summary : due) {
        emit(summaryEntry(summary));
    }
}

void Journal::alert(const AlertEvent& event, const AlertLogContext& context,
                    log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    const std::string_view kind = alertKindName(event.kind);
    const std::string_view level = alertLevelName(event.level);
    const std::string confidence = formatConfidence(event.confidence);
    std::string_view eventName;
    switch (event.type) {
    case AlertEvent::Type::Raised:
        entry.priority = alertPriority(event.level);
        entry.messageId = std::string(message_id::kAlertRaised);
        entry.message = fmt::format("{} alert raised ({}, confidence {})", kind, level, confidence);
        eventName = "alert_raised";
        break;
    case AlertEvent::Type::LevelChanged:
        entry.priority = alertPriority(event.level);
        entry.messageId = std::string(message_id::kAlertLevelChanged);
        entry.message = fmt::format("{} alert {} to {} (confidence {})", kind,
                                    event.level == AlertLevel::Critical ? "escalated" : "changed",
                                    level, confidence);
        eventName = "alert_level_changed";
        break;
    case AlertEvent::Type::Cleared:
        entry.priority = Priority::Notice;
        entry.messageId = std::string(message_id::kAlertCleared);
        entry.message = fmt::format("{} alert cleared", kind);
        eventName = "alert_cleared";
        break;
    }
    entry.fields = {
        {"DMS_EVENT", std::string(eventName)},
        {"DMS_ALERT_KIND", std::string(kind)},
        {"DMS_ALERT_LEVEL", std::string(level)},
        {"DMS_CONFIDENCE", confidence},
        {"DMS_SEQUENCE_ID", std::to_string(event.sequenceId)},
        {"DMS_CONFIG_VERSION", std::string(context.configVersion)},
    };
    if (context.latency) {
        entry.fields.emplace_back("DMS_LATENCY_MS", std::to_string(context.latency->count()));
    }
    if (context.duration) {
        entry.fields.emplace_back("DMS_ALERT_DURATION_MS",
                                  std::to_string(context.duration->count()));
    }
    if (!event.evidence.empty()) {
        entry.fields.emplace_back("DMS_EVIDENCE", writeJson(event.evidence));
    }
    emit(entry);
}

void Journal::configApplied(std::string_view version, std::string_view previousVersion,
                            std::string_view changedParts, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kConfigApplied);
    entry.message = fmt::format("Configuration {} applied", version);
    entry.fields = {{"DMS_EVENT", "config_applied"},
                    {"DMS_CONFIG_VERSION", std::string(version)},
                    {"DMS_PREVIOUS_CONFIG_VERSION", std::string(previousVersion)},
                    {"DMS_CHANGED", std::string(changedParts)}};
    emit(entry);
}

void Journal::configRejected(std::string_view source, std::string_view reason,
                             std::string_view runningVersion, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Err;
    entry.messageId = std::string(message_id::kConfigRejected);
    entry.message = fmt::format("Configuration rejected, keeping {}: {}", runningVersion, reason);
    entry.fields = {{"DMS_EVENT", "config_rejected"},
                    {"DMS_CONFIG_VERSION", std::string(runningVersion)},
                    {"DMS_CONFIG_SOURCE", std::string(source)},
                    {"DMS_REASON", std::string(reason)}};
    emit(entry);
}

void Journal::configRolledBack(std::string_view toVersion, std::string_view fromVersion,
                               std::string_view reason, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Err;
    entry.messageId = std::string(message_id::kConfigRolledBack);
    entry.message =
        fmt::format("Configuration {} rolled back to {}: {}", fromVersion, toVersion, reason);
    entry.fields = {{"DMS_EVENT", "config_rolled_back"},
                    {"DMS_CONFIG_VERSION", std::string(toVersion)},
                    {"DMS_FAILED_CONFIG_VERSION", std::string(fromVersion)},
                    {"DMS_REASON", std::string(reason)}};
    emit(entry);
}

void Journal::cameraFault(std::string_view source, std::string_view reason,
                          log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Err;
    entry.messageId = std::string(message_id::kCameraFault);
    entry.message = fmt::format("Camera fault on {}: {}", source, reason);
    entry.fields = {{"DMS_EVENT", "camera_fault"},
                    {"DMS_CAMERA", std::string(source)},
                    {"DMS_REASON", std::string(reason)}};
    fault(faultKey(message_id::kCameraFault, source, reason), std::move(entry));
}

void Journal::cameraRecovered(std::string_view source,
                              std::optional<std::chrono::milliseconds> outage,
                              log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kCameraRecovered);
    entry.message = outage ? fmt::format("Camera {} recovered after {}", source, seconds(*outage))
                           : fmt::format("Camera {} recovered", source);
    entry.fields = {{"DMS_EVENT", "camera_recovered"}, {"DMS_CAMERA", std::string(source)}};
    if (outage) {
        entry.fields.emplace_back("DMS_OUTAGE_MS", std::to_string(outage->count()));
    }
    recovered(subjectPrefix(message_id::kCameraFault, source), std::move(entry));
}

void Journal::analyzerFault(std::string_view url, std::string_view reason,
                            log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Err;
    entry.messageId = std::string(message_id::kAnalyzerFault);
    entry.message = fmt::format("Model server fault at {}: {}", url, reason);
    entry.fields = {{"DMS_EVENT", "analyzer_fault"},
                    {"DMS_MODEL_URL", std::string(url)},
                    {"DMS_REASON", std::string(reason)}};
    fault(faultKey(message_id::kAnalyzerFault, url, reason), std::move(entry));
}

void Journal::analyzerRecovered(std::string_view url,
                                std::optional<std::chrono::milliseconds> outage,
                                log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kAnalyzerRecovered);
    entry.message = outage
                        ? fmt::format("Model server {} recovered after {}", url, seconds(*outage))
                        : fmt::format("Model server {} recovered", url);
    entry.fields = {{"DMS_EVENT", "analyzer_recovered"}, {"DMS_MODEL_URL", std::string(url)}};
    if (outage) {
        entry.fields.emplace_back("DMS_OUTAGE_MS", std::to_string(outage->count()));
    }
    recovered(subjectPrefix(message_id::kAnalyzerFault, url), std::move(entry));
}

void Journal::daemonStarted(std::string_view daemonVersion, std::string_view configVersion,
                            std::string_view camera, std::string_view model,
                            std::string_view modelUrl, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kDaemonStarted);
    entry.message =
        fmt::format("dmsd {} started with configuration {}", daemonVersion, configVersion);
    entry.fields = {{"DMS_EVENT", "daemon_started"},
                    {"DMS_VERSION", std::string(daemonVersion)},
                    {"DMS_CONFIG_VERSION", std::string(configVersion)},
                    {"DMS_CAMERA", std::string(camera)},
                    {"DMS_MODEL", std::string(model)},
                    {"DMS_MODEL_URL", std::string(modelUrl)}};
    emit(entry);
}

void Journal::daemonStopping(std::string_view reason, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kDaemonStopping);
    entry.message = fmt::format("dmsd stopping: {}", reason);
    entry.fields = {{"DMS_EVENT", "daemon_stopping"}, {"DMS_REASON", std::string(reason)}};
    // A stop ends every burst: write what was counted so nothing is lost.
    std::vector<FaultRateLimiter::Summary> due;
    {
        std::lock_guard lock(mutex_);
        limiter_.end("", clock_(), due);
    }
    for (const auto& summary : due) {
        emit(summaryEntry(summary));
    }
    emit(entry);
}

void Journal::canFault(std::string_view interface, std::string_view reason,
                       log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Err;
    entry.messageId = std::string(message_id::kCanFault);
    entry.message = fmt::format("CAN fault on {}: {}", interface, reason);
    entry.fields = {{"DMS_EVENT", "can_fault"},
                    {"DMS_CAN_INTERFACE", std::string(interface)},
                    {"DMS_REASON", std::string(reason)}};
    fault(faultKey(message_id::kCanFault, interface, reason), std::move(entry));
}

void Journal::canRecovered(std::string_view interface, log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Notice;
    entry.messageId = std::string(message_id::kCanRecovered);
    entry.message = fmt::format("CAN {} sending again", interface);
    entry.fields = {{"DMS_EVENT", "can_recovered"}, {"DMS_CAN_INTERFACE", std::string(interface)}};
    recovered(subjectPrefix(message_id::kCanFault, interface), std::move(entry));
}

void Journal::snapshotFailed(std::string_view dir, std::string_view reason,
                             log::SourceLocation where) {
    JournalEntry entry;
    entry.where = where;
    entry.priority = Priority::Warning;
    entry.messageId = std::string(message_id::kSnapshotFailed);
    entry.message = fmt::format("Snapshot not written to {}: {}", dir, reason);
    entry.fields = {{"DMS_EVENT", "snapshot_failed"},
                    {"DMS_SNAPSHOT_DIR", std::string(dir)},
                    {"DMS_REASON", std::string(reason)}};
    fault(faultKey(message_id::kSnapshotFailed, dir, reason), std::move(entry));
}

} // namespace dmsd
