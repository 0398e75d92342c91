#pragma once

/// \file
/// The JSON Lines of one or many `dmsd analyze` runs (shards too) read back
/// into one trip log per video: its sequences (times, driver state, latency),
/// its alert decisions and its summary. Lines of other types are skipped; a
/// line that is not JSON, or an alert/sequence/summary line missing a field,
/// is a problem naming its file and line, and the rest is still read.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace dmsd::report {

/// One `sequence` line, as far as the report needs it.
struct SequenceRecord {
    std::uint64_t id = 0;
    double startS = 0.0;
    double endS = 0.0;
    std::string driverState; ///< face_state.state, or "" when not answered
    std::int64_t latencyMs = 0;
};

/// One `alert` line: an engine decision.
struct AlertRecord {
    double tS = 0.0;
    std::string event; ///< raised, level_changed, cleared
    std::string kind;  ///< DROWSINESS, ...
    std::string level; ///< warning, critical, cleared (info in principle)
    double confidence = 0.0;
    std::string source; ///< model, vision, health
};

/// Everything known of one video.
struct VideoLog {
    std::string video;          ///< as `dmsd analyze` named it
    std::filesystem::path from; ///< the file its lines came from
    std::vector<SequenceRecord> sequences;
    std::vector<AlertRecord> alerts; ///< in output order (video time order)
    std::optional<double> durationS; ///< from the summary line
    std::string status;              ///< ok, failed, partial, interrupted ("" without summary)
    std::string error;               ///< the summary's error, if any
};

/// What was read.
struct TripLog {
    std::vector<VideoLog> videos;      ///< in the order first seen
    std::vector<std::string> problems; ///< "FILE:LINE: reason"
};

/// Reads the given files in order. A video whose lines are in more than one
/// file (the same video analysed twice) is taken from the first file, and the
/// later ones are a problem. A file that cannot be read is a problem too.
TripLog readTripLogs(const std::vector<std::filesystem::path>& files);

} // namespace dmsd::report
