#pragma once

/// \file
/// Secrets out of everything dmsd says: URL user info (`http://user:pw@host`),
/// the values of query parameters and `key=value` words whose name says key,
/// token, secret or password, `Bearer` tokens, and any value the caller
/// knows to be secret (an API key read from a file) are shown as `***`.
/// Applied at every output boundary (journal and stderr, D-Bus, JSON) and to
/// the messages that quote configuration values.

#include <span>
#include <string>
#include <string_view>

namespace dmsd {

/// What a secret is shown as.
inline constexpr std::string_view kRedacted = "***";

/// \a url with its user info and secret query values replaced by `***`; also
/// for a URL written without a scheme (`user:pw@host:11434`).
std::string redactUrl(std::string_view url);

/// \a text with every secret it contains replaced by `***`: user info of
/// each URL in it, `Bearer` tokens, values of `name=value` and `name: value`
/// where the name contains key, token, secret or password (any case), and
/// every occurrence of \a knownSecrets (empty strings are ignored).
std::string redactSecrets(std::string_view text, std::span<const std::string> knownSecrets = {});

/// What may be shown to anyone: safeText (base/utf8.h: valid UTF-8, no
/// control characters but line feed and tab) with the secrets redacted. The
/// journal, stderr and D-Bus strings go through it.
std::string publicText(std::string_view text);

/// True when redactSecrets(\a text) would change nothing (the cheap test the
/// boundaries make before copying).
bool looksSecretFree(std::string_view text);

} // namespace dmsd
