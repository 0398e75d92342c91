#pragma once

/// \file
/// Loading the configuration: `dmsd.yaml` plus the drop-ins of its sibling
/// `conf.d/*.yaml`, merged in lexical order (maps merge key by key; scalars
/// and lists replace), then read strictly into a dmsd::Config by each
/// module's own key descriptions. Every value keeps the file, line and column
/// that set it, so each error points at the file a technician must edit. All
/// errors of all files are reported together. Loading never throws. This is
/// the one validation: `check-config`, `run`, reloads and `analyze` all load
/// through here.

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

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
/// returns nullopt; the caller then exits with code 2.
std::optional<Config> loadConfigOrReport(const std::filesystem::path& mainFile,
                                         std::string_view command, std::FILE* err = stderr);

/// All errors, one `format()` per line (for logs and the D-Bus `ConfigError` property).
std::string formatErrors(const std::vector<ConfigError>& errors);

} // namespace dmsd
