#pragma once

/// \file
/// What `dmsd run` says about itself: the JSON of D-Bus `GetStatus`
/// (docs/interfaces.md section 4; its keys are part of the contract) and the
/// one-line `STATUS=` of sd_notify, sent to systemd when it changes. The
/// daemon gathers the figures of its parts into a StatusSnapshot; the
/// reporter only formats them.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "alerts/alert_types.h"
#include "config/config.h"
#include "daemon/ota_supervisor.h"
#include "daemon/systemd_notify.h"
#include "llm/context_budget.h"
#include "llm/llm_metrics.h"
#include "notify/alert_dispatcher.h"
#include "notify/can_notifier.h"
#include "notify/dbus_service.h"
#include "notify/snapshots.h"
#include "pipeline/capture.h"
#include "pipeline/frame_path.h"
#include "vision/vision_stage.h"

namespace dmsd {

/// The service's health as the daemon tracks it.
struct HealthState {
    ServiceState state = ServiceState::Starting;
    CameraState camera = CameraState::Stopped;
    std::string cameraProblem; ///< empty: none known
    bool modelOk = false;
    std::string modelProblem;

    bool cameraOk() const { return camera == CameraState::Streaming; }
};

/// Sequence counters of GetStatus.
struct SequenceCounters {
    std::uint64_t analysed = 0;
    std::uint64_t skippedStatic = 0;
    std::uint64_t superseded = 0;
};

/// How the metrics file writes went (GetStatus `metrics`, daemon/metrics_exporter.h).
struct MetricsWriterStats {
    std::uint64_t written = 0;
    std::uint64_t failed = 0;
    double lastWriteUs = 0; ///< compose + write of the latest file
    double maxWriteUs = 0;
    std::size_t bytes = 0; ///< size of the latest file
    std::string lastError; ///< empty once a write succeeded again
};

/// Everything GetStatus shows, at one moment.
struct StatusSnapshot {
    const Config* config = nullptr; ///< in force; never null
    HealthState health;
    std::vector<ActiveAlert> active;
    EngineTime engineNow{0}; ///< the alert engine's clock now (for since_us)
    std::uint64_t realtimeUs = 0;
    FaceState driverState = FaceState::Unknown;
    LlmMetricsSnapshot llm;
    LlmMode activeMode = LlmMode::Auto;
    CaptureCounters capture;
    FramePathCounters frames;
    SequenceCounters sequences;
    OtaCounters ota;
    AlertPathFigures alertPath;
    std::optional<std::uint64_t> lastAnalysisUs;
    std::string configError;
    std::optional<CanStatus> can;              ///< absent: no CAN notifier
    std::optional<SnapshotStats> snapshots;    ///< absent: snapshots disabled
    std::optional<MetricsWriterStats> metrics; ///< absent: metrics.textfile unset
    std::optional<VisionStats> vision;         ///< absent: vision.enabled is false
    std::uint64_t visionOnsets = 0; ///< vision onsets that closed a sampling window early
    bool visionQuiet = false;       ///< windows stretched to vision.quiet_interval now
    ContextReport context;          ///< the context budget (GetStatus model.context)
};

class StatusReporter {
public:
    explicit StatusReporter(SystemdNotifier& notifier) : notifier_(notifier) {}

    /// "running: camera ok; model M ok; alerts: none; config V".
    static std::string line(const HealthState& health, const std::vector<ActiveAlert>& active,
                            std::string_view modelName, std::string_view configVersion);
    /// The GetStatus JSON (base/json.h).
    static std::string json(const StatusSnapshot& status);

    /// Sends \a line as STATUS= unless it is the one sent last; once \a ready,
    /// also logs it.
    void publish(const std::string& line, bool ready);

private:
    SystemdNotifier& notifier_;
    std::string last_;
};

} // namespace dmsd
