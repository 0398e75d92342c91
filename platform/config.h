#pragma once

/// \file
/// Loading and validating the configuration (CONTRACT.md section 2).
///
/// `dmsd.yaml` plus the drop-ins of its sibling `conf.d/*.yaml` are merged in
/// lexical order (maps merge key by key; scalars and lists replace), then
/// validated strictly into a dmsd::Config. Every value keeps the file, line and
/// column that set it, so each error points at the file a technician must edit.
/// All errors of all files are reported together. Loading never throws.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "platform/settings.h"

namespace dmsd {

/// One problem found while loading: where it is and what to do about it.
struct ConfigError {
    std::string file;    ///< path as given (or a source name); empty if not tied to a file
    int line = 0;        ///< 1-based; 0 when the problem concerns the whole file
    int column = 0;      ///< 1-based; 0 when unknown
    std::string keyPath; ///< "llm.options.num_ctx"; empty for syntax and file errors
    std::string message; ///< what is wrong, with "(accepted: ...)" where there is a choice

    /// "FILE:LINE:COLUMN: key.path: message"; parts that are unknown are left out.
    std::string format() const;
};

/// Result of loading: the configuration, or every error.
struct ConfigLoad {
    std::optional<Config> config; ///< set exactly when errors is empty
    std::vector<ConfigError> errors;
    std::vector<std::filesystem::path> files; ///< files read, in merge order

    bool ok() const { return config.has_value(); }
};

/// An in-memory configuration file (tests, fuzzing, text received over D-Bus).
struct ConfigSource {
    std::string name; ///< used in error messages, like a file path
    std::string text; ///< YAML
};

/// The drop-in directory of a main file: `<dir of mainFile>/conf.d`.
std::filesystem::path configDropInDir(const std::filesystem::path& mainFile);

/// The files `loadConfig` reads, in merge order: \a mainFile, then `conf.d/*.yaml`
/// (regular files, names not starting with '.', sorted by name), then \a extraFiles.
/// A missing conf.d is fine; an unreadable one is reported in \a errors.
std::vector<std::filesystem::path>
configFileList(const std::filesystem::path& mainFile,
               const std::vector<std::filesystem::path>& extraFiles,
               std::vector<ConfigError>& errors);

/// Loads \a mainFile with its drop-ins (as `dmsd run --config mainFile` does), then
/// merges \a extraFiles on top in the order given (to pre-check a new drop-in).
ConfigLoad loadConfig(const std::filesystem::path& mainFile,
                      const std::vector<std::filesystem::path>& extraFiles = {});

/// Merges exactly these files in this order (no conf.d lookup).
ConfigLoad loadConfigFiles(const std::vector<std::filesystem::path>& files);

/// Merges in-memory sources in order; `files` of the result stays empty.
ConfigLoad loadConfigSources(const std::vector<ConfigSource>& sources);

/// For `run` and `analyze`: loads \a mainFile with its drop-ins. On failure writes
/// every error, one per line, and a closing line naming \a command to \a err and
/// returns nullopt; the caller then exits with code 2 (cli::kExitUsage).
std::optional<Config> loadConfigOrReport(const std::filesystem::path& mainFile,
                                         std::string_view command, std::FILE* err = stderr);

/// All errors, one `format()` per line (for logs and the D-Bus `ConfigError` property).
std::string formatErrors(const std::vector<ConfigError>& errors);

/// Parts of the configuration that can be restarted independently on reload.
enum class ConfigPart { Capture, Sampling, Encode, Llm, Analyses, Alerts, Dbus, Can, Snapshots };

/// Name of a part as in the YAML: "capture", ..., "notify.dbus", "notify.can", "notify.snapshots".
std::string_view configPartName(ConfigPart part);

/// The parts whose settings differ between \a a and \a b, in enum order.
/// `version` alone is not a change.
std::vector<ConfigPart> changedParts(const Config& a, const Config& b);

/// One line for logs and `check-config`: version, capture source, model, mode.
std::string summary(const Config& config);

/// The effective configuration as JSON with the YAML key names, durations as
/// strings ("2s"). It is itself a valid configuration file (JSON is YAML).
/// \a withVersion false leaves out `version` (the content hash is taken over that).
std::string effectiveConfigJson(const Config& config, bool withVersion = true);

/// "sha256:" + the first 12 hex digits of SHA-256 over effectiveConfigJson(config, false).
std::string contentVersion(const Config& config);

/// How `notify.dbus.bus` is to be read.
DbusBusKind dbusBusKind(const DbusSettings& settings);

} // namespace dmsd
