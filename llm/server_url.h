#pragma once

/// \file
/// `llm.url`: the one parser of the model server's address. The
/// configuration checks the value with it and the client connects to what
/// it returns, so a URL that passes `dmsd check-config` is one the client
/// can use. `llm.ca_file` is checked here too, by the loader the transport uses.

#include <optional>
#include <string>
#include <string_view>

namespace dmsd {

/// Where the model server is.
struct ServerEndpoint {
    std::string host;       ///< name or address, as given
    std::string port;       ///< "80" when the URL names none
    std::string hostHeader; ///< HOST[:PORT] as written (Ollama refuses a Host it does not know)
    bool tls = false;       ///< https: TLS, certificates verified
    /// The URL's path without its trailing `/` ("" or "/some/prefix"): put
    /// before every request's path (a server behind a reverse proxy).
    std::string pathPrefix;
};

/// The endpoint of \a url, or nullopt with the reason in \a problem.
std::optional<ServerEndpoint> parseServerUrl(std::string_view url, std::string* problem);

/// What is wrong with \a url as `llm.url`; nullopt when the client can use it.
std::optional<std::string> serverUrlProblem(std::string_view url);

/// What is wrong with \a path as `llm.ca_file` (empty is fine: the system's
/// store): not absolute, not a regular file, or no PEM certificate OpenSSL
/// can load from it; nullopt when the transport can use it.
std::optional<std::string> caFileProblem(std::string_view path);

} // namespace dmsd
