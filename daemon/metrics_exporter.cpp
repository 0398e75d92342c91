#include "daemon/metrics_exporter.h"

#include <algorithm>
#include <array>

#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/version.h"

namespace dmsd {

namespace {

constexpr std::array kServiceStates = {ServiceState::Starting, ServiceState::Running,
                                       ServiceState::Degraded, ServiceState::Stopping};
constexpr std::array kCameraStates = {
    CameraState::Stopped,  CameraState::Starting, CameraState::Streaming, CameraState::Lost,
    CameraState::Retrying, CameraState::Ended,    CameraState::Failed};

double number(std::uint64_t value) {
    return static_cast<double>(value);
}

/// The alert level as a number, as in the CAN alert frame's byte 1
/// (docs/interfaces.md section 5): 0 not raised, 1 info, 2 warning, 3 critical.
double levelCode(AlertLevel level) {
    switch (level) {
    case AlertLevel::Cleared:
        return 0;
    case AlertLevel::Info:
        return 1;
    case AlertLevel::Warning:
        return 2;
    case AlertLevel::Critical:
        return 3;
    }
    return 0;
}

} // namespace

std::vector<double> sequenceLatencyBucketsSeconds() {
    return {0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30};
}

std::string metricsText(const StatusSnapshot& s, const Histogram& sequenceLatency,
                        const Histogram& alertPath) {
    const Config& config = *s.config;
    Exposition out;
    out.family("dmsd_info", "gauge", "dmsd's version and the configuration in force (always 1)");
    out.sample("dmsd_info",
               {{"version", std::string(kVersion)}, {"config_version", config.version}}, 1);

    out.family("dmsd_state", "gauge", "Service state: 1 for the current one (D-Bus State)");
    for (ServiceState state : kServiceStates) {
        out.sample("dmsd_state", {{"state", std::string(serviceStateName(state))}},
                   state == s.health.state ? 1 : 0);
    }
    out.family("dmsd_camera_state", "gauge", "Camera state: 1 for the current one");
    for (CameraState state : kCameraStates) {
        out.sample("dmsd_camera_state", {{"state", toString(state)}},
                   state == s.health.camera ? 1 : 0);
    }
    out.gauge("dmsd_camera_up", "1 while frames arrive from the camera",
              s.health.cameraOk() ? 1 : 0);
    out.gauge("dmsd_model_up", "1 while the model server answers", s.health.modelOk ? 1 : 0);
    out.family("dmsd_alert_level", "gauge",
               "Level of each alert kind: 0 not raised, 1 info, 2 warning, 3 critical");
    for (AlertKind kind : kAllAlertKinds) {
        double level = 0;
        for (const ActiveAlert& alert : s.active) {
            if (alert.kind == kind) {
                level = levelCode(alert.level);
            }
        }
        out.sample("dmsd_alert_level", {{"kind", std::string(alertKindName(kind))}}, level);
    }

    out.counter("dmsd_frames_captured_total", "Frames that reached the capture's sink",
                number(s.capture.framesCaptured));
    out.counter("dmsd_frames_dropped_total", "Frames dropped because the sampler was behind",
                number(s.capture.framesDropped));
    out.counter("dmsd_frames_encoded_total", "Frames encoded to JPEG",
                number(s.frames.framesEncoded));
    out.counter("dmsd_camera_restarts_total", "Capture pipeline restarts",
                number(s.capture.restarts));
    out.family("dmsd_sequences_total", "counter",
               "Sequences by outcome: analysed, skipped as static, superseded by a newer one");
    out.sample("dmsd_sequences_total", {{"result", "analysed"}}, number(s.sequences.analysed));
    out.sample("dmsd_sequences_total", {{"result", "skipped_static"}},
               number(s.sequences.skippedStatic));
    out.sample("dmsd_sequences_total", {{"result", "superseded"}}, number(s.sequences.superseded));
    out.counter("dmsd_model_requests_total", "Requests to the model server (cache hits excluded)",
                number(s.llm.requests));
    out.counter("dmsd_model_request_errors_total",
                "Requests that failed or gave an unusable answer", number(s.llm.requestErrors));
    out.counter("dmsd_model_protocol_errors_total",
                "Model server responses that broke HTTP's framing (not trusted)",
                number(s.llm.client.protocolErrors));
    out.counter("dmsd_model_stalled_responses_total",
                "Model server responses slower than llm.min_response_rate",
                number(s.llm.client.stalledResponses));
    out.counter("dmsd_model_truncated_answers_total",
                "Answers made from a truncated prompt or cut at the token limit (not used)",
                number(s.llm.client.truncatedAnswers));
    if (const std::vector<ServerStatus>& servers = s.llm.client.servers; !servers.empty()) {
        // Several servers (llm.url a list): one series per server, by its
        // URL as GetStatus shows it (user info and secret values redacted).
        const auto each = [&](std::string_view name, std::string_view type, std::string_view help,
                              auto value) {
            out.family(name, type, help);
            for (const ServerStatus& server : servers) {
                out.sample(name, {{"url", redactUrl(server.url)}}, value(server));
            }
        };
        each("dmsd_model_server_up", "gauge", "1 while the model server is in service, 0 set aside",
             [](const ServerStatus& v) { return v.inService ? 1.0 : 0.0; });
        each("dmsd_model_server_outstanding", "gauge", "Requests sent to the server, not finished",
             [](const ServerStatus& v) { return number(v.outstanding); });
        each("dmsd_model_server_latency_ewma_seconds", "gauge",
             "The server's peak-EWMA latency estimate, which routes the requests",
             [](const ServerStatus& v) { return v.latencyEwmaMs / 1000.0; });
        each("dmsd_model_server_requests_total", "counter", "Requests sent to the server",
             [](const ServerStatus& v) { return number(v.requests); });
        each("dmsd_model_server_failures_total", "counter",
             "Requests to the server that failed with a server or transport fault",
             [](const ServerStatus& v) { return number(v.failures); });
    }
    out.family("dmsd_model_cache_total", "counter", "Answer cache lookups by result");
    out.sample("dmsd_model_cache_total", {{"result", "hit"}}, number(s.llm.cacheHits));
    out.sample("dmsd_model_cache_total", {{"result", "miss"}}, number(s.llm.cacheMisses));
    out.family("dmsd_config_reloads_total", "counter", "Configuration reloads by result");
    out.sample("dmsd_config_reloads_total", {{"result", "applied"}}, number(s.ota.reloadsApplied));
    out.sample("dmsd_config_reloads_total", {{"result", "rejected"}},
               number(s.ota.reloadsRejected));
    out.counter("dmsd_config_rollbacks_total", "Configurations rolled back",
                number(s.ota.rollbacks));
    out.counter("dmsd_can_frames_sent_total", "CAN alert and heartbeat frames sent",
                number(s.can ? s.can->framesSent : 0));
    out.family("dmsd_snapshots_total", "counter", "Alert snapshots by result");
    out.sample("dmsd_snapshots_total", {{"result", "written"}},
               number(s.snapshots ? s.snapshots->written : 0));
    out.sample("dmsd_snapshots_total", {{"result", "failed"}},
               number(s.snapshots ? s.snapshots->failed : 0));

    out.histogram("dmsd_sequence_latency_seconds",
                  "Capture of a sequence's last frame to its last answer", sequenceLatency);
    out.histogram("dmsd_alert_path_seconds",
                  "Answers complete to the alert's CAN frame and D-Bus signal sent", alertPath);
    return out.text();
}

MetricsExporter::MetricsExporter(boost::asio::io_context& io, std::function<std::string()> compose)
    : compose_(std::move(compose)), timer_(io) {
}

MetricsExporter::~MetricsExporter() {
    {
        std::lock_guard lock(mutex_);
        quit_ = true;
    }
    wake_.notify_all();
    if (writer_.joinable()) {
        writer_.join();
    }
}

void MetricsExporter::start(const MetricsSettings& settings) {
    timer_.cancel();
    settings_ = settings;
    if (!enabled()) {
        return;
    }
    writeNow();
    arm();
}

void MetricsExporter::stop(std::chrono::milliseconds flushTimeout) {
    timer_.cancel();
    std::unique_lock lock(mutex_);
    // Bounded: a disk that hangs must not hold the daemon's stop (systemd
    // would kill it); the file then keeps its previous content.
    idle_.wait_for(lock, flushTimeout, [this] { return !pending_ && !busy_; });
}

void MetricsExporter::arm() {
    timer_.expires_after(settings_.interval);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        writeNow();
        arm();
    });
}

