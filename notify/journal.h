#pragma once

/// \file
/// The journal entries a technician reads: fixed MESSAGE_IDs (documented in
/// docs/operations.md and systemd/dmsd.catalog), `DMS_*` fields and syslog
/// priorities chosen so that `journalctl -u dmsd -p warning` shows every alert
/// and every fault. Short MESSAGE, detail in fields. Repeated identical faults
/// are rate-limited: the first is written, the repeats are counted and summed up
/// in one "N more ... suppressed" entry when the burst ends or periodically.
///
/// Entries go through dmsd::log::write (journal or stderr) unless a sink is
/// injected (tests). Thread-safe.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "alerts/alert_types.h"
#include "base/log.h"

namespace dmsd {

/// MESSAGE_IDs of dmsd's journal entries (generated with `systemd-id128 new`; never change them).
namespace message_id {
inline constexpr std::string_view kAlertRaised = "a2f054f205fc473fbfa8dd9ff9e473a4";
inline constexpr std::string_view kAlertLevelChanged = "f75a5d2b9452441ab30080c5fbd51ef0";
inline constexpr std::string_view kAlertCleared = "7d05cfccc9c74ddb80d8526e9056d18b";
inline constexpr std::string_view kConfigApplied = "70d50aebe2be48b3b9405226e815cf9b";
inline constexpr std::string_view kConfigRejected = "41e8d5ddac9d40cfba437136aa5e0033";
inline constexpr std::string_view kConfigRolledBack = "6fdd22e809d144a8a162fd3f18399ca1";
inline constexpr std::string_view kCameraFault = "bd68f6b6af21434b9de659dd5462e707";
inline constexpr std::string_view kCameraRecovered = "719f439a786a4e11bc11132aa24a2cc2";
inline constexpr std::string_view kAnalyzerFault = "d33fd534db734115b69ac5e06451a256";
inline constexpr std::string_view kAnalyzerRecovered = "ebb5407388bc48fcb20e9c301d3eff4e";
inline constexpr std::string_view kDaemonStarted = "a96e34c760954543a93a3ffd32a989b1";
inline constexpr std::string_view kDaemonStopping = "051a5333e6fd4f92a9f538d86fc41f62";
inline constexpr std::string_view kCanFault = "b272fc5c12ab42d599d51ae473421203";
inline constexpr std::string_view kCanRecovered = "f365a9fb2d2e4a9ab68b793c5b8ddef5";
inline constexpr std::string_view kSnapshotFailed = "4cb9676c81884944bd73635c097141d0";
inline constexpr std::string_view kSuppressed = "8bc471bf30d743aea9fc9f096c59db06";
} // namespace message_id

/// One composed journal entry.
struct JournalEntry {
    log::Priority priority = log::Priority::Info;
    std::string message;                                     ///< short MESSAGE for the technician
    std::string messageId;                                   ///< one of message_id, or empty
    std::vector<std::pair<std::string, std::string>> fields; ///< DMS_* name -> value
    /// The call that reported it (CODE_FILE, CODE_LINE, CODE_FUNC); for a
    /// summary, the report it sums up.
    log::SourceLocation where;

    /// Value of field \a name, nullopt when absent.
    std::optional<std::string> field(std::string_view name) const;
};

/// Where entries go; the default writes through dmsd::log::write.
using JournalSink = std::function<void(const JournalEntry&)>;
using JournalClock = std::function<std::chrono::steady_clock::time_point()>;

/// How repeated identical faults are folded.
struct FaultRatePolicy {
    /// A burst ends when its key has not occurred for this long.
    std::chrono::milliseconds quiet{30000};
    /// While a burst goes on, a summary is written at most this often.
    std::chrono::milliseconds summaryEvery{60000};
};

/// Counts repeats of identical entries (same key) and decides what to write.
/// Not thread-safe by itself (Journal serialises it). Pure: time is passed in.
class FaultRateLimiter {
public:
    using TimePoint = std::chrono::steady_clock::time_point;
    using Policy = FaultRatePolicy;
    /// A summary due: \a suppressed repeats of \a first over \a span.
    struct Summary {
        JournalEntry first;
        std::uint64_t suppressed = 0;
        std::chrono::milliseconds span{0};
        bool burstEnded = false;
    };

    explicit FaultRateLimiter(Policy policy = FaultRatePolicy{}) : policy_(policy) {}

