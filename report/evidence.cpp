#include "report/evidence.h"

#include <algorithm>
#include <cmath>
#include <system_error>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/input_file.h"

namespace dmsd::report {

namespace json = boost::json;

namespace {

constexpr std::string_view kSidecar = "alert.json";
constexpr std::size_t kMaxSidecarBytes = std::size_t{1} << 20;

/// `text` at \a path in \a object, or "" when absent or not a string.
std::string stringAt(const json::object& object, std::string_view key) {
    const json::value* v = object.if_contains(key);
    return v != nullptr && v->is_string() ? std::string(v->get_string()) : std::string();
}

const json::object* objectAt(const json::object& object, std::string_view key) {
    const json::value* v = object.if_contains(key);
    return v != nullptr && v->is_object() ? &v->get_object() : nullptr;
}

bool isJpeg(const std::string& bytes) {
    return bytes.size() >= 3 && static_cast<unsigned char>(bytes[0]) == 0xFF &&
           static_cast<unsigned char>(bytes[1]) == 0xD8 &&
           static_cast<unsigned char>(bytes[2]) == 0xFF;
}

/// A frame file name from a sidecar: a plain name in the snapshot directory,
/// never a path that leaves it.
bool isPlainName(const std::string& name) {
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
           name.find('\0') == std::string::npos;
}

class Reader {
public:
    Reader(const EvidenceLimits& limits, Evidence& out) : limits_(limits), out_(out) {}

    void snapshot(const std::filesystem::path& dir) {
        const std::filesystem::path sidecarPath = dir / kSidecar;
        std::error_code ec;
        if (!std::filesystem::exists(sidecarPath, ec)) {
            return; // not a snapshot
        }
        std::string problem;
        const std::optional<std::string> text =
            readInputFile(sidecarPath, kMaxSidecarBytes, problem);
        if (!text) {
            out_.problems.push_back(fmt::format("{}: {}", sidecarPath.string(), problem));
            return;
        }
        if (text->size() > kMaxSidecarBytes) {
            out_.problems.push_back(
                fmt::format("{}: larger than {} bytes", sidecarPath.string(), kMaxSidecarBytes));
            return;
        }
        json::error_code parseError;
        const json::value root = json::parse(*text, parseError);
        if (parseError || !root.is_object()) {
            out_.problems.push_back(
                fmt::format("{}: not a JSON object ({})", sidecarPath.string(),
                            parseError ? parseError.message() : std::string("another value")));
            return;
        }
        const json::object& sidecar = root.get_object();
        const json::object* alert = objectAt(sidecar, "alert");
        const json::object* video = objectAt(sidecar, "video");
        if (alert == nullptr || stringAt(*alert, "kind").empty()) {
            out_.problems.push_back(fmt::format("{}: no alert.kind: not a dmsd snapshot sidecar",
                                                sidecarPath.string()));
            return;
        }
        if (video == nullptr || stringAt(*alert, "event") != "raised") {
            return; // dmsd run's snapshot, or an escalation's: not a raise in a video
        }
        const json::value* t = video->if_contains("t_s");
        if (stringAt(*video, "path").empty() || t == nullptr || !t->is_number()) {
            out_.problems.push_back(
                fmt::format("{}: video.path or video.t_s missing", sidecarPath.string()));
            return;
        }
        EvidenceSnapshot s;
        s.dir = dir;
        s.video = stringAt(*video, "path");
        s.kind = stringAt(*alert, "kind");
        s.tS = t->to_number<double>();
        if (const json::object* sequence = objectAt(sidecar, "sequence")) {
            if (const json::value* images = sequence->if_contains("images");
                images != nullptr && images->is_array()) {
                for (const json::value& image : images->get_array()) {
                    if (image.is_object()) {
                        frame(dir, stringAt(image.get_object(), "file"), s);
                    }
                }
            }
        }
        out_.snapshots.push_back(std::move(s));
    }

private:
    void frame(const std::filesystem::path& dir, const std::string& name, EvidenceSnapshot& s) {
        if (!isPlainName(name)) {
            out_.problems.push_back(fmt::format("{}: frame file \"{}\" is not a plain file name",
                                                (dir / kSidecar).string(), name));
            return;
        }
        const std::filesystem::path path = dir / name;
        if (totalBytes_ >= limits_.maxTotalBytes) {
            ++out_.framesLeftOut;
            return;
        }
        std::string problem;
        std::optional<std::string> bytes = readInputFile(path, limits_.maxFrameBytes, problem);
        if (!bytes) {
            out_.problems.push_back(fmt::format("{}: {}", path.string(), problem));
            return;
        }
        if (bytes->size() > limits_.maxFrameBytes) {
            out_.problems.push_back(
                fmt::format("{}: larger than {} bytes", path.string(), limits_.maxFrameBytes));
            return;
        }
        if (!isJpeg(*bytes)) {
            out_.problems.push_back(fmt::format("{}: not a JPEG image", path.string()));
            return;
        }
        if (totalBytes_ + bytes->size() > limits_.maxTotalBytes) {
            totalBytes_ = limits_.maxTotalBytes; // the budget is spent: the rest are counted
            ++out_.framesLeftOut;
            return;
        }
        totalBytes_ += bytes->size();
        s.frames.push_back({name, std::move(*bytes)});
    }

    const EvidenceLimits& limits_;
    Evidence& out_;
    std::size_t totalBytes_ = 0;
};

} // namespace

Evidence readEvidence(const std::vector<std::filesystem::path>& dirs,
                      const EvidenceLimits& limits) {
    Evidence out;
    Reader reader(limits, out);
    for (const std::filesystem::path& dir : dirs) {
        std::error_code ec;
        std::vector<std::filesystem::path> entries;
        std::filesystem::directory_iterator it(dir, ec);
        if (ec) {
            out.problems.push_back(
                fmt::format("{}: cannot be read: {}", dir.string(), ec.message()));
            continue;
        }
        for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
            const std::string name = it->path().filename().string();
            // Names starting with '.' are snapshots still being written.
            if (!name.starts_with('.') && it->is_directory(ec)) {
                entries.push_back(it->path());
            }
        }
        if (ec) {
            out.problems.push_back(
                fmt::format("{}: cannot be read: {}", dir.string(), ec.message()));
        }
        // The names start with an increasing counter: name order is raise order.
        std::sort(entries.begin(), entries.end());
        for (const std::filesystem::path& entry : entries) {
            reader.snapshot(entry);
        }
    }
    return out;
}

std::size_t attachEvidence(FleetReport& report, const Evidence& evidence) {
    std::size_t unmatched = 0;
    for (const EvidenceSnapshot& s : evidence.snapshots) {
        bool matched = false;
        for (VideoReport& v : report.videos) {
            if (v.log->video != s.video) {
                continue;
            }
            for (AlertInterval& i : v.intervals) {
                if (i.evidence == nullptr && i.kind == s.kind && std::abs(i.startS - s.tS) < 1e-3) {
                    i.evidence = &s;
                    matched = true;
                    break;
                }
            }
        }
        unmatched += matched ? 0 : 1;
    }
    return unmatched;
}

} // namespace dmsd::report
