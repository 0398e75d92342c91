#include "platform/config_syntax.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <limits>

#include <boost/url/parse.hpp>
#include <fmt/format.h>

namespace dmsd::config {
namespace {

char lower(char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool isDigit(char c) {
    return c >= '0' && c <= '9';
}

bool isBlank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

} // namespace

std::optional<Millis> parseDuration(std::string_view text) {
    // Integer arithmetic throughout: "0.1s" must be exactly 100 ms, not 99.
    std::size_t pos = 0;
    std::uint64_t whole = 0;
    std::size_t wholeDigits = 0;
    while (pos < text.size() && isDigit(text[pos])) {
        if (++wholeDigits > 12) {
            return std::nullopt;
        }
        whole = whole * 10 + static_cast<std::uint64_t>(text[pos] - '0');
        ++pos;
    }
    std::uint64_t fraction = 0;
    std::uint64_t scale = 1;
    if (pos < text.size() && text[pos] == '.') {
        ++pos;
        std::size_t fractionDigits = 0;
        while (pos < text.size() && isDigit(text[pos])) {
            if (++fractionDigits > 9) {
                return std::nullopt;
            }
            fraction = fraction * 10 + static_cast<std::uint64_t>(text[pos] - '0');
            scale *= 10;
            ++pos;
        }
        if (fractionDigits == 0) {
            return std::nullopt;
        }
    }
    if (wholeDigits == 0) {
        return std::nullopt;
    }
    const std::string_view unit = text.substr(pos);
    std::uint64_t unitMs = 0;
    if (unit.empty() || unit == "s") {
        unitMs = 1000;
    } else if (unit == "ms") {
        unitMs = 1;
    } else if (unit == "m") {
        unitMs = 60'000;
    } else if (unit == "h") {
        unitMs = 3'600'000;
    } else {
        return std::nullopt;
    }
    using Wide = unsigned __int128;
    const Wide scaled = (static_cast<Wide>(whole) * scale + fraction) * unitMs;
    if (scaled % scale != 0) {
        return std::nullopt; // finer than a millisecond
    }
    const Wide ms = scaled / scale;
    constexpr std::uint64_t kMaxMs = 30ull * 24 * 3'600'000;
    if (ms > kMaxMs) {
        return std::nullopt;
    }
    return Millis{static_cast<std::int64_t>(ms)};
}

std::string formatDuration(Millis duration) {
    const auto ms = duration.count();
    if (ms == 0) {
        return "0s";
    }
    if (ms % 3'600'000 == 0) {
        return fmt::format("{}h", ms / 3'600'000);
    }
    if (ms % 60'000 == 0) {
        return fmt::format("{}m", ms / 60'000);
    }
    if (ms % 1000 == 0) {
        return fmt::format("{}s", ms / 1000);
    }
    return fmt::format("{}ms", ms);
}

std::optional<std::uint32_t> parseCanId(std::string_view text) {
    int base = 10;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        text.remove_prefix(2);
    }
    if (text.empty() || text.size() > 10) {
        return std::nullopt;
    }
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
    if (ec != std::errc{} || end != text.data() + text.size() ||
        value > std::numeric_limits<std::uint32_t>::max()) {
        return std::nullopt;
    }
    return static_cast<std::uint32_t>(value);
}

std::string formatCanId(std::uint32_t id) {
    return fmt::format("0x{:03X}", id);
}

std::optional<std::string> urlProblem(std::string_view url) {
    if (url.find("://") == std::string_view::npos) {
        return fmt::format("\"{}\" has no scheme; write it as http://{}", url, url);
    }
    const auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return fmt::format("\"{}\" is not a valid URL ({})", url, parsed.error().message());
    }
    const boost::urls::url_view& u = *parsed;
    if (u.scheme_id() != boost::urls::scheme::http && u.scheme_id() != boost::urls::scheme::https) {
        return fmt::format("\"{}\": scheme \"{}\" is not supported, use http or https", url,
                           std::string_view(u.scheme()));
    }
    if (!u.has_authority() || u.encoded_host().empty()) {
        return fmt::format("\"{}\" names no host", url);
    }
    if (u.has_userinfo()) {
        return fmt::format("\"{}\": user info is not supported", url);
    }
    if (u.has_port()) {
        const std::string_view port = u.port();
        std::uint32_t number = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
        if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || number == 0 ||
            number > 65535) {
            return fmt::format("\"{}\": port \"{}\" is not a number in 1..65535", url, port);
        }
    }
    const std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        return fmt::format("\"{}\": a path (\"{}\") is not allowed; requests go to URL/api/chat",
                           url, path);
    }
    if (u.has_query() || u.has_fragment()) {
        return fmt::format("\"{}\": a query or fragment is not allowed", url);
    }
    return std::nullopt;
}

