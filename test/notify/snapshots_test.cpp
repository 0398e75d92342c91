#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <catch2/catch.hpp>
#include <turbojpeg.h>

#include "notify/snapshots.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;

namespace {

// A real JPEG of a small gradient, so the files can be checked by decoding them.
JpegImage makeJpeg(int width, int height, int seed) {
    std::vector<unsigned char> pixels(static_cast<std::size_t>(width * height));
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            pixels[static_cast<std::size_t>(y * width + x)] =
                static_cast<unsigned char>((x * 7 + y * 3 + seed * 40) & 0xFF);
        }
    }
    tjhandle handle = tjInitCompress();
    REQUIRE(handle != nullptr);
    unsigned char* out = nullptr;
    unsigned long size = 0;
    const int rc = tjCompress2(handle, pixels.data(), width, 0, height, TJPF_GRAY, &out, &size,
                               TJSAMP_GRAY, 80, 0);
    std::vector<unsigned char> bytes(out, out + size);
    tjFree(out);
    tjDestroy(handle);
    REQUIRE(rc == 0);
    return JpegImage{std::make_shared<const std::vector<unsigned char>>(std::move(bytes)), width,
                     height};
}

EncodedSequencePtr makeSequence(std::uint64_t id, int frames) {
    auto sequence = std::make_shared<EncodedSequence>();
    sequence->sequenceId = id;
    sequence->tStartS = 4.0;
    sequence->tEndS = 6.0;
    for (int i = 0; i < frames; ++i) {
        SampledFrameInfo info;
        info.frameId = id * 10 + static_cast<std::uint64_t>(i);
        info.ptsSeconds = 4.0 + 0.5 * i;
        info.motion = 0.01 * i;
        sequence->frames.push_back(info);
        sequence->images.push_back(makeJpeg(32, 24, i));
    }
    return sequence;
}

SnapshotRequest makeRequest(std::uint64_t sequenceId, int frames = 3) {
    SnapshotRequest request;
    request.event.type = AlertEvent::Type::Raised;
    request.event.kind = AlertKind::PhoneUse;
    request.event.level = AlertLevel::Warning;
    request.event.confidence = 0.75;
    request.event.sequenceId = sequenceId;
    request.event.at = 6000ms;
    request.event.evidence = json::parse(R"({"hand_position":{"holding":"phone"}})").as_object();
    request.sequence = makeSequence(sequenceId, frames);
    request.analyses =
        json::parse(R"({"hand_position":{"hands_on_wheel":1,"holding":"phone","confidence":0.75}})")
            .as_object();
    request.configVersion = "factory-1";
    request.alertTime = std::chrono::system_clock::time_point(1790000000123ms);
    return request;
}

std::vector<unsigned char> readBytes(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<fs::path> snapshotDirs(const fs::path& dir) {
    std::vector<fs::path> dirs;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (isSnapshotName(entry.path().filename().string())) {
            dirs.push_back(entry.path());
        }
    }
    std::sort(dirs.begin(), dirs.end());
    return dirs;
}

std::string readText(const fs::path& path) {
    const auto bytes = readBytes(path);
    return std::string(bytes.begin(), bytes.end());
}

json::value readJson(const fs::path& path) {
    return json::parse(readText(path));
}

SnapshotSettings settingsFor(const fs::path& dir, int maxFiles = 200) {
    SnapshotSettings settings;
    settings.enabled = true;
    settings.dir = dir.string();
    settings.maxFiles = maxFiles;
    return settings;
}

struct Capture {
    std::mutex mutex;
    std::vector<JournalEntry> entries;
    JournalSink sink() {
        return [this](const JournalEntry& e) {
            std::lock_guard lock(mutex);
            entries.push_back(e);
        };
    }
    std::size_t size() {
        std::lock_guard lock(mutex);
        return entries.size();
    }
};

} // namespace