    /// Records one occurrence of \a entry under \a key at \a now. Returns true when
    /// it should be written (first of a burst), false when it is counted instead.
    /// Summaries that became due (of any key) are appended to \a due.
    bool admit(const std::string& key, const JournalEntry& entry, TimePoint now,
               std::vector<Summary>& due);
    /// Appends summaries of bursts that ended or whose periodic summary is due.
    void collect(TimePoint now, std::vector<Summary>& due);
    /// Ends every burst whose key starts with \a keyPrefix (e.g. on recovery); returns
    /// the total of repeats that were suppressed and appends their summaries.
    std::uint64_t end(std::string_view keyPrefix, TimePoint now, std::vector<Summary>& due);
    /// Number of bursts being tracked.
    std::size_t tracked() const { return bursts_.size(); }

private:
    struct Burst {
        JournalEntry first;
        TimePoint firstAt;
        TimePoint lastAt;
        TimePoint summaryFrom; ///< start of the period the current count covers
        std::uint64_t suppressed = 0;
    };
    Policy policy_;
    std::map<std::string, Burst, std::less<>> bursts_;
};

/// Context of an alert entry beyond the event itself.
struct AlertLogContext {
    std::string_view configVersion;
    /// From the capture of the deciding sequence's last frame to the decision.
    std::optional<std::chrono::milliseconds> latency;
    /// For clears: how long the alert was raised.
    std::optional<std::chrono::milliseconds> duration;
};

/// Writes dmsd's journal entries. One per process (Journal::process()) in the
/// daemon; tests make their own with a capturing sink and a fake clock.
class Journal {
public:
    explicit Journal(JournalSink sink = {}, JournalClock clock = {},
                     FaultRatePolicy policy = FaultRatePolicy{});

    /// The process-wide instance (log::write, steady clock, default policy).
    static Journal& process();

    /// Alert raised / level changed / cleared. Priority: critical -> crit,
    /// warning -> warning, info -> notice, cleared -> notice.
    void alert(const AlertEvent& event, const AlertLogContext& context,
               log::SourceLocation where = log::SourceLocation::current());

    void configApplied(std::string_view version, std::string_view previousVersion,
                       std::string_view changedParts,
                       log::SourceLocation where = log::SourceLocation::current());
    /// \a source names the file (and line/key) at fault; \a reason is the validation message.
    void configRejected(std::string_view source, std::string_view reason,
                        std::string_view runningVersion,
                        log::SourceLocation where = log::SourceLocation::current());
    void configRolledBack(std::string_view toVersion, std::string_view fromVersion,
                          std::string_view reason,
                          log::SourceLocation where = log::SourceLocation::current());

    /// Rate-limited per (source, reason).
    void cameraFault(std::string_view source, std::string_view reason,
                     log::SourceLocation where = log::SourceLocation::current());
    void cameraRecovered(std::string_view source, std::optional<std::chrono::milliseconds> outage,
                         log::SourceLocation where = log::SourceLocation::current());
    /// Rate-limited per (url, reason).
    void analyzerFault(std::string_view url, std::string_view reason,
                       log::SourceLocation where = log::SourceLocation::current());
    void analyzerRecovered(std::string_view url, std::optional<std::chrono::milliseconds> outage,
                           log::SourceLocation where = log::SourceLocation::current());

    /// The daemon runs: its version, the configuration, the camera and the model it uses.
    void daemonStarted(std::string_view daemonVersion, std::string_view configVersion,
                       std::string_view camera, std::string_view model, std::string_view modelUrl,
                       log::SourceLocation where = log::SourceLocation::current());
    void daemonStopping(std::string_view reason,
                        log::SourceLocation where = log::SourceLocation::current());

    /// CAN link faults (missing interface, bus-off, full transmit queue); rate-limited.
    void canFault(std::string_view interface, std::string_view reason,
                  log::SourceLocation where = log::SourceLocation::current());
    void canRecovered(std::string_view interface,
                      log::SourceLocation where = log::SourceLocation::current());
    /// Snapshot write failures; rate-limited per (dir, reason).
    void snapshotFailed(std::string_view dir, std::string_view reason,
                        log::SourceLocation where = log::SourceLocation::current());

    /// Writes the summaries of fault bursts that ended or are due. The daemon
    /// calls this periodically (every few seconds); the fault functions call it too.
    void flushSuppressed();

private:
    void emit(const JournalEntry& entry);
    void emitAll(std::vector<JournalEntry>& entries);
    void fault(const std::string& key, JournalEntry entry);
    void recovered(std::string_view keyPrefix, JournalEntry entry);
    static JournalEntry summaryEntry(const FaultRateLimiter::Summary& summary);

    JournalSink sink_;
    JournalClock clock_;
    std::mutex mutex_;
    FaultRateLimiter limiter_;
};

/// Formats a confidence 0..1 as the DMS_CONFIDENCE value ("0.83").
std::string formatConfidence(double confidence);

} // namespace dmsd
