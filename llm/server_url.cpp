#include "llm/server_url.h"

#include <charconv>
#include <cstdint>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

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
    if (u.scheme_id() == boost::urls::scheme::https) {
        return fail(fmt::format("\"{}\": https is not supported yet; reach the model server over "
                                "http:// (on loopback or a private network)",
                                shown));
    }
    if (u.scheme_id() != boost::urls::scheme::http) {
        return fail(fmt::format("\"{}\": scheme \"{}\" is not supported, use http", shown,
                                std::string_view(u.scheme())));
    }
    if (!u.has_authority() || u.encoded_host().empty()) {
        return fail(fmt::format("\"{}\" names no host", shown));
    }
    if (u.has_userinfo()) {
        return fail(fmt::format("\"{}\": user info is not supported", shown));
    }
    std::string port = "80";
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
    const std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        return fail(fmt::format(
            "\"{}\": a path (\"{}\") is not allowed; requests go to URL/api/chat", shown, path));
    }
    if (u.has_query() || u.has_fragment()) {
        return fail(fmt::format("\"{}\": a query or fragment is not allowed", shown));
    }
    ServerEndpoint endpoint;
    endpoint.host = std::string(u.host_address());
    endpoint.port = std::move(port);
    endpoint.hostHeader = std::string(u.encoded_host_and_port());
    return endpoint;
}

std::optional<std::string> serverUrlProblem(std::string_view url) {
    std::string problem;
    if (parseServerUrl(url, &problem)) {
        return std::nullopt;
    }
    return problem;
}

} // namespace dmsd
