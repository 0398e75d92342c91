#pragma once

#include <filesystem>
#include <string_view>

namespace dmsd::test {

/// A fresh directory under $TMPDIR (or /tmp), removed with its content on destruction.
class TempDir {
public:
    explicit TempDir(std::string_view prefix = "dmsd-test");
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    ~TempDir();

    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

private:
    std::filesystem::path path_;
};

} // namespace dmsd::test
