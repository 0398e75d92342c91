#include "config/loader.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <sys/stat.h>
#include <tuple>

#include <fmt/format.h>

#include "base/input_file.h"
#include "base/utf8.h"
#include "config/reader.h"
#include "config/yaml_tree.h"

namespace dmsd {
namespace {

using config::Location;
using config::Node;
using config::RawError;
using config::Section;

/// The top-level keys, for the message about a file that is not a map.
std::string topLevelKeys() {
    std::vector<std::string> names{"version"};
    for (const std::string& path : configKeyPaths()) {
        const std::string top = path.substr(0, path.find('.'));
        if (std::find(names.begin(), names.end(), top) == names.end()) {
            names.push_back(top);
        }
    }
    return Section::joined(names);
}

/// Reads \a root into \a cfg. \a crossChecks false validates a single file on its
/// own (its values against the defaults would give misleading combinations).
void readConfig(const Node& root, Config& cfg, bool& hasVersion, bool crossChecks,
                std::vector<RawError>& errors) {
    Section top(errors, &root, "", root.loc, crossChecks);
    if (const Node* node = nullptr;
        top.scalar("version", "any text, e.g. \"fleet-2026-11\"", node) && node != nullptr) {
        if (node->text.empty() || node->text.size() > 200 ||
            node->text.find_first_of("\t\n") != std::string::npos) {
            top.fail(node->loc, "version",
                     "must be one line of 1..200 characters without tabs; remove the key to use a "
                     "content hash");
        } else {
            cfg.version = node->text;
            hasVersion = true;
        }
    }
    Config::describe(cfg, top);
    top.finish();
}

class Loader {
public:
    /// Parses one source and merges it; problems are collected.
    void add(std::string name, std::string_view text) {
        const int file = static_cast<int>(names_.size());
        names_.push_back(std::move(name));
        Node root;
        if (!config::parseYaml(file, text, root, errors_)) {
            return;
        }
        if (root.kind != Node::Kind::Map) {
            errors_.push_back({root.loc, "",
                               fmt::format("the top level must be a map of sections (accepted: {})",
                                           topLevelKeys())});
            return;
        }
        // Each file is also checked on its own, so a bad value overridden by a
        // later file is still reported: removing that drop-in must not expose it.
        Config ignored;
        bool ignoredVersion = false;
        readConfig(root, ignored, ignoredVersion, false, errors_);
        config::merge(merged_, std::move(root));
    }

    void fileError(std::string name, std::string message) {
        const int file = static_cast<int>(names_.size());
        names_.push_back(std::move(name));
        errors_.push_back({{file, 0, 0}, "", std::move(message)});
    }

