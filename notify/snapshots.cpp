#include "notify/snapshots.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/json.h"
#include "base/unique_fd.h"

namespace dmsd {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using std::chrono::system_clock;

constexpr std::string_view kSidecarName = "alert.json";
constexpr std::string_view kTempPrefix = ".tmp-";

std::int64_t microsSinceEpoch(system_clock::time_point time) {
    return std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count();
}

// 20261127T133000.123Z
std::string utcStamp(system_clock::time_point time) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(time.time_since_epoch());
    std::time_t seconds = static_cast<std::time_t>(ms.count() / 1000);
    long millis = static_cast<long>(ms.count() % 1000);
    if (millis < 0) {
        millis += 1000;
        --seconds;
    }
    std::tm tm{};
    ::gmtime_r(&seconds, &tm);
    return fmt::format("{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

std::error_code errnoCode() {
    return {errno, std::generic_category()};
}

std::uint64_t counterOf(std::string_view name) {
    std::uint64_t value = 0;
    for (char c : name.substr(0, 8)) {
        value = value * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return value;
}

} // namespace

bool isSnapshotName(std::string_view name) {
    // NNNNNNNN-YYYYMMDDTHHMMSS.mmmZ-KIND
    constexpr std::string_view shape = "00000000-00000000T000000.000Z-";
    if (name.size() <= shape.size()) {
        return false;
    }
    for (std::size_t i = 0; i < shape.size(); ++i) {
        const char c = name[i];
        if (shape[i] == '0' ? !std::isdigit(static_cast<unsigned char>(c)) : c != shape[i]) {
            return false;
        }
    }
    return std::all_of(name.begin() + static_cast<std::ptrdiff_t>(shape.size()), name.end(),
                       [](char c) { return (c >= 'A' && c <= 'Z') || c == '_'; });
}

std::string snapshotSidecarJson(const SnapshotRequest& request,
                                const std::vector<std::string>& frameFiles,
                                system_clock::time_point writtenAt) {
    const AlertEvent& event = request.event;
    json::object alert;
    alert["kind"] = alertKindName(event.kind);
    alert["level"] = alertLevelName(event.level);
    alert["confidence"] = event.confidence;
    alert["event"] = event.type == AlertEvent::Type::Raised         ? "raised"
                     : event.type == AlertEvent::Type::LevelChanged ? "level_changed"
                                                                    : "cleared";
    alert["source"] = alertSourceName(event.source);
    alert["sequence_id"] = event.sequenceId;
    alert["engine_time_ms"] = event.at.count();
    alert["time_us"] = microsSinceEpoch(request.alertTime);
    if (!event.evidence.empty()) {
        alert["evidence"] = event.evidence;
    }

    json::object root;
    root["format"] = "dmsd-snapshot-1";
    root["alert"] = std::move(alert);
    root["config_version"] = request.configVersion;
    if (!request.video.empty()) {
        root["video"] = json::object{{"path", request.video}, {"t_s", request.videoTimeS}};
    }
    if (const EncodedSequencePtr& sequence = request.sequence) {
        json::object seq;
        seq["sequence_id"] = sequence->sequenceId;
        seq["t_start_s"] = sequence->tStartS;
        seq["t_end_s"] = sequence->tEndS;
        seq["layout"] = sequence->mosaic ? "mosaic" : "separate";
        json::array frames;
        for (const SampledFrameInfo& frame : sequence->frames) {
            frames.push_back(json::object{{"frame_id", frame.frameId},
                                          {"pts_s", frame.ptsSeconds},
                                          {"motion", frame.motion}});
        }
        seq["frames"] = std::move(frames);
        json::array images;
        std::size_t file = 0;
        for (const JpegImage& image : sequence->images) {
            if (!image.bytes || file >= frameFiles.size()) {
                continue;
            }
            images.push_back(json::object{{"file", frameFiles[file++]},
                                          {"width", image.width},
                                          {"height", image.height},
                                          {"bytes", image.bytes->size()}});
        }
        seq["images"] = std::move(images);
        root["sequence"] = std::move(seq);
    }
    if (!request.analyses.empty()) {
        root["analyses"] = request.analyses;
    }
    root["written_at_us"] = microsSinceEpoch(writtenAt);
    return writeJson(root) + "\n";
}

SnapshotWriter::SnapshotWriter(SnapshotSettings settings, Journal& journal,
                               std::size_t queueCapacity)
    : settings_(std::move(settings)), journal_(journal),
      capacity_(std::max<std::size_t>(queueCapacity, 1)), dir_(settings_.dir) {
    if (settings_.enabled) {
        worker_ = std::thread([this] { run(); });
    }
}

SnapshotWriter::~SnapshotWriter() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    if (worker_.joinable()) {
        worker_.join();
    }
}

bool SnapshotWriter::submit(SnapshotRequest request) noexcept {
    bool full = false;
    try {
        {
            std::lock_guard lock(mutex_);
            if (!settings_.enabled || stopping_) {
                return false;
            }
            if (queue_.size() >= capacity_) {
                ++stats_.dropped;
                full = true;
            } else {
                queue_.push_back(std::move(request));
            }
        }
        if (full) {
            journal_.snapshotFailed(settings_.dir, "writer queue full (disk too slow?); "
                                                   "snapshot dropped");
            return false;
        }
        wake_.notify_one();
        return true;
    } catch (...) {
        return false;
    }
}

bool SnapshotWriter::waitIdle(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return idle_.wait_for(lock, timeout, [this] { return queue_.empty() && !busy_; });
}

SnapshotStats SnapshotWriter::stats() const {
    std::lock_guard lock(mutex_);
    SnapshotStats stats = stats_;
    stats.queued = queue_.size();
    return stats;
}

void SnapshotWriter::run() {
    for (;;) {
        SnapshotRequest request;
        {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) {
                break; // stopping, and everything queued has been written
            }
            request = std::move(queue_.front());
            queue_.pop_front();
            busy_ = true;
        }
        std::string detail;
        std::error_code error;
        try {
            error = write(request, detail);
        } catch (const std::exception& e) {
            // bad_alloc or a filesystem surprise: a lost snapshot, never a dead daemon.
            error = std::make_error_code(std::errc::io_error);
            detail = e.what();
        }
        if (error) {
            journal_.snapshotFailed(settings_.dir, detail);
        }
        {
            std::lock_guard lock(mutex_);
            if (error) {
                ++stats_.failed;
                stats_.lastError = detail;
            } else {
                ++stats_.written;
            }
            busy_ = false;
            if (queue_.empty()) {
                idle_.notify_all();
            }
        }
    }
    std::lock_guard lock(mutex_);
    busy_ = false;
    idle_.notify_all();
}

