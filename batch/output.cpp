#include "batch/output.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fcntl.h>
#include <iterator>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/json.h"
#include "llm/analysis.h"
#include "llm/llm_metrics.h"

namespace dmsd::batch {

namespace json = boost::json;

namespace {

/// Times and confidences are reported to the millisecond / 1e-3: more digits
/// are noise, and fewer differences between runs make outputs comparable.
double round3(double value) {
    return std::round(value * 1000.0) / 1000.0;
}

double seconds(EngineTime t) {
    return static_cast<double>(t.count()) / 1000.0;
}

} // namespace

std::string_view transitionName(AlertEvent::Type type) {
    switch (type) {
    case AlertEvent::Type::Raised:
        return "raised";
    case AlertEvent::Type::LevelChanged:
        return "level_changed";
    case AlertEvent::Type::Cleared:
        return "cleared";
    }
    return "raised";
}

json::object alertJson(const AlertEvent& event) {
    return json::object{{"kind", alertKindName(event.kind)},
                        {"level", alertLevelName(event.level)},
                        {"confidence", round3(event.confidence)},
                        {"t_s", round3(seconds(event.at))},
                        {"transition", transitionName(event.type)}};
}

std::string alertLine(std::string_view video, const AlertEvent& event) {
    // Member order follows docs/interfaces.md section 6.
    const json::object line{{"type", "alert"},
                            {"video", video},
                            {"t_s", round3(seconds(event.at))},
                            {"event", transitionName(event.type)},
                            {"kind", alertKindName(event.kind)},
                            {"level", alertLevelName(event.level)},
                            {"confidence", round3(event.confidence)},
                            {"source", alertSourceName(event.source)},
                            {"sequence_id", event.sequenceId}};
    std::string out;
    appendJson(out, line);
    return out;
}

std::string signalsLine(std::string_view video, const DriverSignals& s) {
    const auto measured = [](const Measured<double>& m, double scale) {
        return m.confidence > 0.0 ? json::value(std::round(m.value * scale) / scale)
                                  : json::value(nullptr);
    };
    const bool pose = s.pose.confidence > 0.0;
    const auto angle = [pose](double degrees) {
        return pose ? json::value(std::round(degrees * 10.0) / 10.0) : json::value(nullptr);
    };
    // Member order follows docs/batch.md.
    const json::object line{{"type", "signals"},
                            {"video", video},
                            {"t_s", round3(s.tS)},
                            {"face_present", s.facePresent.value},
                            {"face_confidence", round3(s.facePresent.confidence)},
                            {"face_absent_s", round3(s.faceAbsentS)},
                            {"ear_right", measured(s.earRight, 1000.0)},
                            {"ear_left", measured(s.earLeft, 1000.0)},
                            {"eyes_closed", s.eyesClosed.value},
                            {"eyes_closed_s", round3(s.eyesClosedS)},
                            {"blinks", s.blinks},
                            {"perclos", round3(s.perclos.value)},
                            {"perclos_confidence", round3(s.perclos.confidence)},
                            {"mar", measured(s.mar, 1000.0)},
                            {"yawns", s.yawns},
                            {"yaw_deg", angle(s.pose.value.yawDeg)},
                            {"pitch_deg", angle(s.pose.value.pitchDeg)},
                            {"roll_deg", angle(s.pose.value.rollDeg)},
                            {"outside_cone_s", round3(s.outsideConeS)},
                            {"conditions", [&s] {
                                 json::array c;
                                 for (const auto& [on, name] :
                                      {std::pair{s.eyesClosedLong, "eyes_closed_long"},
                                       std::pair{s.perclosHigh, "perclos_high"},
                                       std::pair{s.yawningOften, "yawning_often"},
                                       std::pair{s.offRoadLong, "off_road_long"},
                                       std::pair{s.faceAbsentLong, "face_absent_long"}}) {
                                     if (on) {
                                         c.emplace_back(name);
                                     }
                                 }
                                 return c;
                             }()}};
    std::string out;
    appendJson(out, line);
    return out;
}

std::string sequenceLine(std::string_view video, const SequenceResult& result,
                         const std::vector<AlertEvent>& alerts) {
    const EncodedSequence& sequence = *result.sequence;
    json::array pts;
    for (const SampledFrameInfo& frame : sequence.frames) {
        pts.emplace_back(round3(frame.ptsSeconds));
    }
    json::array alertArray;
    for (const AlertEvent& event : alerts) {
        alertArray.emplace_back(alertJson(event));
    }
    // Member order follows docs/interfaces.md section 6 (json::object keeps insertion order).
    json::object line{{"type", "sequence"},
                      {"video", video},
                      {"sequence_id", sequence.sequenceId},
                      {"t_start_s", round3(sequence.tStartS)},
                      {"t_end_s", round3(sequence.tEndS)},
                      {"frames_pts_s", std::move(pts)},
                      {"mode", llmModeName(result.metrics.mode)},
                      {"latency_ms", result.metrics.latency.count()},
                      {"analyses", answersJson(result.answers)},
                      {"alerts", std::move(alertArray)}};
    std::string out;
    out.reserve(1024);
    appendJson(out, line);
    return out;
}

std::string_view statusName(VideoSummary::Status status) {
    switch (status) {
    case VideoSummary::Status::Ok:
        return "ok";
    case VideoSummary::Status::Partial:
        return "partial";
    case VideoSummary::Status::Failed:
        return "failed";
    case VideoSummary::Status::Interrupted:
        return "interrupted";
    }
    return "ok";
}

std::string summaryLine(std::string_view video, const VideoSummary& summary) {
    json::object raised;
    for (const auto& [kind, count] : summary.alertsRaised) {
        raised[kind] = count;
    }
    json::array active;
    for (const std::string& kind : summary.alertsActiveAtEnd) {
        active.emplace_back(kind);
    }
    json::array trailing;
    for (const AlertEvent& event : summary.trailingAlerts) {
        trailing.emplace_back(alertJson(event));
    }
    json::object line{{"type", "summary"},
                      {"video", video},
                      {"status", statusName(summary.status)},
                      {"sequences_analysed", summary.sequencesAnalysed},
                      {"sequences_skipped_static", summary.sequencesSkippedStatic},
                      {"sequences_superseded", summary.sequencesSuperseded},
                      {"sequences_failed", summary.sequencesFailed},
                      {"failures", summary.analysisErrors},
                      {"encode_errors", summary.encodeErrors},
                      {"frames_decoded", summary.framesDecoded},
                      {"time_analysed_s", round3(summary.timeAnalysedS)},
                      {"time_skipped_s", round3(summary.timeSkippedS)},
                      {"duration_s", round3(summary.durationS)},
                      {"alerts_raised", std::move(raised)},
                      {"alerts_active_at_end", std::move(active)},
                      {"alerts", std::move(trailing)}};
    if (summary.status == VideoSummary::Status::Partial) {
        // Where decoding stopped, against the length the file announces.
        line["position_s"] = round3(summary.durationS);
        if (summary.expectedDurationS) {
            line["expected_duration_s"] = round3(*summary.expectedDurationS);
        }
    }
    if (!summary.error.empty()) {
        line["error"] = summary.error;
    }
    std::string out;
    appendJson(out, line);
    return out;
}

LineWriter::LineWriter(int fd) : fd_(fd), name_(fd == STDOUT_FILENO ? "stdout" : "output") {
}

LineWriter::LineWriter(const std::string& path) : name_(path) {
    owned_ = UniqueFd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!owned_) {
        error_ = fmt::format("cannot open --output {}: {} (check the directory exists and is "
                             "writable)",
                             path, std::strerror(errno));
        return;
    }
    fd_ = owned_.get();
}

bool LineWriter::writeLine(std::string line) {
    if (!ok()) {
        return false;
    }
    line += '\n';
    std::size_t done = 0;
    while (done < line.size()) {
        const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error_ =
                fmt::format("writing the results to {} failed: {}", name_, std::strerror(errno));
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    ++lines_;
    return true;
}

} // namespace dmsd::batch
