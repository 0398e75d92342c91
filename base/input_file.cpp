#include "base/input_file.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace dmsd {
namespace {

const char* kindName(mode_t mode) {
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISFIFO(mode)) {
        return "a FIFO (named pipe)";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    return "not a regular file";
}

} // namespace

UniqueFd openInputFile(const std::filesystem::path& path, InputKind kind, std::string& problem) {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
    if (!fd) {
        problem = fmt::format("cannot open: {}", std::strerror(errno));
        return {};
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        problem = fmt::format("cannot stat: {}", std::strerror(errno));
        return {};
    }
    const bool regular = S_ISREG(st.st_mode);
    const bool device = S_ISCHR(st.st_mode);
    if (!regular && !(kind == InputKind::FileOrDevice && device)) {
        problem = fmt::format("is {}, not a regular file{}", kindName(st.st_mode),
                              kind == InputKind::FileOrDevice ? " or a device" : "");
        return {};
    }
    if (regular) {
        // Reads of a regular file do not block; clear the flag for whoever
        // reads it after us (GStreamer's filesrc does not expect EAGAIN).
        const int flags = ::fcntl(fd.get(), F_GETFL);
        if (flags >= 0) {
            ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
        }
    }
    return fd;
}

std::optional<std::string> inputFileProblem(const std::filesystem::path& path, InputKind kind) {
    std::string problem;
    if (openInputFile(path, kind, problem)) {
        return std::nullopt;
    }
    return problem;
}

std::optional<std::string> readInputFile(const std::filesystem::path& path, std::size_t maxBytes,
                                         std::string& problem) {
    UniqueFd fd = openInputFile(path, InputKind::RegularFile, problem);
    if (!fd) {
        return std::nullopt;
    }
    std::string content;
    char buffer[16384];
    while (content.size() <= maxBytes) {
        const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            problem = fmt::format("cannot read: {}", std::strerror(errno));
            return std::nullopt;
        }
        if (got == 0) {
            break;
        }
        content.append(buffer, static_cast<std::size_t>(got));
    }
    if (content.size() > maxBytes + 1) {
        content.resize(maxBytes + 1);
    }
    return content;
}

} // namespace dmsd