void MetricsExporter::writeNow() {
    if (!enabled()) {
        return;
    }
    // Composed here, on the loop, so that the file is one consistent snapshot
    // of state owned by the loop; only the file system work is handed over.
    Job job{settings_.textfile, compose_()};
    {
        std::lock_guard lock(mutex_);
        pending_ = std::move(job); // a write still waiting is stale: replaced
        if (!writer_.joinable()) {
            writer_ = std::thread([this] { writerLoop(); });
        }
    }
    wake_.notify_one();
}

MetricsWriterStats MetricsExporter::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void MetricsExporter::writerLoop() {
    std::unique_lock lock(mutex_);
    while (true) {
        wake_.wait(lock, [this] { return quit_ || pending_; });
        if (!pending_) {
            return; // quit, and nothing left to write
        }
        Job job = std::move(*pending_);
        pending_.reset();
        busy_ = true;
        lock.unlock();
        write(job);
        lock.lock();
        busy_ = false;
        if (!pending_) {
            idle_.notify_all();
        }
    }
}

void MetricsExporter::write(const Job& job) {
    const auto begin = std::chrono::steady_clock::now();
    // node_exporter runs as another user and the service's umask is 0077: the
    // file's mode is set exactly. No fsync: see the header.
    const std::error_code error =
        writeFileAtomically(job.path, job.text, AtomicWrite{0644, Durability::Atomic, true});
    const double us =
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - begin).count();
    std::string logged;
    {
        std::lock_guard lock(mutex_);
        stats_.lastWriteUs = us;
        stats_.maxWriteUs = std::max(stats_.maxWriteUs, us);
        if (!error) {
            ++stats_.written;
            stats_.bytes = job.text.size();
            stats_.lastError.clear();
            return;
        }
        ++stats_.failed;
        const std::string message = error.message();
        if (message != stats_.lastError) {
            logged = message;
        }
        stats_.lastError = message;
    }
    if (!logged.empty()) {
        log::write(log::Priority::Warning,
                   fmt::format("Metrics not written to {}: {}", job.path, logged), {},
                   {{"DMS_EVENT", "metrics_failed"},
                    {"DMS_METRICS_FILE", job.path},
                    {"DMS_REASON", logged}});
    }
}

} // namespace dmsd
