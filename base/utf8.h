#pragma once

/// \file
/// Text that came from outside (configuration files, the model's answers,
/// file names) made safe for the places that require valid UTF-8: D-Bus
/// strings, journal fields, JSON. `utf8Problem` says what is wrong with a
/// value (the configuration reader refuses it); `validUtf8` and `safeText`
/// repair text at the output boundaries, whatever came in.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace dmsd {

/// What is wrong with \a text as a configuration value, or nullopt: an
/// invalid UTF-8 sequence, or a control character (C0, DEL, C1) other than
/// those in \a allowedControls. \a offset is set to the byte where it is.
std::optional<std::string> utf8Problem(std::string_view text, std::string_view allowedControls,
                                       std::size_t& offset);

/// True when \a text is valid UTF-8 (overlong forms, surrogates and code
/// points above U+10FFFF are not).
bool isValidUtf8(std::string_view text);

/// \a text with every byte that is not part of a valid UTF-8 sequence
/// replaced by U+FFFD. Returns \a text unchanged (no copy made by callers that
/// test isValidUtf8 first) when it is valid.
std::string validUtf8(std::string_view text);

/// validUtf8(\a text), and control characters other than line feed and tab
/// replaced by U+FFFD too: what may go to the journal, stderr and D-Bus.
std::string safeText(std::string_view text);

} // namespace dmsd
