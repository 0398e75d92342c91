#pragma once

/// \file
/// Evidence snapshots: on each raised alert, the deciding sequence's JPEG frames
/// and a JSON sidecar are written under `notify.snapshots.dir`.
///
/// One snapshot is one directory named `NNNNNNNN-YYYYMMDDTHHMMSS.mmmZ-KIND`
/// (NNNNNNNN: an 8-digit counter that keeps increasing across restarts, so age
/// order survives wall-clock jumps; the time is the alert's UTC wall time) with
/// `frame-0.jpg`... (or `mosaic.jpg`) and `alert.json`. `max_files` counts such
/// directories: beyond it the oldest (lowest counter) are removed. A snapshot is
/// built in `.tmp-...` in the same directory, every file fsync'ed, then renamed
/// into place, so a directory with the final name is always complete; names
/// starting with '.' never match the final pattern and are removed on start.
///
/// Writing happens on a worker thread behind a bounded queue: submit() never
/// blocks and never throws; failures are counted, logged (rate-limited) and
/// reported in stats().

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <boost/json/object.hpp>

#include "alerts/alert_types.h"
#include "notify/journal.h"
#include "notify/settings.h"
#include "pipeline/sequence.h"

namespace dmsd {

/// What to write for one raised alert.
struct SnapshotRequest {
    AlertEvent event;
    /// The deciding sequence (frames written as JPEG); may be null (sidecar only).
    EncodedSequencePtr sequence;
    /// The sequence's analyses as in `analyze` output ("analyses"); empty: omitted.
    boost::json::object analyses;
    std::string configVersion;
    /// `dmsd analyze --evidence`: the video and the video time of the alert
    /// (empty: a live alert, no video).
    std::string video;
    double videoTimeS = 0.0;
    /// Wall time of the alert (CLOCK_REALTIME).
    std::chrono::system_clock::time_point alertTime = std::chrono::system_clock::now();
};

/// Counters for status and tests.
struct SnapshotStats {
    std::uint64_t written = 0;
    std::uint64_t failed = 0;
    std::uint64_t dropped = 0; ///< queue full when submitted
    std::uint64_t removed = 0; ///< by retention
    std::size_t queued = 0;
    std::string lastError;
    std::filesystem::path lastPath;
};

/// True when \a name is a finished snapshot directory name.
bool isSnapshotName(std::string_view name);

/// The sidecar JSON of \a request (pure; \a frameFiles are the file names written).
std::string snapshotSidecarJson(const SnapshotRequest& request,
                                const std::vector<std::string>& frameFiles,
                                std::chrono::system_clock::time_point writtenAt);

/// Writes snapshots on its own thread.
class SnapshotWriter {
public:
    /// Starts the worker (unless disabled). \a queueCapacity bounds the pending requests.
    SnapshotWriter(SnapshotSettings settings, Journal& journal, std::size_t queueCapacity = 8);
    /// Writes what is queued, then joins the worker.
    ~SnapshotWriter();
    SnapshotWriter(const SnapshotWriter&) = delete;
    SnapshotWriter& operator=(const SnapshotWriter&) = delete;

    /// Queues a snapshot; false (and counted as dropped) when disabled or the queue is full.
    bool submit(SnapshotRequest request) noexcept;

    /// Waits until the queue is empty and the worker idle, at most \a timeout; true if idle.
    bool waitIdle(std::chrono::milliseconds timeout);

    SnapshotStats stats() const;

private:
    void run();
    void prepare();
    std::error_code write(const SnapshotRequest& request, std::string& detail);
    void applyRetention();

    SnapshotSettings settings_;
    Journal& journal_;
    std::size_t capacity_;
    std::filesystem::path dir_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::condition_variable idle_;
    std::deque<SnapshotRequest> queue_;
    bool busy_ = false;
    bool stopping_ = false;
    SnapshotStats stats_;
    std::uint64_t nextCounter_ = 0; ///< worker thread only
    bool prepared_ = false;         ///< worker thread only
    std::thread worker_;
};

} // namespace dmsd
