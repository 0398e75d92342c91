#pragma once

/// \file
/// The JSON Lines of `dmsd analyze` (docs/interfaces.md section 6): formatting of the
/// `sequence` and `summary` lines, and a writer that puts each line out whole
/// with one write(2) and no user-space buffering, so that a reader (or a
/// Ctrl-C) never sees half a line. See docs/batch.md for every field.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/value.hpp>

#include "alerts/alert_types.h"
#include "base/unique_fd.h"
#include "llm/analysis_scheduler.h"
#include "vision/signals.h"

namespace dmsd::batch {

/// `"raised"`, `"level_changed"`, `"cleared"`.
std::string_view transitionName(AlertEvent::Type type);

/// One engine decision as a line of its own (docs/batch.md):
/// `{"type":"alert","video","t_s","event","kind","level","confidence","source","sequence_id"}`.
std::string alertLine(std::string_view video, const AlertEvent& event);

/// One alert transition as it appears in a line's `alerts` array:
/// `{"kind","level","confidence","t_s","transition"}`.
boost::json::object alertJson(const AlertEvent& event);

/// The `sequence` line (without the newline) of one analysed sequence and the
/// alert transitions decided with it.
std::string sequenceLine(std::string_view video, const SequenceResult& result,
                         const std::vector<AlertEvent>& alerts);

/// The `signals` line (`--signals`) of one frame the per-frame vision analysed:
/// `{"type":"signals","video","t_s","face_present","face_confidence",...}`
/// (docs/batch.md). Values not measured at the frame are `null`.
std::string signalsLine(std::string_view video, const DriverSignals& signals);

/// What the `summary` line of one video reports.
struct VideoSummary {
    /// Partial: decoding stopped before the end of the video (a truncated or
    /// corrupt file); `durationS` is the position reached and `error` says why.
    enum class Status { Ok, Partial, Failed, Interrupted };
    Status status = Status::Ok;
    std::uint64_t sequencesAnalysed = 0;
    std::uint64_t sequencesSkippedStatic = 0;
    std::uint64_t sequencesSuperseded = 0; ///< --realtime: replaced while waiting
    std::uint64_t sequencesFailed = 0;     ///< every asked analysis failed
    std::uint64_t analysisErrors = 0;      ///< `{"error"}` objects in the lines ("failures")
    std::uint64_t encodeErrors = 0;
    std::uint64_t framesDecoded = 0;
    double timeAnalysedS = 0.0; ///< video time covered by analysed sequences
    double timeSkippedS = 0.0;  ///< video time covered by skipped static windows
    double durationS = 0.0;     ///< end of the last window (video time)
    std::map<std::string, std::uint64_t> alertsRaised; ///< per kind name
    std::vector<std::string> alertsActiveAtEnd;
    /// Transitions no sequence line carried (after the video's last sequence).
    std::vector<AlertEvent> trailingAlerts;
    std::string error; ///< why the video could not be opened or decoded (to its end)
    std::optional<double> expectedDurationS; ///< Partial: the length the file announces
};

/// `"ok"`, `"partial"`, `"failed"`, `"interrupted"`.
std::string_view statusName(VideoSummary::Status status);

/// The `summary` line (without the newline) of one video.
std::string summaryLine(std::string_view video, const VideoSummary& summary);

/// Writes whole lines to a file descriptor. Single-threaded (the io thread).
class LineWriter {
public:
    /// Writes to \a fd (not owned; e.g. STDOUT_FILENO).
    explicit LineWriter(int fd);
    /// Creates or truncates \a path; on failure error() says why, naming the file.
    explicit LineWriter(const std::string& path);

    bool ok() const { return error_.empty(); }
    /// The first write or open error (naming the output); empty when fine.
    const std::string& error() const { return error_; }

    /// Appends '\n' and writes the line with one write(2) (retried on partial
    /// writes and EINTR). False after an error (later lines are dropped).
    bool writeLine(std::string line);
    std::uint64_t linesWritten() const { return lines_; }

private:
    UniqueFd owned_;
    int fd_ = -1;
    std::string name_;
    std::string error_;
    std::uint64_t lines_ = 0;
};

} // namespace dmsd::batch
