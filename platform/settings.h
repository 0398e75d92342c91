#pragma once

/// \file
/// The typed configuration model (CONTRACT.md section 2): one plain struct per
/// module, carrying the contract's built-in defaults. platform/config.h fills it
/// from YAML; every module takes its own struct and nothing else.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "alerts/alert_types.h"
#include "llm/answers.h"

namespace dmsd {

using Millis = std::chrono::milliseconds;

struct CaptureSettings {
    /// v4l2:DEVICE | file:PATH | test:PATTERN | pipeline:GST-LAUNCH-DESCRIPTION
    std::string source = "v4l2:/dev/video0";
    int width = 640;
    int height = 480;
    int fps = 15;
};

struct SamplingSettings {
    Millis interval{2000};
    int framesPerSequence = 4;
    double motionThreshold = 0.02;
    Millis maxStaticSkip{10000};
};

enum class ImageLayout { Separate, Mosaic };

struct EncodeSettings {
    int jpegQuality = 85;
    ImageLayout layout = ImageLayout::Separate;
};

enum class LlmMode { Auto, Parallel, Combined, Sequential };

/// Ollama `options`; kept identical across requests (a change of num_ctx reloads the model).
struct LlmOptions {
    double temperature = 0.1;
    int topK = 10;
    double topP = 0.5;
    int numCtx = 2048;
    int numPredict = 256;
    std::optional<int> seed;
};

struct LlmCacheSettings {
    int entries = 256;
    Millis ttl{60000};
};

struct LlmSettings {
    std::string url = "http://127.0.0.1:11434";
    std::string model = "llava:7b-v1.6-mistral-q2_K";
    LlmMode mode = LlmMode::Auto;
    int maxInFlight = 4;
    Millis timeout{20000}; ///< whole request, including retries
    Millis keepAlive{300000};
    LlmOptions options;
    LlmCacheSettings cache;
    // Extensions beyond the contract (documented in docs/configuration.md):
    Millis connectTimeout{2000};   ///< TCP connect
    Millis firstByteTimeout{0};    ///< 0: bounded by `timeout` only
    Millis idleTimeout{0};         ///< gap between streamed lines; 0: bounded by `timeout`
    std::size_t maxResponseBytes = 1 << 20;
};

struct AnalysisSettings {
    bool enabled = true;
    std::string prompt; ///< empty: the built-in prompt
};

struct AnalysesSettings {
    std::array<AnalysisSettings, kAnalysisCount> byKind{};
    AnalysisSettings& operator[](AnalysisKind kind) { return byKind[static_cast<std::size_t>(kind)]; }
    const AnalysisSettings& operator[](AnalysisKind kind) const {
        return byKind[static_cast<std::size_t>(kind)];
    }
};

struct AlertsSettings {
    std::array<AlertRule, kAlertKindCount> rules = [] {
        std::array<AlertRule, kAlertKindCount> r{};
        for (AlertKind kind : kAllAlertKinds) {
            r[alertIndex(kind)] = defaultAlertRule(kind);
        }
        return r;
    }();
    const AlertRule& operator[](AlertKind kind) const { return rules[alertIndex(kind)]; }
    AlertRule& operator[](AlertKind kind) { return rules[alertIndex(kind)]; }
};

enum class DbusBusKind { System, Session, Address };

struct DbusSettings {
    bool enabled = true;
    std::string bus = "system"; ///< system | session | a D-Bus address
};

struct CanSettings {
    bool enabled = false;
    std::string interface = "can0";
    std::uint32_t alertId = 0x6D0;
    std::uint32_t heartbeatId = 0x6D1;
    Millis heartbeat{1000};
};

struct SnapshotSettings {
    bool enabled = true;
    std::string dir = "/var/lib/dmsd/snapshots";
    int maxFiles = 200;
};

struct NotifySettings {
    DbusSettings dbus;
    CanSettings can;
    SnapshotSettings snapshots;
};

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
};

} // namespace dmsd
