#include "config/watcher.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sys/inotify.h>
#include <unistd.h>

#include <fmt/format.h>

namespace dmsd {

namespace {
constexpr std::uint32_t kFileEvents = IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM;
}

ConfigWatcher::ConfigWatcher(boost::asio::io_context& io, std::filesystem::path mainFile,
                             std::chrono::milliseconds debounce, ChangeHandler onChange)
    : mainFile_(std::move(mainFile)), debounce_(debounce), onChange_(std::move(onChange)),
      stream_(io), debounceTimer_(io) {
    dir_ = mainFile_.parent_path().empty() ? std::filesystem::path(".") : mainFile_.parent_path();
    confDir_ = dir_ / "conf.d";
}

ConfigWatcher::~ConfigWatcher() {
    *alive_ = false;
    stop();
}

bool ConfigWatcher::relevant(const std::string& name) {
    if (name.empty() || name.front() == '.') {
        return false;
    }
    auto endsWith = [&](std::string_view suffix) {
        return name.size() >= suffix.size() &&
               name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    return endsWith(".yaml") || endsWith(".yml");
}

std::string ConfigWatcher::start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) {
        return fmt::format("cannot watch {}: inotify_init1: {}", dir_.string(),
                           std::strerror(errno));
    }
    stream_.assign(fd);
    dirWatch_ = ::inotify_add_watch(fd, dir_.c_str(), kFileEvents | IN_CREATE | IN_MOVED_TO);
    if (dirWatch_ < 0) {
        std::string error = fmt::format("cannot watch {}: {}", dir_.string(), std::strerror(errno));
        stop();
        return error;
    }
    addConfDirWatch();
    arm();
    return {};
}

void ConfigWatcher::addConfDirWatch() {
    if (confDirWatch_ >= 0 || !stream_.is_open()) {
        return;
    }
    // conf.d may appear later (the first OTA drop-in creates it): then the
    // directory watch sees IN_CREATE/IN_MOVED_TO of "conf.d" and we add it here.
    confDirWatch_ = ::inotify_add_watch(stream_.native_handle(), confDir_.c_str(), kFileEvents);
}

void ConfigWatcher::stop() {
    debounceTimer_.cancel();
    if (stream_.is_open()) {
        boost::system::error_code ec;
        stream_.close(ec);
    }
    dirWatch_ = -1;
    confDirWatch_ = -1;
}

void ConfigWatcher::arm() {
    stream_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                       [this, alive = alive_](const boost::system::error_code& ec) {
                           if (!*alive || ec) {
                               return;
                           }
                           onReadable();
                           arm();
                       });
}

void ConfigWatcher::onReadable() {
    alignas(inotify_event) char buffer[8192];
    for (;;) {
        const ssize_t n = ::read(stream_.native_handle(), buffer, sizeof buffer);
        if (n <= 0) {
            break;
        }
        for (char* p = buffer; p < buffer + n;) {
            auto* event = reinterpret_cast<inotify_event*>(p);
            p += sizeof(inotify_event) + event->len;
            const std::string name = event->len > 0 ? std::string(event->name) : std::string();
            if (event->wd == dirWatch_ && name == "conf.d" && (event->mask & IN_ISDIR)) {
                addConfDirWatch();
                pending_.push_back("conf.d/");
                continue;
            }
            if (event->mask & IN_IGNORED) {
                if (event->wd == confDirWatch_) {
                    confDirWatch_ = -1;
                }
                continue;
            }
            if ((event->mask & IN_ISDIR) || !relevant(name)) {
                continue;
            }
            if (event->wd == dirWatch_ && name != mainFile_.filename().string()) {
                continue; // other YAML files beside dmsd.yaml are not ours
            }
            if (event->mask & (IN_MOVED_TO | IN_CLOSE_WRITE | IN_DELETE | IN_MOVED_FROM)) {
                const std::string shown = event->wd == confDirWatch_ ? "conf.d/" + name : name;
                if (std::find(pending_.begin(), pending_.end(), shown) == pending_.end()) {
                    pending_.push_back(shown);
                }
            }
        }
    }
    if (pending_.empty()) {
        return;
    }
    // Debounce: an OTA agent may drop several files at once; apply them together.
    debounceTimer_.expires_after(debounce_);
    debounceTimer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
        if (!*alive || ec) {
            return;
        }
        std::vector<std::string> files;
        files.swap(pending_);
        onChange_(files);
    });
}

} // namespace dmsd
