#include "daemon/status_reporter.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"

namespace dmsd {

namespace json = boost::json;

std::string StatusReporter::line(const HealthState& health, const std::vector<ActiveAlert>& active,
                                 std::string_view modelName, std::string_view configVersion) {
    std::string camera =
        health.cameraOk()
            ? "camera ok"
            : fmt::format("camera {} ({})", toString(health.camera),
                          health.cameraProblem.empty() ? "no frames" : health.cameraProblem);
    std::string model = health.modelOk ? fmt::format("model {} ok", modelName)
                                       : fmt::format("model not usable ({})", health.modelProblem);
    std::string alerts;
    for (const ActiveAlert& alert : active) {
        alerts += fmt::format("{}{} {}", alerts.empty() ? "" : ", ", alertKindName(alert.kind),
                              alertLevelName(alert.level));
    }
    return fmt::format("{}: {}; {}; alerts: {}; config {}", serviceStateName(health.state), camera,
                       model, alerts.empty() ? "none" : alerts, configVersion);
}

namespace {

/// `model.gpu`: where the model sits (Ollama's /api/ps after the warm-up); null when unknown.
boost::json::value gpuJson(const std::optional<ModelPlacement>& placement) {
    if (!placement) {
        return nullptr;
    }
    return boost::json::object{{"size_mb", placement->size >> 20},
                               {"vram_mb", placement->sizeVram >> 20},
                               {"whole_in_gpu", placement->wholeInGpu()}};
}

/// `model.context`: what an image costs on the server and what the fit chose.
boost::json::object contextJson(const ContextReport& c) {
    json::object out{{"state", contextStateName(c.state)}};
    if (c.state == ContextReport::State::Failed) {
        out["problem"] = c.problem;
    }
    if (c.state != ContextReport::State::Measured) {
        return out;
    }
    const BudgetPlan& p = c.plan;
    out["per_image"] = c.tokensPerImage;
    out["image"] = fmt::format("{}x{}", c.imageWidth, c.imageHeight);
    out["prompt"] = c.promptTokens;
    out["num_predict"] = c.numPredict;
    out["needed"] = p.needed;
    out["context"] = p.context;
    out["fits"] = p.fits;
    out["change"] = p.change;
    out["num_ctx"] = p.numCtx ? json::value(*p.numCtx) : json::value(nullptr);
    out["frames_per_sequence"] = p.frames ? json::value(*p.frames) : json::value(nullptr);
    out["layout"] =
        p.layout ? json::value(choiceName(ChoiceNames<ImageLayout>(kImageLayoutNames), *p.layout))
                 : json::value(nullptr);
    out["needed_after"] = p.neededAfter;
    out["context_after"] = p.contextAfter;
    return out;
}

/// GetStatus's `vision` block: always there, with `null` for what is not
/// measured (no face, the stage not running).
boost::json::object visionJson(const StatusSnapshot& s) {
    namespace json = boost::json;
    json::object v;
    if (!s.vision) {
        v["state"] = "disabled";
    } else {
        v["state"] = visionStateName(s.vision->state);
    }
    v["failure"] = s.vision ? s.vision->failure : std::string();
    v["frames_processed"] = s.vision ? s.vision->framesProcessed : 0;
    v["frames_skipped"] = s.vision ? s.vision->framesSkipped : 0;
    v["cpu_per_frame_ms"] = s.vision ? std::round(s.vision->cpuPerFrameMs * 100.0) / 100.0 : 0.0;
    v["onsets"] = s.visionOnsets;
    v["quiet"] = s.visionQuiet;
    const DriverSignals* latest = s.vision && s.vision->latest ? &*s.vision->latest : nullptr;
    const bool face = latest != nullptr && latest->facePresent.value;
    const auto rounded = [](double value, double scale) {
        return json::value(std::round(value * scale) / scale);
    };
    v["face_present"] = latest != nullptr ? json::value(face) : json::value(nullptr);
    v["ear"] = face && latest->eyesClosed.confidence > 0.0
                   ? rounded((latest->earLeft.value + latest->earRight.value) / 2.0, 1000.0)
                   : json::value(nullptr);
    v["perclos"] = latest != nullptr && latest->perclos.confidence > 0.0
                       ? rounded(latest->perclos.value, 1000.0)
                       : json::value(nullptr);
    v["yaw_deg"] = face && latest->pose.confidence > 0.0 ? rounded(latest->pose.value.yawDeg, 10.0)
                                                         : json::value(nullptr);
    v["pitch_deg"] = face && latest->pose.confidence > 0.0
                         ? rounded(latest->pose.value.pitchDeg, 10.0)
                         : json::value(nullptr);
    return v;
}

} // namespace

std::string StatusReporter::json(const StatusSnapshot& s) {
    const Config& config = *s.config;
    json::object status;
    status["state"] = serviceStateName(s.health.state);
    status["config_version"] = config.version;
    json::array active;
    for (const ActiveAlert& alert : s.active) {
        // The engine counts in its own milliseconds; the contract wants wall time.
        const auto ageUs = static_cast<std::uint64_t>(
            std::max<std::int64_t>(0, (s.engineNow - alert.since).count()) * 1000);
        active.push_back(
            json::object{{"kind", alertKindName(alert.kind)},
                         {"level", alertLevelName(alert.level)},
                         {"confidence", alert.confidence},
                         {"since_us", ageUs < s.realtimeUs ? s.realtimeUs - ageUs : s.realtimeUs}});
    }
    status["active_alerts"] = std::move(active);
    status["driver_state"] = faceStateName(s.driverState);
    status["mode"] = llmModeName(s.activeMode);
    status["configured_mode"] = llmModeName(config.llm.scheduler.mode);
    status["counters"] = json::object{
        {"frames_captured", s.capture.framesCaptured},
        {"frames_dropped", s.capture.framesDropped},
        {"sequences_analysed", s.sequences.analysed},
        {"sequences_skipped_static", s.sequences.skippedStatic},
        {"sequences_superseded", s.sequences.superseded},
        {"requests", s.llm.requests},
        {"request_errors", s.llm.requestErrors},
        {"cache_hits", s.llm.cacheHits},
        {"cache_misses", s.llm.cacheMisses},
        {"camera_restarts", s.capture.restarts},
        {"frames_encoded", s.frames.framesEncoded},
        {"reloads_applied", s.ota.reloadsApplied},
        {"reloads_rejected", s.ota.reloadsRejected},
        {"rollbacks", s.ota.rollbacks},
        {"protocol_errors", s.llm.client.protocolErrors},
        {"stalled_responses", s.llm.client.stalledResponses},
        {"truncated_answers", s.llm.client.truncatedAnswers},
    };
    status["latency_ms"] = json::object{
        {"sequence_p50", s.llm.sequenceP50Ms},
        {"sequence_p95", s.llm.sequenceP95Ms},
        {"request_p50", s.llm.requestP50Ms},
        {"request_p95", s.llm.requestP95Ms},
    };
    status["alert_path_us"] = json::object{{"events", s.alertPath.events},
                                           {"p50", s.alertPath.p50},
                                           {"p99", s.alertPath.p99},
                                           {"max", s.alertPath.max}};
    status["camera"] = json::object{{"source", config.capture.source},
                                    {"state", toString(s.health.camera)},
                                    {"problem", s.health.cameraProblem}};
    status["model"] =
        json::object{{"url", serverUrlsText(config.llm.server)},
                     {"model", config.llm.model.name},
                     {"usable", s.health.modelOk},
                     {"problem", s.health.modelOk ? std::string() : s.health.modelProblem},
                     {"connections_opened", s.llm.client.connectionsOpened},
                     {"gpu", gpuJson(s.llm.client.placement)},
                     {"context", contextJson(s.context)}};
    if (!s.llm.client.servers.empty()) {
        // llm.url a list: each server's state (llm/server_pool.h).
        json::array servers;
        for (const ServerStatus& server : s.llm.client.servers) {
            servers.push_back(
                json::object{{"url", redactUrl(server.url)},
                             {"in_service", server.inService},
                             {"reason", server.reason},
                             {"outstanding", server.outstanding},
                             {"latency_ewma_ms", std::round(server.latencyEwmaMs * 10) / 10},
                             {"requests", server.requests},
                             {"failures", server.failures},
                             {"set_asides", server.setAsides}});
        }
        status["model"].as_object()["servers"] = std::move(servers);
    }
    if (s.lastAnalysisUs) {
        status["last_analysis_us"] = *s.lastAnalysisUs;
    }
    status["config_error"] = s.configError;
    status["vision"] = visionJson(s);
    if (s.can) {
        status["can"] = json::object{{"state", canLinkStateName(s.can->state)},
                                     {"interface", s.can->interface},
                                     {"frames_sent", s.can->framesSent},
                                     {"last_error", s.can->lastError}};
    }
    if (s.snapshots) {
        status["snapshots"] = json::object{{"dir", config.notify.snapshots.dir},
                                           {"written", s.snapshots->written},
                                           {"failed", s.snapshots->failed},
                                           {"last", s.snapshots->lastPath.string()}};
    }
    if (s.metrics) {
        status["metrics"] = json::object{{"textfile", config.metrics.textfile},
                                         {"written", s.metrics->written},
                                         {"failed", s.metrics->failed},
                                         {"bytes", s.metrics->bytes},
                                         {"last_write_us", s.metrics->lastWriteUs},
                                         {"max_write_us", s.metrics->maxWriteUs},
                                         {"last_error", s.metrics->lastError}};
    }
    return writeJson(status);
}

void StatusReporter::publish(const std::string& line, bool ready) {
    if (line == last_) {
        return;
    }
    last_ = line;
    notifier_.status(line);
    if (ready) {
        // Each change it sums up has its own journal entry (camera fault,
        // model fault, alert raised, configuration applied): at info this
        // line would say every event a second time. `systemctl status` shows it.
        log::debug("status: {}", line);
    }
}

} // namespace dmsd