TEST_CASE("snapshot names: final pattern, temp names never match", "[snapshots]") {
    CHECK(isSnapshotName("00000001-20261127T133000.123Z-DROWSINESS"));
    CHECK(isSnapshotName("12345678-20261127T133000.123Z-PHONE_USE"));
    CHECK_FALSE(isSnapshotName(".tmp-1-77-DROWSINESS"));
    CHECK_FALSE(isSnapshotName(".tmp-00000001-20261127T133000.123Z-DROWSINESS"));
    CHECK_FALSE(isSnapshotName("00000001-20261127T133000.123Z-"));
    CHECK_FALSE(isSnapshotName("0000001-20261127T133000.123Z-DROWSINESS"));
    CHECK_FALSE(isSnapshotName("00000001-20261127T133000.123Z-drowsiness"));
    CHECK_FALSE(isSnapshotName("notes.txt"));
}

TEST_CASE("a raised alert writes its JPEG frames and a JSON sidecar", "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    const fs::path dir = tmp / "snapshots"; // created by the writer
    Capture capture;
    Journal journal(capture.sink());
    const SnapshotRequest request = makeRequest(42);
    {
        SnapshotWriter writer(settingsFor(dir), journal);
        REQUIRE(writer.submit(request));
        REQUIRE(writer.waitIdle(10s));
        const SnapshotStats stats = writer.stats();
        CHECK(stats.written == 1);
        CHECK(stats.failed == 0);
        CHECK(stats.lastError.empty());
    }
    const auto dirs = snapshotDirs(dir);
    REQUIRE(dirs.size() == 1);
    CHECK(dirs[0].filename().string() == "00000001-20260921T141320.123Z-PHONE_USE");
    for (int i = 0; i < 3; ++i) {
        const auto bytes = readBytes(dirs[0] / ("frame-" + std::to_string(i) + ".jpg"));
        CHECK(bytes == *request.sequence->images[static_cast<std::size_t>(i)].bytes);
        REQUIRE(bytes.size() > 4);
        CHECK(bytes[0] == 0xFF);
        CHECK(bytes[1] == 0xD8);
        tjhandle handle = tjInitDecompress();
        int width = 0;
        int height = 0;
        int subsampling = 0;
        int colorspace = 0;
        CHECK(tjDecompressHeader3(handle, bytes.data(), bytes.size(), &width, &height, &subsampling,
                                  &colorspace) == 0);
        tjDestroy(handle);
        CHECK(width == 32);
        CHECK(height == 24);
    }
    const json::value sidecar = readJson(dirs[0] / "alert.json");
    const json::object& root = sidecar.as_object();
    CHECK(root.at("format") == "dmsd-snapshot-1");
    CHECK(root.at("config_version") == "factory-1");
    const json::object& alert = root.at("alert").as_object();
    CHECK(alert.at("kind") == "PHONE_USE");
    CHECK(alert.at("level") == "warning");
    CHECK(alert.at("confidence").as_double() == Approx(0.75));
    // Plain decimals (base/json.h), never Boost's exponent form.
    CHECK_THAT(readText(dirs[0] / "alert.json"), Catch::Contains(R"("confidence":0.75)"));
    CHECK(alert.at("event") == "raised");
    CHECK(alert.at("sequence_id").to_number<std::uint64_t>() == 42);
    CHECK(alert.at("time_us").to_number<std::int64_t>() == 1790000000123000);
    CHECK(alert.at("evidence").at("hand_position").at("holding") == "phone");
    CHECK(root.at("analyses").at("hand_position").at("hands_on_wheel").to_number<int>() == 1);
    const json::object& sequence = root.at("sequence").as_object();
    CHECK(sequence.at("frames").as_array().size() == 3);
    CHECK(sequence.at("images").as_array().at(2).at("file") == "frame-2.jpg");
    CHECK(root.at("written_at_us").to_number<std::int64_t>() > 0);
    CHECK(capture.size() == 0);
}

