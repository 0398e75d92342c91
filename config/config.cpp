#include "config/config.h"

#include <algorithm>
#include <array>
#include <initializer_list>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "base/can_id.h"
#include "base/json.h"
#include "base/sha256.h"

namespace dmsd {
namespace {

namespace json = boost::json;

/// Writes the keys of a settings struct into a JSON object (base/keys.h).
class JsonKeys {
public:
    explicit JsonKeys(json::object& out) : out_(out) {}

    template <class T, class... Rest>
    void integer(std::string_view key, const T& value, Rest&&...) {
        out_[key] = value;
    }
    template <class... Rest>
    void number(std::string_view key, double value, Rest&&...) {
        out_[key] = value;
    }
    void boolean(std::string_view key, bool value) { out_[key] = value; }
    template <class... Rest>
    void text(std::string_view key, const std::string& value, Rest&&...) {
        out_[key] = value;
    }
    /// One value as a string (as the key always was), several as a list.
    template <class... Rest>
    void textList(std::string_view key, const std::string& first,
                  const std::vector<std::string>& more, Rest&&...) {
        if (more.empty()) {
            out_[key] = first;
            return;
        }
        json::array list{json::value(first)};
        for (const std::string& value : more) {
            list.emplace_back(value);
        }
        out_[key] = std::move(list);
    }
    template <class... Rest>
    void duration(std::string_view key, Millis value, Rest&&...) {
        out_[key] = formatDuration(value);
    }
    void canId(std::string_view key, std::uint32_t value) { out_[key] = formatCanId(value); }
    template <class... Rest>
    void optionalInteger(std::string_view key, const std::optional<int>& value, Rest&&...) {
        if (value) {
            out_[key] = *value;
        }
    }
    template <class E>
    void choice(std::string_view key, E value, ChoiceNames<E> names) {
        out_[key] = choiceName(names, value);
    }
    template <class Sub>
    void section(std::string_view key, const Sub& sub) {
        json::object child;
        JsonKeys keys(child);
        Sub::describe(sub, keys);
        out_[key] = std::move(child);
    }
    template <class... Rest>
    void crossCheck(std::initializer_list<std::string_view>, Rest&&...) {}

private:
    json::object& out_;
};

/// Lists the dotted paths of every key (base/keys.h).
class KeyLister {
public:
    KeyLister(std::vector<std::string>& out, std::string prefix)
        : out_(out), prefix_(std::move(prefix)) {}

    template <class... Rest>
    void integer(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void number(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void boolean(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void text(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void textList(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void duration(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void canId(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void optionalInteger(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class... Rest>
    void choice(std::string_view key, Rest&&...) {
        add(key);
    }
    template <class Sub>
    void section(std::string_view key, const Sub& sub) {
        KeyLister child(out_, prefix_ + std::string(key) + ".");
        Sub::describe(sub, child);
    }
    template <class... Rest>
    void crossCheck(std::initializer_list<std::string_view>, Rest&&...) {}

private:
    void add(std::string_view key) { out_.push_back(prefix_ + std::string(key)); }

    std::vector<std::string>& out_;
    std::string prefix_;
};

json::object configJson(const Config& config, bool withVersion) {
    json::object out;
    if (withVersion) {
        out["version"] = config.version;
    }
    JsonKeys keys(out);
    Config::describe(config, keys);
    return out;
}

constexpr std::array kAllParts = {ConfigPart::Capture, ConfigPart::Sampling, ConfigPart::Encode,
                                  ConfigPart::Llm,     ConfigPart::Analyses, ConfigPart::Alerts,
                                  ConfigPart::Dbus,    ConfigPart::Can,      ConfigPart::Snapshots,
                                  ConfigPart::Log,     ConfigPart::Metrics,  ConfigPart::Vision};

bool partDiffers(const Config& a, const Config& b, ConfigPart part) {
    switch (part) {
    case ConfigPart::Capture:
        return a.capture != b.capture;
    case ConfigPart::Sampling:
        return a.sampling != b.sampling;
    case ConfigPart::Encode:
        return a.encode != b.encode;
    case ConfigPart::Llm:
        return a.llm != b.llm;
    case ConfigPart::Analyses:
        return a.analyses != b.analyses;
    case ConfigPart::Alerts:
        return a.alerts != b.alerts;
    case ConfigPart::Dbus:
        return a.notify.dbus != b.notify.dbus;
    case ConfigPart::Can:
        return a.notify.can != b.notify.can;
    case ConfigPart::Snapshots:
        return a.notify.snapshots != b.notify.snapshots;
    case ConfigPart::Log:
        return a.logging != b.logging;
    case ConfigPart::Metrics:
        return a.metrics != b.metrics;
    case ConfigPart::Vision:
        return a.vision != b.vision;
    }
    return true;
}

} // namespace

std::string_view configPartName(ConfigPart part) {
    switch (part) {
    case ConfigPart::Capture:
        return "capture";
    case ConfigPart::Sampling:
        return "sampling";
    case ConfigPart::Encode:
        return "encode";
    case ConfigPart::Llm:
        return "llm";
    case ConfigPart::Analyses:
        return "analyses";
    case ConfigPart::Alerts:
        return "alerts";
    case ConfigPart::Dbus:
        return "notify.dbus";
    case ConfigPart::Can:
        return "notify.can";
    case ConfigPart::Snapshots:
        return "notify.snapshots";
    case ConfigPart::Log:
        return "log";
    case ConfigPart::Metrics:
        return "metrics";
    case ConfigPart::Vision:
        return "vision";
    }
    return "?";
}

std::vector<ConfigPart> changedParts(const Config& a, const Config& b) {
    std::vector<ConfigPart> changed;
    for (ConfigPart part : kAllParts) {
        if (partDiffers(a, b, part)) {
            changed.push_back(part);
        }
    }
    return changed;
}

std::string summary(const Config& config) {
    return fmt::format("version \"{}\", source \"{}\", model \"{}\" at {}, mode {}", config.version,
                       config.capture.source, config.llm.model.name,
                       serverUrlsText(config.llm.server), llmModeName(config.llm.scheduler.mode));
}

std::string effectiveConfigJson(const Config& config, bool withVersion) {
    return writeJsonPretty(configJson(config, withVersion)) + "\n";
}

std::string contentVersion(const Config& config) {
    // Hashed over Boost.JSON's own serialisation, not the display writer's: the
    // content version of an unchanged configuration must not change when the
    // way dmsd prints numbers does.
    return "sha256:" + sha256Hex(json::serialize(configJson(config, false))).substr(0, 12);
}

std::vector<std::string> configKeyPaths() {
    std::vector<std::string> paths{"version"};
    KeyLister lister(paths, "");
    const Config defaults;
    Config::describe(defaults, lister);
    return paths;
}

} // namespace dmsd
