#include "llm/api_key.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/input_file.h"

namespace dmsd {

std::optional<std::string> readApiKeyFile(std::string_view path, std::string& problem) {
    auto fail = [&](std::string why) -> std::optional<std::string> {
        // No ':' right after the path: "...key\": text" would read as a secret
        // `name: value` to base/redact.h and be shown as ***.
        problem = fmt::format("llm.api_key_file \"{}\" {}", path, why);
        return std::nullopt;
    };
    // A relative path would depend on the working directory of whoever loads
    // the configuration (check-config in a shell, the service in /).
    if (path.empty() || path.front() != '/') {
        return fail("is not an absolute path (with systemd's LoadCredential=, "
                    "/run/credentials/dmsd.service/NAME)");
    }
    std::string why;
    UniqueFd fd = openInputFile(std::string(path), InputKind::RegularFile, why);
    if (!fd) {
        return fail(why);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        return fail(fmt::format("cannot stat: {}", std::strerror(errno)));
    }
    // ssh's rule for private keys: a secret others can read is no longer one,
    // and refusing it is the only way the mistake gets noticed.
    if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
        return fail(fmt::format("is accessible by group or others (mode {:04o}); the API key must "
                                "be readable by its owner only: chmod 600",
                                st.st_mode & 07777));
    }
    std::string key;
    char buffer[1024];
    while (key.size() <= kMaxApiKeyBytes) {
        const ssize_t got = ::read(fd.get(), buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail(fmt::format("cannot read: {}", std::strerror(errno)));
        }
        if (got == 0) {
            break;
        }
        key.append(buffer, static_cast<std::size_t>(got));
    }
    if (key.size() > kMaxApiKeyBytes) {
        return fail(
            fmt::format("is larger than {} bytes; it should hold the key alone", kMaxApiKeyBytes));
    }
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
        key.pop_back();
    }
    if (key.empty()) {
        return fail("is empty");
    }
    // The key goes into an HTTP header: printable ASCII without spaces only
    // (a byte beyond would be sent as it is, or split the header).
    for (std::size_t i = 0; i < key.size(); ++i) {
        const auto c = static_cast<unsigned char>(key[i]);
        if (c < 0x21 || c > 0x7E) {
            return fail(fmt::format("byte {} is not printable ASCII (0x{:02x}); the file must hold "
                                    "one line, the key",
                                    i, c));
        }
    }
    return key;
}

} // namespace dmsd