void SnapshotWriter::prepare() {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec && !fs::is_directory(dir_)) {
        throw fs::filesystem_error("cannot create the snapshot directory", dir_, ec);
    }
    std::uint64_t highest = 0;
    bool any = false;
    for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with(kTempPrefix)) {
            // Left by a crash mid-write: never visible as a snapshot, safe to remove.
            fs::remove_all(entry.path(), ec);
        } else if (isSnapshotName(name)) {
            highest = std::max(highest, counterOf(name));
            any = true;
        }
    }
    nextCounter_ = any ? highest + 1 : 1;
    prepared_ = true;
}

std::error_code SnapshotWriter::write(const SnapshotRequest& request, std::string& detail) {
    if (!prepared_) {
        try {
            prepare();
        } catch (const fs::filesystem_error& e) {
            detail = fmt::format("cannot use {}: {}; check notify.snapshots.dir and its "
                                 "permissions",
                                 settings_.dir, e.code().message());
            return e.code();
        }
    }
    const std::string stamp = utcStamp(request.alertTime);
    const std::string_view kind = alertKindName(request.event.kind);
    const fs::path temp =
        dir_ / fmt::format("{}{}-{}-{}", kTempPrefix, nextCounter_, ::getpid(), kind);
    std::error_code ec;
    fs::remove_all(temp, ec);
    if (!fs::create_directory(temp, ec) || ec) {
        if (!ec) {
            ec = std::make_error_code(std::errc::file_exists);
        }
        detail = fmt::format("cannot create a directory in {}: {}", settings_.dir, ec.message());
        // The directory may have vanished or been replaced: look again next time.
        prepared_ = false;
        return ec;
    }
    auto fail = [&](std::string what, std::error_code code) {
        std::error_code ignored;
        fs::remove_all(temp, ignored);
        detail = fmt::format("{} in {}: {}", what, settings_.dir, code.message());
        return code;
    };

    std::vector<std::string> files;
    if (request.sequence) {
        const auto& images = request.sequence->images;
        for (std::size_t i = 0; i < images.size(); ++i) {
            if (!images[i].bytes) {
                continue;
            }
            std::string name = request.sequence->mosaic && images.size() == 1
                                   ? std::string("mosaic.jpg")
                                   : fmt::format("frame-{}.jpg", i);
            if (auto code = writeFileSynced(temp / name, images[i].bytes->data(),
                                            images[i].bytes->size())) {
                return fail("cannot write " + name, code);
            }
            files.push_back(std::move(name));
        }
    }
    const std::string sidecar = snapshotSidecarJson(request, files, system_clock::now());
    if (auto code = writeFileSynced(temp / kSidecarName, sidecar.data(), sidecar.size())) {
        return fail(std::string("cannot write ") + std::string(kSidecarName), code);
    }
    if (auto code = syncDirectory(temp)) {
        return fail("cannot sync the snapshot", code);
    }
    for (int attempt = 0;; ++attempt) {
        const fs::path final = dir_ / fmt::format("{:08}-{}-{}", nextCounter_, stamp, kind);
        ++nextCounter_;
        int renamed =
            ::renameat2(AT_FDCWD, temp.c_str(), AT_FDCWD, final.c_str(), RENAME_NOREPLACE);
        if (renamed != 0 && (errno == EINVAL || errno == ENOSYS)) {
            // File system without RENAME_NOREPLACE: the worker is the only writer of
            // final names, so checking first is enough.
            renamed = fs::exists(final, ec) ? (errno = EEXIST, -1)
                                            : ::rename(temp.c_str(), final.c_str());
        }
        if (renamed == 0) {
            if (auto code = syncDirectory(dir_)) {
                detail = fmt::format("cannot sync {}: {}", settings_.dir, code.message());
                // The snapshot is complete and in place; only durability is in doubt.
            }
            {
                std::lock_guard lock(mutex_);
                stats_.lastPath = final;
            }
            applyRetention();
            return {};
        }
        const auto code = errnoCode();
        if (code != std::errc::file_exists || attempt >= 3) {
            return fail("cannot rename the snapshot into place", code);
        }
    }
}

void SnapshotWriter::applyRetention() {
    if (settings_.maxFiles <= 0) {
        return;
    }
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
        std::string name = it->path().filename().string();
        if (isSnapshotName(name)) {
            names.push_back(std::move(name));
        }
    }
    if (names.size() <= static_cast<std::size_t>(settings_.maxFiles)) {
        return;
    }
    // Fixed-width counter first: name order is age order.
    std::sort(names.begin(), names.end());
    const std::size_t excess = names.size() - static_cast<std::size_t>(settings_.maxFiles);
    std::uint64_t removed = 0;
    for (std::size_t i = 0; i < excess; ++i) {
        // Renamed out of the final namespace first: a reader never sees a half-removed one.
        const fs::path doomed = dir_ / (std::string(kTempPrefix) + "old-" + names[i]);
        std::error_code removeError;
        fs::rename(dir_ / names[i], doomed, removeError);
        if (!removeError) {
            fs::remove_all(doomed, removeError);
            ++removed;
        }
    }
    std::lock_guard lock(mutex_);
    stats_.removed += removed;
}

} // namespace dmsd