    ConfigLoad finish() {
        Config cfg;
        bool hasVersion = false;
        merged_.kind = Node::Kind::Map;
        merged_.loc = {names_.empty() ? -1 : 0, 0, 0};
        readConfig(merged_, cfg, hasVersion, true, errors_);
        if (!hasVersion) {
            cfg.version = contentVersion(cfg);
        }

        std::stable_sort(errors_.begin(), errors_.end(), [](const RawError& a, const RawError& b) {
            return std::tie(a.loc.file, a.loc.line, a.loc.column, a.keyPath, a.message) <
                   std::tie(b.loc.file, b.loc.line, b.loc.column, b.keyPath, b.message);
        });
        ConfigLoad result;
        for (std::size_t i = 0; i < errors_.size(); ++i) {
            const RawError& e = errors_[i];
            // The per-file pass and the merged pass find the same problem twice.
            if (i > 0 && !(errors_[i - 1].loc < e.loc) && errors_[i - 1].keyPath == e.keyPath &&
                errors_[i - 1].message == e.message) {
                continue;
            }
            ConfigError error;
            if (e.loc.file >= 0 && static_cast<std::size_t>(e.loc.file) < names_.size()) {
                error.file = names_[static_cast<std::size_t>(e.loc.file)];
            }
            error.line = e.loc.line;
            error.column = e.loc.column;
            error.keyPath = e.keyPath;
            error.message = e.message;
            result.errors.push_back(std::move(error));
        }
        if (result.errors.empty()) {
            result.config = std::move(cfg);
        }
        return result;
    }

private:
    std::vector<std::string> names_;
    std::vector<RawError> errors_;
    Node merged_;
};

/// Whether \a path is (a link to) /dev/null. std::filesystem::equivalent
/// refuses to compare character devices, so stat does.
bool isDevNull(const std::filesystem::path& path) {
    struct stat target {};
    struct stat null {};
    return ::stat(path.c_str(), &target) == 0 && ::stat("/dev/null", &null) == 0 &&
           target.st_dev == null.st_dev && target.st_ino == null.st_ino;
}

/// The whole file, or the reason it cannot be read. Only a regular file is
/// read: a FIFO or a device would block the read, and with it the reload
/// worker, `check-config` or the start of `run` (base/input_file.h).
std::optional<std::string> readFile(const std::filesystem::path& path, std::string& problem) {
    std::optional<std::string> content = readInputFile(path, config::kMaxFileBytes, problem);
    if (!content && problem.starts_with("is a directory")) {
        problem = "is a directory, not a configuration file";
    } else if (!content && problem.starts_with("is ")) {
        problem += "; a configuration file must be a regular file";
    }
    return content;
}

} // namespace

std::string ConfigError::format() const {
    // A file name is bytes; what is printed is text (the messages already are).
    std::string out = safeText(file);
    if (!file.empty() && line > 0) {
        out += fmt::format(":{}", line);
        if (column > 0) {
            out += fmt::format(":{}", column);
        }
    }
    if (!out.empty()) {
        out += ": ";
    }
    if (!keyPath.empty()) {
        out += keyPath;
        out += ": ";
    }
    out += message;
    return out;
}

std::filesystem::path configDropInDir(const std::filesystem::path& mainFile) {
    return mainFile.parent_path() / "conf.d";
}

std::vector<std::filesystem::path>
configFileList(const std::filesystem::path& mainFile,
               const std::vector<std::filesystem::path>& extraFiles,
               std::vector<ConfigError>& errors) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files{mainFile};
    const fs::path dir = configDropInDir(mainFile);
    std::error_code ec;
    const fs::file_status status = fs::status(dir, ec);
    if (fs::exists(status)) {
        if (!fs::is_directory(status)) {
            errors.push_back({dir.string(), 0, 0, "",
                              "is not a directory; drop-ins go in a "
                              "directory named conf.d"});
        } else {
            std::vector<fs::path> dropIns;
            fs::directory_iterator it(dir, ec);
            for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
                const fs::path& path = it->path();
                const std::string name = path.filename().string();
                if (name.starts_with('.') || !name.ends_with(".yaml")) {
                    continue; // editor backups and files being written (".x.tmp")
                }
                std::error_code typeEc;
                if (it->is_regular_file(typeEc)) {
                    dropIns.push_back(path);
                } else if (it->is_symlink(typeEc) && !fs::exists(path, typeEc)) {
                    errors.push_back({path.string(), 0, 0, "",
                                      "is a dangling symbolic link; remove it or fix its target"});
                } else if (it->is_directory(typeEc) || isDevNull(path)) {
                    // Not a drop-in: a directory named like one is left alone, and a
                    // link to /dev/null disables a drop-in, as in systemd.
                } else if (auto problem = inputFileProblem(path, InputKind::RegularFile)) {
                    // A FIFO, socket or device would block the read: refused.
                    errors.push_back(
                        {path.string(), 0, 0, "", *problem + "; a drop-in must be a regular file"});
                }
            }
            if (ec) {
                errors.push_back(
                    {dir.string(), 0, 0, "", fmt::format("cannot list: {}", ec.message())});
            }
            std::sort(dropIns.begin(), dropIns.end(), [](const fs::path& a, const fs::path& b) {
                return a.filename().string() < b.filename().string();
            });
            files.insert(files.end(), dropIns.begin(), dropIns.end());
        }
    } else if (ec && ec != std::errc::no_such_file_or_directory) {
        errors.push_back({dir.string(), 0, 0, "", fmt::format("cannot access: {}", ec.message())});
    }
    files.insert(files.end(), extraFiles.begin(), extraFiles.end());
    return files;
}

ConfigLoad loadConfigFiles(const std::vector<std::filesystem::path>& files) {
    Loader loader;
    for (const auto& path : files) {
        std::string problem;
        if (auto text = readFile(path, problem)) {
            loader.add(path.string(), *text);
        } else {
            loader.fileError(path.string(), problem);
        }
    }
    ConfigLoad result = loader.finish();
    result.files = files;
    return result;
}

ConfigLoad loadConfig(const std::filesystem::path& mainFile,
                      const std::vector<std::filesystem::path>& extraFiles) {
    std::vector<ConfigError> listErrors;
    const auto files = configFileList(mainFile, extraFiles, listErrors);
    ConfigLoad result = loadConfigFiles(files);
    if (!listErrors.empty()) {
        result.errors.insert(result.errors.begin(), listErrors.begin(), listErrors.end());
        result.config.reset();
    }
    return result;
}

ConfigLoad loadConfigSources(const std::vector<ConfigSource>& sources) {
    Loader loader;
    for (const ConfigSource& source : sources) {
        loader.add(source.name, source.text);
    }
    return loader.finish();
}

std::optional<Config> loadConfigOrReport(const std::filesystem::path& mainFile,
                                         std::string_view command, std::FILE* err) {
    ConfigLoad load = loadConfig(mainFile);
    if (load.config) {
        return std::move(load.config);
    }
    for (const ConfigError& error : load.errors) {
        fmt::print(err, "{}\n", error.format());
    }
    fmt::print(err,
               "dmsd {}: configuration {} rejected ({} error{}); fix it and check with 'dmsd "
               "check-config {}'\n",
               command, mainFile.string(), load.errors.size(), load.errors.size() == 1 ? "" : "s",
               mainFile.string());
    return std::nullopt;
}

std::string formatErrors(const std::vector<ConfigError>& errors) {
    std::string out;
    for (const ConfigError& error : errors) {
        if (!out.empty()) {
            out += '\n';
        }
        out += error.format();
    }
    return out;
}

} // namespace dmsd
