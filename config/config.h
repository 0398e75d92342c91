#pragma once

/// \file
/// The whole configuration: every module's settings struct, assembled under
/// the keys of docs/configuration.md. Each module declares and checks its own
/// keys (its `describe()`, base/keys.h); config/ reads them from YAML
/// (config/loader.h), writes the effective configuration as JSON, and says
/// which parts changed between two configurations (for reloads).

#include <string>
#include <string_view>
#include <vector>

#include "alerts/settings.h"
#include "base/log.h"
#include "base/prometheus.h"
#include "llm/settings.h"
#include "notify/settings.h"
#include "pipeline/settings.h"
#include "vision/settings.h"

namespace dmsd {

/// The whole effective configuration.
struct Config {
    /// `version:` from the files, or "sha256:<first 12 hex>" of the merged content.
    std::string version;
    CaptureSettings capture;
    SamplingSettings sampling;
    EncodeSettings encode;
    LlmSettings llm;
    AnalysesSettings analyses;
    AlertsSettings alerts;
    NotifySettings notify;
    log::LogSettings logging; ///< `log:` (base/log.h)
    MetricsSettings metrics;  ///< `metrics:` (base/prometheus.h)
    VisionSettings vision;

    friend bool operator==(const Config&, const Config&) = default;

    /// The sections after `version:` (read apart), in file order.
    template <class Self, class Keys>
    static void describe(Self& s, Keys& k) {
        k.section("capture", s.capture);
        k.section("sampling", s.sampling);
        k.section("encode", s.encode);
        k.section("llm", s.llm);
        k.section("analyses", s.analyses);
        k.section("alerts", s.alerts);
        k.section("notify", s.notify);
        k.section("log", s.logging);
        k.section("metrics", s.metrics);
        k.section("vision", s.vision);
        k.crossCheck(
            {"sampling.frames_per_sequence", "sampling.interval", "capture.fps"},
            [&s] { return framesFitProblem(s.capture, s.sampling); }, "");
        k.crossCheck(
            {"vision.quiet_interval", "sampling.interval"},
            [&s]() -> std::optional<std::string> {
                const Millis quiet = s.vision.quietInterval;
                if (quiet.count() == 0 || quiet >= s.sampling.interval) {
                    return std::nullopt;
                }
                return "vision.quiet_interval " + formatDuration(quiet) +
                       " is shorter than sampling.interval " + formatDuration(s.sampling.interval) +
                       "; a quiet scene is asked less often, not more: use 0 (off) or at least "
                       "sampling.interval";
            },
            "");
    }
};

/// Parts of the configuration that can be restarted independently on reload.
enum class ConfigPart {
    Capture,
    Sampling,
    Encode,
    Llm,
    Analyses,
    Alerts,
    Dbus,
    Can,
    Snapshots,
    Log,
    Metrics,
    Vision
};

/// Name of a part as in the YAML: "capture", ..., "notify.dbus", "notify.can", "notify.snapshots",
/// "log", "metrics", "vision".
std::string_view configPartName(ConfigPart part);

/// The parts whose settings differ between \a a and \a b, in enum order.
/// `version` alone is not a change.
std::vector<ConfigPart> changedParts(const Config& a, const Config& b);

/// One line for logs and `check-config`: version, capture source, model, mode.
std::string summary(const Config& config);

/// The effective configuration as JSON with the YAML key names, durations as
/// strings ("2s"). It is itself a valid configuration file (JSON is YAML).
/// \a withVersion false leaves out `version` (the content hash is taken over that).
std::string effectiveConfigJson(const Config& config, bool withVersion = true);

/// "sha256:" + the first 12 hex digits of SHA-256 over the effective
/// configuration without `version`.
std::string contentVersion(const Config& config);

/// Every key's dotted path ("llm.options.num_ctx"), in file order: what
/// docs/configuration.md must describe.
std::vector<std::string> configKeyPaths();

} // namespace dmsd
