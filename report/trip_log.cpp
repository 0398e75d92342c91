#include "report/trip_log.h"

#include <fstream>
#include <unordered_map>

#include <boost/json.hpp>
#include <fmt/format.h>

namespace dmsd::report {

namespace json = boost::json;

namespace {

/// A field of a line; throws (caught per line) with the field's name.
const json::value& field(const json::object& line, std::string_view name) {
    const json::value* value = line.if_contains(name);
    if (value == nullptr) {
        throw std::runtime_error(fmt::format("no \"{}\"", name));
    }
    return *value;
}

double number(const json::object& line, std::string_view name) {
    const json::value& value = field(line, name);
    if (!value.is_number()) {
        throw std::runtime_error(fmt::format("\"{}\" is not a number", name));
    }
    return value.to_number<double>();
}

std::string text(const json::object& line, std::string_view name) {
    const json::value& value = field(line, name);
    if (!value.is_string()) {
        throw std::runtime_error(fmt::format("\"{}\" is not a string", name));
    }
    return std::string(value.get_string());
}

SequenceRecord readSequence(const json::object& line) {
    SequenceRecord s;
    s.id = static_cast<std::uint64_t>(number(line, "sequence_id"));
    s.startS = number(line, "t_start_s");
    s.endS = number(line, "t_end_s");
    s.latencyMs = static_cast<std::int64_t>(number(line, "latency_ms"));
    if (const json::value* analyses = line.if_contains("analyses");
        analyses != nullptr && analyses->is_object()) {
        if (const json::value* face = analyses->get_object().if_contains("face_state");
            face != nullptr && face->is_object()) {
            if (const json::value* state = face->get_object().if_contains("state");
                state != nullptr && state->is_string()) {
                s.driverState = std::string(state->get_string());
            }
        }
    }
    return s;
}

AlertRecord readAlert(const json::object& line) {
    AlertRecord a;
    a.tS = number(line, "t_s");
    a.event = text(line, "event");
    a.kind = text(line, "kind");
    a.level = text(line, "level");
    a.confidence = number(line, "confidence");
    a.source = text(line, "source");
    if (a.event != "raised" && a.event != "level_changed" && a.event != "cleared") {
        throw std::runtime_error(fmt::format("unknown event \"{}\"", a.event));
    }
    return a;
}

} // namespace

TripLog readTripLogs(const std::vector<std::filesystem::path>& files) {
    TripLog log;
    std::unordered_map<std::string, std::size_t> index; // video -> position in log.videos
    for (const std::filesystem::path& file : files) {
        std::ifstream in(file);
        if (!in) {
            log.problems.push_back(fmt::format("{}: cannot be read", file.string()));
            continue;
        }
        std::unordered_map<std::string, bool> ownedHere; // video -> lines of this file count
        std::string raw;
        for (std::size_t number = 1; std::getline(in, raw); ++number) {
            if (raw.empty()) {
                continue;
            }
            const std::string where = fmt::format("{}:{}", file.string(), number);
            boost::system::error_code ec;
            json::value value = json::parse(raw, ec);
            if (ec || !value.is_object()) {
                log.problems.push_back(fmt::format("{}: not a JSON object", where));
                continue;
            }
            const json::object& line = value.get_object();
            try {
                const std::string type = text(line, "type");
                if (type != "sequence" && type != "alert" && type != "summary") {
                    continue; // a line type this report does not use
                }
                const std::string video = text(line, "video");
                auto owned = ownedHere.find(video);
                if (owned == ownedHere.end()) {
                    const bool fresh = !index.contains(video);
                    if (!fresh) {
                        log.problems.push_back(
                            fmt::format("{}: {} was already read from {}; these lines are left out",
                                        where, video, log.videos[index.at(video)].from.string()));
                    }
                    owned = ownedHere.emplace(video, fresh).first;
                    if (fresh) {
                        index.emplace(video, log.videos.size());
                        VideoLog entry;
                        entry.video = video;
                        entry.from = file;
                        log.videos.push_back(std::move(entry));
                    }
                }
                if (!owned->second) {
                    continue;
                }
                VideoLog& v = log.videos[index.at(video)];
                if (type == "sequence") {
                    v.sequences.push_back(readSequence(line));
                } else if (type == "alert") {
                    v.alerts.push_back(readAlert(line));
                } else {
                    v.status = text(line, "status");
                    if (const json::value* d = line.if_contains("duration_s");
                        d != nullptr && d->is_number()) {
                        v.durationS = d->to_number<double>();
                    }
                    if (const json::value* e = line.if_contains("error");
                        e != nullptr && e->is_string()) {
                        v.error = std::string(e->get_string());
                    }
                }
            } catch (const std::exception& e) {
                log.problems.push_back(fmt::format("{}: {}", where, e.what()));
            }
        }
    }
    return log;
}

} // namespace dmsd::report
