#pragma once

/// \file
/// Watches the configuration directory and its conf.d/ with inotify on the
/// event loop, for over-the-air updates: a YAML file renamed into place
/// (IN_MOVED_TO) or closed after writing (IN_CLOSE_WRITE) triggers, after a
/// short debounce, one reload. Temporary names (leading '.', or not ending in
/// .yaml/.yml) are ignored, so write-temp-then-rename applies exactly once.

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace dmsd {

class ConfigWatcher {
public:
    /// \a onChange gets the file names that changed during the debounce window.
    using ChangeHandler = std::function<void(const std::vector<std::string>& files)>;

    ConfigWatcher(boost::asio::io_context& io, std::filesystem::path mainFile,
                  std::chrono::milliseconds debounce, ChangeHandler onChange);
    ~ConfigWatcher();
    ConfigWatcher(const ConfigWatcher&) = delete;
    ConfigWatcher& operator=(const ConfigWatcher&) = delete;

    /// Starts watching; returns an error message (naming the directory) or empty.
    std::string start();
    void stop();

    /// True when \a name is a file whose change should trigger a reload.
    static bool relevant(const std::string& name);

private:
    void arm();
    void onReadable();
    void addConfDirWatch();

    std::filesystem::path mainFile_;
    std::filesystem::path dir_;
    std::filesystem::path confDir_;
    std::chrono::milliseconds debounce_;
    ChangeHandler onChange_;
    boost::asio::posix::stream_descriptor stream_;
    boost::asio::steady_timer debounceTimer_;
    int dirWatch_ = -1;
    int confDirWatch_ = -1;
    std::vector<std::string> pending_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

} // namespace dmsd
