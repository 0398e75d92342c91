#pragma once

/// \file
/// Figures of the analysis path: per analysis and per sequence, and the
/// aggregate counters and percentiles that D-Bus GetStatus (docs/interfaces.md
/// section 4) reports.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "base/latency_window.h"
#include "llm/answers.h"
#include "llm/ollama_client.h"
#include "llm/settings.h"

namespace dmsd {

/// One analysis within one sequence.
struct AnalysisRunMetrics {
    bool asked = false;
    bool ok = false;                      ///< a typed answer (not an error)
    bool cacheHit = false;                ///< answered from the response cache, no request
    std::chrono::milliseconds latency{0}; ///< request (or cache) time
    std::optional<std::chrono::milliseconds> firstToken; ///< streamed requests only
    std::int64_t promptTokens = 0;
    std::int64_t evalTokens = 0;
    int attempts = 0; ///< HTTP attempts (retries included)
    std::optional<AnalysisError::Kind> errorKind;
};

/// One sequence.
struct SequenceMetrics {
    LlmMode mode = LlmMode::Parallel; ///< mode actually used (never Auto)
    /// From the capture of the sequence's last frame (EncodedSequence::lastFrameAt,
    /// or submission when unset) to its last answer: `latency_ms` of docs/interfaces.md section 6.
    std::chrono::milliseconds latency{0};
    std::chrono::milliseconds elapsed{0}; ///< from submit() to the last answer
    std::array<AnalysisRunMetrics, kAnalysisCount> analyses{};
    int requests = 0; ///< HTTP requests made (cache hits excluded)
    int cacheHits = 0;
    std::int64_t promptTokens = 0;
    std::int64_t evalTokens = 0;
    bool mosaic = false; ///< the frames went as one mosaic image
    bool cancelled = false;
};

/// Everything GetStatus and the logs need, copied out.
struct LlmMetricsSnapshot {
    LlmMode configuredMode = LlmMode::Auto;
    LlmMode activeMode = LlmMode::Parallel; ///< what auto currently uses
    double concurrencyGain = 0.0;           ///< auto's measure (0: not measured yet)
    std::uint64_t sequences = 0;            ///< completed (not cancelled)
    std::uint64_t sequencesCancelled = 0;
    std::uint64_t sequencesFailed = 0; ///< no asked analysis got an answer
    std::uint64_t requests = 0;        ///< HTTP chat requests (cache hits excluded)
    std::uint64_t requestErrors = 0;   ///< requests ending in an error, incl. unusable answers
    std::uint64_t cacheHits = 0;
    std::uint64_t cacheMisses = 0;
    std::uint64_t retries = 0;
    bool mosaicFallback = false; ///< switched to mosaic because the server wants one image
    double sequenceP50Ms = 0, sequenceP95Ms = 0;
    double requestP50Ms = 0, requestP95Ms = 0;
    double firstTokenP50Ms = 0; ///< streamed requests only
    struct PerAnalysis {
        std::uint64_t asked = 0;
        std::uint64_t answered = 0;
        std::uint64_t errors = 0;
        std::uint64_t cacheHits = 0;
        std::int64_t promptTokens = 0;
        std::int64_t evalTokens = 0;
        double latencyP50Ms = 0, latencyP95Ms = 0;
    };
    std::array<PerAnalysis, kAnalysisCount> analyses{};
    ClientStats client;
};

} // namespace dmsd
