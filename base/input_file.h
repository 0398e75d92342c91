#pragma once

/// \file
/// Opening a file dmsd did not write (configuration, drop-ins, recorded
/// videos) without ever blocking on it: a FIFO, a socket or a device named
/// where a file is expected would block a read (or the open itself) forever.
/// The file is opened with O_NONBLOCK, checked with fstat, and refused with a
/// clear reason unless it is a regular file (or, where asked, a device).

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include "base/unique_fd.h"

namespace dmsd {

/// Which kinds of file an input may be.
enum class InputKind {
    RegularFile,  ///< configuration, drop-ins, `analyze` inputs
    FileOrDevice, ///< a `file:` capture source may also be a character device
};

/// Opens \a path for reading (O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY,
/// so that not even the open blocks) and checks its kind with fstat. On
/// failure returns an invalid descriptor and sets \a problem ("is a FIFO, not
/// a regular file", "cannot open: Permission denied").
UniqueFd openInputFile(const std::filesystem::path& path, InputKind kind, std::string& problem);

/// Why \a path cannot be used as an input of \a kind, or nullopt when it can
/// (opened and checked as openInputFile does, then closed).
std::optional<std::string> inputFileProblem(const std::filesystem::path& path, InputKind kind);

/// The whole content of the regular file \a path, at most \a maxBytes + 1
/// bytes (so the caller can tell it is too large); nullopt with \a problem
/// when it cannot be opened, is not a regular file, or a read fails.
std::optional<std::string> readInputFile(const std::filesystem::path& path, std::size_t maxBytes,
                                         std::string& problem);

} // namespace dmsd
