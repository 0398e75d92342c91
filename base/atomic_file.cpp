#include "base/atomic_file.h"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/unique_fd.h"

namespace dmsd {

namespace {
std::error_code errnoCode() {
    return {errno, std::generic_category()};
}

// Creates \a path (it must not exist) and writes \a size bytes; fsyncs when \a sync.
std::error_code writeFile(const std::filesystem::path& path, const void* data, std::size_t size,
                          mode_t mode, bool sync, bool exactMode = false) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode));
    if (!fd) {
        return errnoCode();
    }
    if (exactMode && ::fchmod(fd.get(), mode) != 0) {
        return errnoCode();
    }
    const auto* bytes = static_cast<const unsigned char*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd.get(), bytes, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return errnoCode();
        }
        bytes += n;
        size -= static_cast<std::size_t>(n);
    }
    if (sync && ::fsync(fd.get()) != 0) {
        return errnoCode();
    }
    return {};
}

} // namespace

std::error_code writeFileSynced(const std::filesystem::path& path, const void* data,
                                std::size_t size, mode_t mode) {
    return writeFile(path, data, size, mode, true);
}

std::error_code syncDirectory(const std::filesystem::path& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        return errnoCode();
    }
    if (::fsync(fd.get()) != 0) {
        return errnoCode();
    }
    return {};
}

std::error_code writeFileAtomically(const std::filesystem::path& path, std::string_view text,
                                    mode_t mode) {
    return writeFileAtomically(path, text, AtomicWrite{mode, Durability::Synced, false});
}

std::error_code writeFileAtomically(const std::filesystem::path& path, std::string_view text,
                                    const AtomicWrite& how) {
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
// GCC 12 at -O3 reports a bogus -Wrestrict inside libstdc++ for
// "literal" + std::string (GCC bug 105329, also 105651); clang has no
// -Wrestrict.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
    const std::filesystem::path tmp = dir / ("." + path.filename().string() + ".tmp");
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    ::unlink(tmp.c_str()); // a leftover of a crash in the middle of an earlier write
    const bool synced = how.durability == Durability::Synced;
    if (std::error_code ec =
            writeFile(tmp, text.data(), text.size(), how.mode, synced, how.exactMode)) {
        ::unlink(tmp.c_str());
        return ec;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        std::error_code ec = errnoCode();
        ::unlink(tmp.c_str());
        return ec;
    }
    return synced ? syncDirectory(dir) : std::error_code{};
}

} // namespace dmsd