TEST_CASE("retention keeps the newest max_files snapshots, numbering survives restarts",
          "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    const fs::path dir = tmp.path();
    std::ofstream(dir / "README.txt") << "not a snapshot\n"; // foreign files are left alone
    Journal journal([](const JournalEntry&) {});
    {
        SnapshotWriter writer(settingsFor(dir, 3), journal);
        for (std::uint64_t id = 1; id <= 7; ++id) {
            REQUIRE(writer.submit(makeRequest(id, 1)));
            REQUIRE(writer.waitIdle(10s)); // one at a time: the queue holds 8 anyway
        }
        CHECK(writer.stats().removed == 4);
    }
    auto dirs = snapshotDirs(dir);
    REQUIRE(dirs.size() == 3);
    std::vector<std::uint64_t> kept;
    for (const auto& path : dirs) {
        kept.push_back(
            readJson(path / "alert.json").at("alert").at("sequence_id").to_number<std::uint64_t>());
    }
    CHECK(kept == std::vector<std::uint64_t>{5, 6, 7});
    CHECK(fs::exists(dir / "README.txt"));

    // A crash leftover is removed, and a new writer continues the numbering.
    fs::create_directory(dir / ".tmp-99-1-DROWSINESS");
    {
        SnapshotWriter writer(settingsFor(dir, 3), journal);
        REQUIRE(writer.submit(makeRequest(8, 1)));
        REQUIRE(writer.waitIdle(10s));
    }
    dirs = snapshotDirs(dir);
    REQUIRE(dirs.size() == 3);
    CHECK(dirs.back().filename().string().rfind("00000008-", 0) == 0);
    CHECK_FALSE(fs::exists(dir / ".tmp-99-1-DROWSINESS"));
}

TEST_CASE("unwritable directory: failure reported and logged once, caller unaffected",
          "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    std::ofstream(tmp / "file") << "x";
    // A path below a regular file cannot be created, even by root.
    const fs::path dir = tmp / "file" / "snapshots";
    Capture capture;
    Journal journal(capture.sink());
    SnapshotWriter writer(settingsFor(dir), journal);
    for (std::uint64_t id = 1; id <= 3; ++id) {
        CHECK(writer.submit(makeRequest(id, 1))); // queued: never throws, never blocks
    }
    REQUIRE(writer.waitIdle(10s));
    const SnapshotStats stats = writer.stats();
    CHECK(stats.written == 0);
    CHECK(stats.failed == 3);
    CHECK(stats.lastError.find(dir.string()) != std::string::npos);
    REQUIRE(capture.size() == 1); // identical failures are rate-limited
    const JournalEntry& entry = capture.entries[0];
    CHECK(entry.messageId == message_id::kSnapshotFailed);
    CHECK(entry.field("DMS_SNAPSHOT_DIR") == dir.string());
    CHECK(entry.priority == log::Priority::Warning);
}

TEST_CASE("full queue drops the request instead of blocking the caller", "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    std::ofstream(tmp / "file") << "x";
    const fs::path dir = tmp / "file" / "snapshots";
    // The worker's journal entry blocks until released: the worker is then busy
    // with request 1, request 2 fills the queue (capacity 1), request 3 is dropped.
    std::mutex mutex;
    std::condition_variable changed;
    bool workerInside = false;
    bool release = false;
    const auto caller = std::this_thread::get_id();
    Journal journal([&](const JournalEntry&) {
        if (std::this_thread::get_id() == caller) {
            return;
        }
        std::unique_lock lock(mutex);
        workerInside = true;
        changed.notify_all();
        changed.wait(lock, [&] { return release; });
    });
    SnapshotWriter writer(settingsFor(dir), journal, 1);
    REQUIRE(writer.submit(makeRequest(1, 1)));
    {
        std::unique_lock lock(mutex);
        REQUIRE(changed.wait_for(lock, 10s, [&] { return workerInside; }));
    }
    CHECK(writer.submit(makeRequest(2, 1)));
    CHECK_FALSE(writer.submit(makeRequest(3, 1)));
    CHECK(writer.stats().dropped == 1);
    {
        std::lock_guard lock(mutex);
        release = true;
    }
    changed.notify_all();
    REQUIRE(writer.waitIdle(10s));
    CHECK(writer.stats().failed == 2);
}

