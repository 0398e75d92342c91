#include "vision/settings.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace dmsd {

std::optional<std::string> landmarkModelProblem(std::string_view path) {
    if (path.empty()) {
        return std::string("no landmark model file given");
    }
    const std::string file(path);
    // Opening the file (rather than access()) is what the vision thread will
    // do, under the service's own user and sandbox: the same answer as at run
    // time, and a directory or a FIFO is not taken for a model.
    UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) {
        const int error = errno;
        if (error == ENOENT) {
            return fmt::format("landmark model \"{}\" does not exist (Debian package "
                               "libdlib-data installs {})",
                               file, kDefaultLandmarkModel);
        }
        return fmt::format("landmark model \"{}\" cannot be read: {}", file, std::strerror(error));
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
        return fmt::format("landmark model \"{}\" is not a regular file", file);
    }
    if (st.st_size == 0) {
        return fmt::format("landmark model \"{}\" is empty", file);
    }
    return std::nullopt;
}

} // namespace dmsd
