#pragma once

// Hand-written `dmsd analyze` lines for the report tests (docs/batch.md).

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

namespace dmsd::test {

/// A JSON string literal (quoted and escaped) for \a text.
inline std::string quoted(const std::string& text) {
    return boost::json::serialize(boost::json::value(text));
}

inline std::string sequenceLine(const std::string& video, int id, double start, double end,
                                const std::string& state, int latencyMs) {
    return fmt::format(
        R"({{"type":"sequence","video":{},"sequence_id":{},"t_start_s":{},"t_end_s":{},)"
        R"("frames_pts_s":[],"mode":"parallel","latency_ms":{},"analyses":{{"face_state":)"
        R"({{"state":"{}","eyes_closed":false,"yawning":false,"confidence":0.9}}}},"alerts":[]}})",
        quoted(video), id, start, end, latencyMs, state);
}

inline std::string alertLine(const std::string& video, double t, const std::string& event,
                             const std::string& kind, const std::string& level,
                             const std::string& source = "model") {
    return fmt::format(
        R"({{"type":"alert","video":{},"t_s":{},"event":"{}","kind":"{}","level":"{}",)"
        R"("confidence":0.9,"source":"{}","sequence_id":1}})",
        quoted(video), t, event, kind, level, source);
}

inline std::string summaryLine(const std::string& video, double duration,
                               const std::string& status = "ok") {
    return fmt::format(R"({{"type":"summary","video":{},"status":"{}","duration_s":{}}})",
                       quoted(video), status, duration);
}

/// Writes \a lines to \a path, one per line; returns \a path.
inline std::filesystem::path writeLines(const std::filesystem::path& path,
                                        const std::vector<std::string>& lines) {
    std::ofstream out(path);
    for (const std::string& line : lines) {
        out << line << '\n';
    }
    return path;
}

} // namespace dmsd::test