std::optional<std::string> sourceProblem(std::string_view source) {
    static const std::vector<std::string> schemes = {"v4l2", "file", "test", "pipeline"};
    const std::size_t colon = source.find(':');
    if (colon == std::string_view::npos) {
        std::string hint;
        if (source.starts_with("/dev/")) {
            hint = fmt::format("; did you mean 'v4l2:{}'?", source);
        } else if (source.find('.') != std::string_view::npos ||
                   source.find('/') != std::string_view::npos) {
            hint = fmt::format("; did you mean 'file:{}'?", source);
        }
        return fmt::format("\"{}\" has no scheme{}", source, hint);
    }
    const std::string_view scheme = source.substr(0, colon);
    const std::string_view rest = source.substr(colon + 1);
    const bool restBlank = std::all_of(rest.begin(), rest.end(), isBlank);
    if (scheme == "v4l2") {
        if (!rest.starts_with('/')) {
            return fmt::format("\"{}\": v4l2 needs a device path such as v4l2:/dev/video0", source);
        }
    } else if (scheme == "file") {
        if (restBlank) {
            return fmt::format("\"{}\": file needs a path such as file:/path/to/video.mp4", source);
        }
    } else if (scheme == "test") {
        if (restBlank) {
            return fmt::format("\"{}\": test needs a pattern name such as test:ball", source);
        }
    } else if (scheme == "pipeline") {
        if (restBlank) {
            return fmt::format("\"{}\": pipeline needs a GStreamer launch description", source);
        }
    } else {
        std::string hint;
        if (auto near = nearMiss(scheme, schemes)) {
            hint = fmt::format("; did you mean '{}:'?", *near);
        }
        return fmt::format("unknown source scheme \"{}\"{}", scheme, hint);
    }
    return std::nullopt;
}

std::optional<std::string> busProblem(std::string_view bus) {
    if (bus == "system" || bus == "session") {
        return std::nullopt;
    }
    if (bus.find(':') == std::string_view::npos) {
        std::string hint;
        if (auto near = nearMiss(bus, {"system", "session"})) {
            hint = fmt::format("; did you mean '{}'?", *near);
        }
        return fmt::format("\"{}\" is neither system, session nor a D-Bus address{}", bus, hint);
    }
    // transport:key=value,key=value;transport:...
    std::string_view rest = bus;
    while (!rest.empty()) {
        const std::size_t semicolon = rest.find(';');
        const std::string_view part = rest.substr(0, semicolon);
        rest =
            semicolon == std::string_view::npos ? std::string_view{} : rest.substr(semicolon + 1);
        if (part.empty()) {
            continue;
        }
        const std::size_t colon = part.find(':');
        const std::string_view transport = part.substr(0, colon);
        const bool transportOk =
            colon != std::string_view::npos && !transport.empty() &&
            std::all_of(transport.begin(), transport.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
            });
        if (!transportOk) {
            return fmt::format("\"{}\" is not a D-Bus address: \"{}\" lacks a transport name", bus,
                               part);
        }
        std::string_view pairs = part.substr(colon + 1);
        while (!pairs.empty()) {
            const std::size_t comma = pairs.find(',');
            const std::string_view pair = pairs.substr(0, comma);
            pairs = comma == std::string_view::npos ? std::string_view{} : pairs.substr(comma + 1);
            const std::size_t equals = pair.find('=');
            if (equals == 0 || equals == std::string_view::npos || equals + 1 == pair.size()) {
                return fmt::format("\"{}\" is not a D-Bus address: \"{}\" is not key=value", bus,
                                   pair);
            }
        }
    }
    return std::nullopt;
}

