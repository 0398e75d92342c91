#pragma once

/// \file
/// The evidence of `dmsd analyze --evidence DIR` read back for the HTML trip
/// report: each snapshot directory's sidecar (`alert.json`: the video, the
/// alert's kind and video time, the frame files) and its JPEG frames, then
/// matched to the alert interval whose raise it shows. The files are read as
/// inputs dmsd did not write (base/input_file.h): a FIFO, an oversized file or
/// a frame that is not a JPEG is a problem naming the file, never a hang, and
/// the rest is still read. The frames embedded in one report are bounded
/// (`EvidenceLimits`); beyond the bound they are counted, not read.

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include "report/intervals.h"

namespace dmsd::report {

/// One JPEG frame of a snapshot.
struct EvidenceFrame {
    std::string file; ///< its name in the snapshot directory (frame-0.jpg, mosaic.jpg)
    std::string jpeg; ///< the file's bytes (starting with the JPEG SOI marker)
};

/// One snapshot directory: the raise of one alert in one video.
struct EvidenceSnapshot {
    std::filesystem::path dir;
    std::string video; ///< the sidecar's video.path (as `analyze` named the video)
    std::string kind;  ///< DROWSINESS, ...
    double tS = 0.0;   ///< the alert's video time
    std::vector<EvidenceFrame> frames;
};

/// How much one report embeds.
struct EvidenceLimits {
    std::size_t maxFrameBytes = std::size_t{4} << 20;  ///< a larger frame is a problem
    std::size_t maxTotalBytes = std::size_t{64} << 20; ///< frames beyond are left out
};

/// What was read from the evidence directories.
struct Evidence {
    std::vector<EvidenceSnapshot> snapshots; ///< per directory, in name (= raise) order
    std::vector<std::string> problems;       ///< "PATH: reason"
    std::size_t framesLeftOut = 0;           ///< beyond EvidenceLimits::maxTotalBytes
};

/// Reads every snapshot directory (`NNNNNNNN-...-KIND`) directly under each of
/// \a dirs. Snapshots of escalations and clears, and of `dmsd run` (no video),
/// are skipped: the report shows the frames that raised an alert.
Evidence readEvidence(const std::vector<std::filesystem::path>& dirs,
                      const EvidenceLimits& limits = {});

/// Points each interval of \a report at the snapshot of its raise: the same
/// video and kind, and the same video time (within a millisecond). Returns
/// how many snapshots matched no interval (of videos not in the report, say).
/// \a evidence must outlive \a report's use of it.
std::size_t attachEvidence(FleetReport& report, const Evidence& evidence);

} // namespace dmsd::report
