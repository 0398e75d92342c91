#include "base/redact.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "base/utf8.h"

namespace dmsd {
namespace {

bool isNameChar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.';
}

/// Where a value that follows "name=" or "name: " ends in free text.
bool endsValue(char c) {
    return std::isspace(static_cast<unsigned char>(c)) != 0 || c == '&' || c == '"' || c == '\'' ||
           c == ',' || c == ';' || c == ')' || c == ']' || c == '}' || c == '#';
}

/// Whether a parameter or field named \a name holds a secret: it says token,
/// secret, password or auth, or it is a key of some kind (`api_key`, `apikey`,
/// `access-key`), but not the bare word "key" ("unknown key: ...").
bool secretName(std::string_view name) {
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    static constexpr std::array<std::string_view, 5> kWords{"token", "secret", "passwd", "password",
                                                            "auth"};
    if (std::any_of(kWords.begin(), kWords.end(),
                    [&](std::string_view word) { return lower.find(word) != std::string::npos; })) {
        return true;
    }
    return lower.ends_with("_key") || lower.ends_with("-key") || lower.ends_with(".key") ||
           lower.ends_with("apikey");
}

/// Replaces the user info of the authority starting at \a start of \a text:
/// everything up to the last '@' before the end of the authority.
void redactAuthority(std::string& text, std::size_t start) {
    std::size_t end = start;
    while (end < text.size() && text[end] != '/' && text[end] != '?' && text[end] != '#' &&
           text[end] != '"' && text[end] != '\'' &&
           std::isspace(static_cast<unsigned char>(text[end])) == 0) {
        ++end;
    }
    const std::size_t at = text.rfind('@', end == 0 ? 0 : end - 1);
    if (at == std::string::npos || at < start || at >= end) {
        return;
    }
    text.replace(start, at - start, kRedacted);
}

/// Replaces the values of `name=value` and `name: value` with a secret name.
void redactNamedValues(std::string& text) {
    for (std::size_t i = 0; i < text.size(); ++i) {
        // `name=value`, `name: value`, or compact JSON `"name":"value"`.
        const bool equals = text[i] == '=';
        const bool colonSpace = text[i] == ':' && i + 1 < text.size() && text[i + 1] == ' ';
        const bool jsonColon = text[i] == ':' && i > 0 && text[i - 1] == '"';
        if (!equals && !colonSpace && !jsonColon) {
            continue;
        }
        const std::size_t valueStart = colonSpace ? i + 2 : i + 1;
        // The name: letters right before the sign, or a quoted JSON key.
        std::size_t nameEnd = i;
        if (nameEnd > 0 && text[nameEnd - 1] == '"') {
            --nameEnd;
        }
        std::size_t nameStart = nameEnd;
        while (nameStart > 0 && isNameChar(text[nameStart - 1])) {
            --nameStart;
        }
        if (nameStart == nameEnd ||
            !secretName(std::string_view(text).substr(nameStart, nameEnd - nameStart))) {
            continue;
        }
        if (std::string_view(text).substr(valueStart).starts_with("Bearer ")) {
            continue; // redactBearer's
        }
        // A quoted value ("key": "v") keeps its quotes.
        if (valueStart < text.size() && text[valueStart] == '"') {
            const std::size_t close = text.find('"', valueStart + 1);
            if (close == std::string::npos) {
                continue;
            }
            text.replace(valueStart + 1, close - valueStart - 1, kRedacted);
            i = valueStart + 1 + kRedacted.size();
            continue;
        }
        std::size_t valueEnd = valueStart;
        while (valueEnd < text.size() && !endsValue(text[valueEnd])) {
            ++valueEnd;
        }
        if (valueEnd == valueStart ||
            std::string_view(text).substr(valueStart, valueEnd - valueStart) == kRedacted) {
            continue;
        }
        text.replace(valueStart, valueEnd - valueStart, kRedacted);
        i = valueStart + kRedacted.size() - 1;
    }
}

void redactBearer(std::string& text) {
    static constexpr std::string_view kBearer = "Bearer ";
    for (std::size_t at = text.find(kBearer); at != std::string::npos;
         at = text.find(kBearer, at + 1)) {
        const std::size_t start = at + kBearer.size();
        std::size_t end = start;
        while (end < text.size() && !endsValue(text[end])) {
            ++end;
        }
        if (end > start) {
            text.replace(start, end - start, kRedacted);
        }
    }
}

} // namespace

std::string redactUrl(std::string_view url) {
    std::string out(url);
    const std::size_t scheme = out.find("://");
    redactAuthority(out, scheme == std::string::npos ? 0 : scheme + 3);
    redactNamedValues(out);
    return out;
}

bool looksSecretFree(std::string_view text) {
    // Every pattern redactSecrets looks for contains one of these.
    return text.find("://") == std::string_view::npos && text.find('=') == std::string_view::npos &&
           text.find(": ") == std::string_view::npos &&
           text.find("\":") == std::string_view::npos &&
           text.find("Bearer ") == std::string_view::npos;
}

std::string redactSecrets(std::string_view text, std::span<const std::string> knownSecrets) {
    std::string out(text);
    for (const std::string& secret : knownSecrets) {
        if (secret.empty()) {
            continue;
        }
        for (std::size_t at = out.find(secret); at != std::string::npos;
             at = out.find(secret, at + kRedacted.size())) {
            out.replace(at, secret.size(), kRedacted);
        }
    }
    if (looksSecretFree(out)) {
        return out;
    }
    for (std::size_t at = out.find("://"); at != std::string::npos; at = out.find("://", at + 3)) {
        redactAuthority(out, at + 3);
    }
    redactBearer(out);
    redactNamedValues(out);
    return out;
}

std::string publicText(std::string_view text) {
    return redactSecrets(safeText(text));
}

} // namespace dmsd
