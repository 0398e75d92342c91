#pragma once

/// \file
/// Durable file writes: whole-file write + fsync, directory fsync, and atomic
/// replacement (temporary name in the same directory, fsync, rename). Used by
/// the snapshot writer and the last-known-good configuration.

#include <cstddef>
#include <filesystem>
#include <string_view>
#include <sys/types.h>
#include <system_error>

namespace dmsd {

/// Creates \a path (it must not exist), writes \a size bytes and fsyncs it.
std::error_code writeFileSynced(const std::filesystem::path& path, const void* data,
                                std::size_t size, mode_t mode = 0644);

/// fsyncs a directory (makes renames and new entries in it durable).
std::error_code syncDirectory(const std::filesystem::path& path);

/// What writeFileAtomically promises beyond atomicity.
enum class Durability {
    Synced, ///< the new content is on disk when it returns (fsync of the file and directory)
    Atomic, ///< readers see the old or the new content; no fsync (files rewritten often,
            ///< whose loss in a power cut does not matter: metrics)
};

/// How writeFileAtomically writes.
struct AtomicWrite {
    mode_t mode = 0644;
    Durability durability = Durability::Synced;
    /// Set \a mode exactly (fchmod) instead of letting the umask narrow it:
    /// for files other users read (the service runs with UMask=0077).
    bool exactMode = false;
};

/// Replaces \a path with \a text atomically: readers see the old or the new
/// content, never a part; the new content is on disk when this returns.
std::error_code writeFileAtomically(const std::filesystem::path& path, std::string_view text,
                                    mode_t mode = 0644);

/// The same, as \a how says.
std::error_code writeFileAtomically(const std::filesystem::path& path, std::string_view text,
                                    const AtomicWrite& how);

} // namespace dmsd
