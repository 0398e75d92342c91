#include "daemon/ota_supervisor.h"

#include <system_error>

#include <fmt/format.h>

#include "base/atomic_file.h"
#include "base/log.h"
#include "config/loader.h"

namespace dmsd {

namespace {

std::string joinParts(const std::vector<ConfigPart>& parts) {
    std::string out;
    for (ConfigPart part : parts) {
        if (!out.empty()) {
            out += ", ";
        }
        out += configPartName(part);
    }
    return out.empty() ? "nothing" : out;
}

} // namespace

OtaSupervisor::OtaSupervisor(Config running, OtaOptions options, OtaTarget& target,
                             Journal& journal, std::function<Clock::time_point()> now)
    : running_(std::move(running)), options_(std::move(options)), target_(target),
      journal_(journal), now_(std::move(now)) {
}

std::filesystem::path OtaSupervisor::lastGoodPath() const {
    return options_.stateDir / "last-good.yaml";
}

void OtaSupervisor::start() {
    loadLastGood();
    // A configuration that arrived while the daemon was down is on probation
    // against the last known good one, like one applied by a reload.
    if (lastGood_ && effectiveConfigJson(*lastGood_) != effectiveConfigJson(running_)) {
        probation_ = Probation{*lastGood_, true, now_(), std::nullopt};
    } else if (!lastGood_) {
        probation_ = Probation{running_, false, now_(), std::nullopt};
    }
}

std::string OtaSupervisor::reload(const std::string& trigger) {
    return applyLoaded(trigger, loadFiles());
}

ConfigLoad OtaSupervisor::loadFiles() const {
    return loadConfig(options_.configPath);
}

std::string OtaSupervisor::applyLoaded(const std::string& trigger, ConfigLoad load) {
    if (!load.ok()) {
        configError_ = formatErrors(load.errors);
        ++counters_.reloadsRejected;
        const std::string source =
            load.errors.empty() ? options_.configPath.string() : load.errors.front().file;
        journal_.configRejected(source, configError_, running_.version);
        target_.configStateChanged();
        target_.rejected(fmt::format("configuration rejected ({}); still running {}", trigger,
                                     running_.version));
        return configError_;
    }
    Config next = std::move(*load.config);
    if (!rejectedEffective_.empty() && effectiveConfigJson(next) == rejectedEffective_) {
        std::string reason = fmt::format(
            "configuration {} was rolled back because it left the camera or model server "
            "unusable; it is not applied again until a new file arrives",
            next.version);
        log::warning("{} ({})", reason, trigger);
        return reason;
    }
    const std::vector<ConfigPart> parts = changedParts(running_, next);
    if (parts.empty() && next.version == running_.version) {
        log::info("configuration reloaded ({}): nothing changed", trigger);
        configError_.clear();
        target_.configStateChanged();
        return {};
    }
    target_.reloading(fmt::format("applying configuration {} ({})", next.version, trigger));
    // Judged before the change: was the configuration being replaced working?
    const bool previousHealthy = target_.health().usable;
    Config previous = std::exchange(running_, std::move(next));
    target_.apply(running_, parts);
    configError_.clear();
    rejectedEffective_.clear();
    ++counters_.reloadsApplied;
    journal_.configApplied(running_.version, previous.version, joinParts(parts));
    target_.configStateChanged();
    if (lastGood_ && !previousHealthy) {
        // The replaced configuration was unhealthy itself: a failure of the new
        // one goes back to the last known good instead.
        probation_ = Probation{*lastGood_, true, now_(), std::nullopt};
    } else {
        probation_ = Probation{std::move(previous), previousHealthy, now_(), std::nullopt};
    }
    target_.reloaded();
    return {};
}

void OtaSupervisor::tick() {
    if (!probation_) {
        return;
    }
    const Clock::time_point now = now_();
    const ConfigHealth health = target_.health();
    if (health.usable) {
        probation_->unusableSince.reset();
        if (now - probation_->since >= options_.probation) {
            probation_.reset();
            lastGood_ = running_;
            persistLastGood();
        }
        return;
    }
    if (!probation_->unusableSince) {
        probation_->unusableSince = now;
    }
    if (probation_->previousHealthy && now - *probation_->unusableSince >= options_.probation) {
        rollback(fmt::format(
            "{} for {} s", health.problem,
            std::chrono::duration_cast<std::chrono::seconds>(options_.probation).count()));
    }
}

void OtaSupervisor::rollback(const std::string& why) {
    Config previous = std::move(probation_->previous);
    probation_.reset();
    const std::string badVersion = running_.version;
    rejectedEffective_ = effectiveConfigJson(running_);
    const std::vector<ConfigPart> parts = changedParts(running_, previous);
    target_.reloading(fmt::format("rolling back to {}", previous.version));
    running_ = std::move(previous);
    target_.apply(running_, parts);
    ++counters_.rollbacks;
    configError_ =
        fmt::format("configuration {} rolled back to {}: {}", badVersion, running_.version, why);
    journal_.configRolledBack(running_.version, badVersion, why);
    target_.configStateChanged();
    // The configuration restored is the last known good one, or one that ran
    // healthy before the bad update but had not yet finished its probation.
    // The latter goes back on probation (against the last known good one), so
    // that once it has run healthy for `probation` it becomes the last known
    // good again and the next bad update has it to return to.
    if (!lastGood_ || effectiveConfigJson(*lastGood_) != effectiveConfigJson(running_)) {
        probation_ = lastGood_ ? Probation{*lastGood_, true, now_(), std::nullopt}
                               : Probation{running_, false, now_(), std::nullopt};
    }
    target_.reloaded();
}

void OtaSupervisor::persistLastGood() {
    const std::filesystem::path dir = options_.stateDir;
    const std::filesystem::path path = lastGoodPath();
    const std::string text = "# The last configuration that ran healthy (written by dmsd; JSON is "
                             "YAML)\n" +
                             effectiveConfigJson(running_) + "\n";
    // The write waits for the disk (fsync): off the loop when the daemon says how.
    auto write = [dir, path, text, version = running_.version] {
        std::error_code ec;
        std::filesystem::create_directories(dir, ec);
        if (std::error_code error = writeFileAtomically(path, text)) {
            log::warning("cannot keep the last known good configuration in {}: {}", path.string(),
                         error.message());
            return;
        }
        log::info("configuration {} is now the last known good ({})", version, path.string());
    };
    if (options_.offLoop) {
        options_.offLoop(std::move(write));
    } else {
        write();
    }
}

void OtaSupervisor::loadLastGood() {
    const std::filesystem::path path = lastGoodPath();
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        return;
    }
    ConfigLoad load = loadConfigFiles({path});
    if (!load.ok()) {
        log::warning("ignoring the last known good configuration {}: {}", path.string(),
                     formatErrors(load.errors));
        return;
    }
    lastGood_ = std::move(*load.config);
}

} // namespace dmsd