TEST_CASE("no partial snapshot is ever visible under a final name", "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    const fs::path dir = tmp.path();
    Journal journal([](const JournalEntry&) {});
    std::atomic<bool> done{false};
    std::atomic<int> checked{0};
    std::vector<std::string> problems;
    std::thread observer([&] {
        while (!done) {
            std::error_code ec;
            for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
                const std::string name = it->path().filename().string();
                if (!isSnapshotName(name)) {
                    continue;
                }
                const fs::path sidecar = it->path() / "alert.json";
                try {
                    const json::value value = readJson(sidecar);
                    for (const auto& image : value.at("sequence").at("images").as_array()) {
                        const auto bytes =
                            readBytes(it->path() / image.at("file").as_string().c_str());
                        // (retention may have moved it away after we listed it)
                        if (bytes.size() != image.at("bytes").to_number<std::size_t>() &&
                            fs::exists(it->path())) {
                            problems.push_back(name + ": short frame");
                        }
                    }
                    ++checked;
                } catch (const std::exception& e) {
                    // Retention may remove an old snapshot while we read it.
                    if (fs::exists(it->path())) {
                        problems.push_back(name + ": " + e.what());
                    }
                }
            }
        }
    });
    {
        SnapshotWriter writer(settingsFor(dir, 5), journal, 32);
        for (std::uint64_t id = 1; id <= 20; ++id) {
            REQUIRE(writer.submit(makeRequest(id, 2)));
        }
        REQUIRE(writer.waitIdle(30s));
        CHECK(writer.stats().written == 20);
    }
    done = true;
    observer.join();
    CHECK(problems == std::vector<std::string>{});
    INFO("snapshots checked while being written: " << checked.load());
    CHECK(snapshotDirs(dir).size() == 5);
    for (const auto& entry : fs::directory_iterator(dir)) {
        CHECK(isSnapshotName(entry.path().filename().string())); // no temp leftovers
    }
}

TEST_CASE("destruction writes what is queued, disabled writer writes nothing", "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    Journal journal([](const JournalEntry&) {});
    {
        SnapshotWriter writer(settingsFor(tmp.path()), journal);
        for (std::uint64_t id = 1; id <= 3; ++id) {
            REQUIRE(writer.submit(makeRequest(id, 1)));
        }
    }
    CHECK(snapshotDirs(tmp.path()).size() == 3);

    SnapshotSettings disabled = settingsFor(tmp / "off");
    disabled.enabled = false;
    SnapshotWriter writer(disabled, journal);
    CHECK_FALSE(writer.submit(makeRequest(1, 1)));
    CHECK_FALSE(fs::exists(tmp / "off"));
}

TEST_CASE("mosaic layout and a request without a sequence", "[snapshots]") {
    test::TempDir tmp("dmsd-snap");
    Journal journal([](const JournalEntry&) {});
    SnapshotWriter writer(settingsFor(tmp.path()), journal);
    SnapshotRequest mosaic = makeRequest(1, 0);
    auto sequence = std::make_shared<EncodedSequence>(*mosaic.sequence);
    sequence->mosaic = true;
    sequence->images.push_back(makeJpeg(64, 48, 1));
    mosaic.sequence = sequence;
    REQUIRE(writer.submit(mosaic));
    SnapshotRequest bare = makeRequest(2, 0);
    bare.sequence = nullptr;
    bare.analyses = {};
    REQUIRE(writer.submit(bare));
    REQUIRE(writer.waitIdle(10s));
    const auto dirs = snapshotDirs(tmp.path());
    REQUIRE(dirs.size() == 2);
    CHECK(fs::exists(dirs[0] / "mosaic.jpg"));
    const json::value second = readJson(dirs[1] / "alert.json");
    CHECK_FALSE(second.as_object().contains("sequence"));
    CHECK_FALSE(second.as_object().contains("analyses"));
}