std::optional<std::string> interfaceProblem(std::string_view name) {
    if (name.empty()) {
        return std::string("the interface name is empty");
    }
    if (name.size() > 15) {
        return fmt::format("\"{}\" is longer than 15 characters", name);
    }
    if (name == "." || name == ".." ||
        std::any_of(name.begin(), name.end(), [](char c) { return c == '/' || isBlank(c); })) {
        return fmt::format("\"{}\" is not a network interface name", name);
    }
    return std::nullopt;
}

std::size_t editDistance(std::string_view a, std::string_view b) {
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    // Three rows suffice for the optimal-string-alignment recurrence.
    std::vector<std::size_t> before(m + 1), previous(m + 1), current(m + 1);
    for (std::size_t j = 0; j <= m; ++j) {
        previous[j] = j;
    }
    for (std::size_t i = 1; i <= n; ++i) {
        current[0] = i;
        for (std::size_t j = 1; j <= m; ++j) {
            const std::size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
            current[j] = std::min({previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost});
            if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
                lower(a[i - 2]) == lower(b[j - 1])) {
                current[j] = std::min(current[j], before[j - 2] + 1);
            }
        }
        std::swap(before, previous);
        std::swap(previous, current);
    }
    return previous[m];
}

std::optional<std::string> nearMiss(std::string_view word,
                                    const std::vector<std::string>& candidates) {
    if (word.size() > 64) {
        return std::nullopt; // nobody mistypes a key that long; keeps the cost bounded
    }
    std::optional<std::string> best;
    std::size_t bestDistance = std::numeric_limits<std::size_t>::max();
    for (const std::string& candidate : candidates) {
        const std::size_t distance = editDistance(word, candidate);
        const std::size_t allowed =
            std::max<std::size_t>(1, std::min<std::size_t>(3, candidate.size() / 3));
        if (distance <= allowed && distance < bestDistance && distance < candidate.size()) {
            best = candidate;
            bestDistance = distance;
        }
    }
    return best;
}

// FIPS 180-4 SHA-256. Only the configuration's content hash uses it; the
// platform library links no crypto library and a version string needs no more.
std::string sha256Hex(std::string_view data) {
    static constexpr std::array<std::uint32_t, 64> k = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2};
    std::array<std::uint32_t, 8> h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                      0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    auto rotr = [](std::uint32_t x, int n) {
        return (x >> n) | (x << (32 - n));
    };

    std::string message(data);
    const std::uint64_t bitLength = static_cast<std::uint64_t>(data.size()) * 8;
    message.push_back(static_cast<char>(0x80));
    while (message.size() % 64 != 56) {
        message.push_back('\0');
    }
    for (int shift = 56; shift >= 0; shift -= 8) {
        message.push_back(static_cast<char>((bitLength >> shift) & 0xff));
    }

    for (std::size_t block = 0; block < message.size(); block += 64) {
        std::array<std::uint32_t, 64> w{};
        for (std::size_t i = 0; i < 16; ++i) {
            for (std::size_t b = 0; b < 4; ++b) {
                w[i] = (w[i] << 8) | static_cast<unsigned char>(message[block + i * 4 + b]);
            }
        }
        for (std::size_t i = 16; i < 64; ++i) {
            const std::uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
            const std::uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        std::array<std::uint32_t, 8> v = h;
        for (std::size_t i = 0; i < 64; ++i) {
            const std::uint32_t s1 = rotr(v[4], 6) ^ rotr(v[4], 11) ^ rotr(v[4], 25);
            const std::uint32_t ch = (v[4] & v[5]) ^ (~v[4] & v[6]);
            const std::uint32_t t1 = v[7] + s1 + ch + k[i] + w[i];
            const std::uint32_t s0 = rotr(v[0], 2) ^ rotr(v[0], 13) ^ rotr(v[0], 22);
            const std::uint32_t maj = (v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]);
            const std::uint32_t t2 = s0 + maj;
            v = {t1 + t2, v[0], v[1], v[2], v[3] + t1, v[4], v[5], v[6]};
        }
        for (std::size_t i = 0; i < 8; ++i) {
            h[i] += v[i];
        }
    }
    std::string hex;
    for (std::uint32_t word : h) {
        hex += fmt::format("{:08x}", word);
    }
    return hex;
}

} // namespace dmsd::config
