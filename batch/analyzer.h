#pragma once

/// \file
/// `dmsd analyze`: batch analysis of recorded videos at the model server's
/// full capacity (docs/interfaces.md sections 1 and 6; docs/batch.md).
///
/// Threads:
///  - up to `jobs` worker threads, each decoding one video at a time with its
///    own Capture (Offline: back-pressured, no frame lost) and FramePath;
///  - one io_context thread (the caller's) owning the one OllamaClient and
///    AnalysisScheduler shared by every video, so `llm.max_in_flight` bounds
///    the whole batch, the per-video alert engines, the output and progress.
///
/// Pipelining: sequences of all videos are submitted while earlier ones are
/// still being answered (at most max_in_flight + 1 sequences at the scheduler,
/// the rest wait in a FIFO). A worker stops decoding while its video has more
/// than a few sequences emitted but not yet written, so memory stays bounded
/// and a long video is never decoded far ahead of the server. Results may
/// complete out of order; they are put back in order per video before the
/// alert engine (video time) and the output see them.
///
/// `--realtime` instead reads each video at its own frame rate through the
/// live capture path and analyses latest-wins (one sequence in flight, one
/// waiting, newer replaces the waiting one) exactly as `dmsd run` does.

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace dmsd::batch {

struct BatchOptions {
    /// The videos to analyse, in argument order (after --shard).
    std::vector<std::string> videos;
    std::size_t jobs = 1; ///< videos decoded at once
    /// Replay at the videos' own frame rate, latest-wins (the live daemon's behaviour).
    bool realtime = false;
    /// False (--no-pipeline): each video's sequences strictly one after another,
    /// the next one decoded only once the previous one is answered (the seed design).
    bool pipeline = true;
    /// Sequences of one video emitted but not yet written before its worker
    /// pauses decoding; 0 chooses from max_in_flight and jobs.
    std::size_t backlogPerVideo = 0;
    enum class Progress { None, Bar, Plain };
    Progress progress = Progress::None;
    std::chrono::milliseconds barInterval{250};
    std::chrono::milliseconds plainInterval{5000};
    /// --output; empty writes to stdout.
    std::string outputPath;
    /// `--evidence DIR`: for each raised alert, its frames and a JSON sidecar
    /// (the snapshot writer of `dmsd run`); empty: none.
    std::string evidenceDir;
    /// `--signals`: a `signals` line per frame the vision analysed.
    bool signals = false;
};

/// Runs one batch; construct, run() once.
class BatchAnalyzer {
public:
    BatchAnalyzer(Config config, BatchOptions options);
    ~BatchAnalyzer();
    BatchAnalyzer(const BatchAnalyzer&) = delete;
    BatchAnalyzer& operator=(const BatchAnalyzer&) = delete;

    /// Processes every video; returns the exit code of docs/interfaces.md section 1:
    /// 0 all fine, 1 a video (or the output) failed, 3 the model server is
    /// unusable at start, 130 interrupted by SIGINT/SIGTERM.
    int run();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace dmsd::batch
