#include "llm/server_url.h"

#include <charconv>
#include <cstdint>
#include <memory>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

#include "base/input_file.h"
#include "base/redact.h"

namespace dmsd {

std::optional<ServerEndpoint> parseServerUrl(std::string_view url, std::string* problem) {
    auto fail = [problem](std::string message) -> std::optional<ServerEndpoint> {
        if (problem != nullptr) {
            *problem = std::move(message);
        }
        return std::nullopt;
    };
    // Messages quote the URL without its user info: they reach the journal and
    // the ConfigError property, which anyone on the bus may read.
    const std::string shown = redactUrl(url);
    if (url.find("://") == std::string_view::npos) {
        return fail(fmt::format("\"{}\" has no scheme; write it as http://{}", shown, shown));
    }
    const auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return fail(fmt::format("\"{}\" is not a valid URL ({})", shown, parsed.error().message()));
    }
    const boost::urls::url_view& u = *parsed;
    const bool tls = u.scheme_id() == boost::urls::scheme::https;
    if (!tls && u.scheme_id() != boost::urls::scheme::http) {
        return fail(fmt::format("\"{}\": scheme \"{}\" is not supported, use http or https", shown,
                                std::string_view(u.scheme())));
    }
    if (!u.has_authority() || u.encoded_host().empty()) {
        return fail(fmt::format("\"{}\" names no host", shown));
    }
    if (u.has_userinfo()) {
        return fail(fmt::format("\"{}\": user info is not supported", shown));
    }
    std::string port = tls ? "443" : "80";
    if (u.has_port()) {
        const std::string_view text = u.port();
        std::uint32_t number = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || number == 0 ||
            number > 65535) {
            return fail(
                fmt::format("\"{}\": port \"{}\" is not a number in 1..65535", shown, text));
        }
        port = std::string(text);
    }
    std::string_view path = u.encoded_path();
    while (!path.empty() && path.back() == '/') {
        path.remove_suffix(1);
    }
    if (!path.empty() && (path.front() != '/' || path.find("//") != std::string_view::npos ||
                          path.find("/./") != std::string_view::npos ||
                          path.find("/../") != std::string_view::npos || path.ends_with("/.") ||
                          path.ends_with("/.."))) {
        return fail(fmt::format("\"{}\": the path prefix \"{}\" must be plain segments "
                                "(/some/prefix), no empty, . or .. segment",
                                shown, path));
    }
    if (u.has_query() || u.has_fragment()) {
        return fail(fmt::format("\"{}\": a query or fragment is not allowed", shown));
    }
    ServerEndpoint endpoint;
    endpoint.host = std::string(u.host_address());
    endpoint.port = std::move(port);
    endpoint.hostHeader = std::string(u.encoded_host_and_port());
    endpoint.tls = tls;
    endpoint.pathPrefix = std::string(path);
    return endpoint;
}

std::optional<std::string> serverUrlProblem(std::string_view url) {
    std::string problem;
    if (parseServerUrl(url, &problem)) {
        return std::nullopt;
    }
    return problem;
}

std::optional<std::string> caFileProblem(std::string_view path) {
    if (path.empty()) {
        return std::nullopt;
    }
    if (path.front() != '/') {
        return fmt::format("\"{}\" must be an absolute path", path);
    }
    if (auto problem = inputFileProblem(std::string(path), InputKind::RegularFile)) {
        return fmt::format("\"{}\" {}", path, *problem);
    }
    // Loaded the way the transport loads it, so that a file check-config
    // accepts is one the transport can use.
    struct CtxFree {
        void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
    };
    const std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) {
        return "cannot make a TLS context to load it";
    }
    const std::string file(path);
    if (SSL_CTX_load_verify_locations(ctx.get(), file.c_str(), nullptr) != 1) {
        char reason[256] = {};
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        ERR_clear_error();
        return fmt::format("\"{}\" holds no PEM certificate OpenSSL can load ({})", path, reason);
    }
    return std::nullopt;
}

} // namespace dmsd
