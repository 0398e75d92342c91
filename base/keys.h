#pragma once

/// \file
/// How a module declares its configuration keys, once, next to the code that
/// uses them. Each settings struct has
///
///     template <class Self, class Keys> static void describe(Self& s, Keys& k);
///
/// which names every key of its section, in order, with its range and its
/// checks. `Self` is the struct or `const` struct; `Keys` is whoever walks the
/// keys: config/ reads YAML into the struct with it (every message names
/// file:line:column and the key), writes the effective configuration as JSON,
/// and lists the keys for the documentation test. A module therefore
/// validates its own keys without depending on config/. The calls a
/// `describe()` may make:
///
///     k.integer(key, T& v, T min, T max [, ValueCheck<T> check])
///     k.number(key, double& v, double min, double max)
///     k.boolean(key, bool& v)
///     k.text(key, std::string& v, accepted [, TextCheck check [, bool allowEmpty]])
///     k.textList(key, std::string& first, std::vector<std::string>& more, accepted,
///                TextCheck check)         (one value, or a list of distinct ones)
///     k.duration(key, Millis& v, Millis min, Millis max)
///     k.choice(key, E& v, ChoiceNames<E> names)
///     k.canId(key, std::uint32_t& v)              (hex like 0x6D0, or decimal; 11 bits)
///     k.optionalInteger(key, std::optional<int>& v, int min, int max)   (`~` unsets)
///     k.section(key, Sub& sub)                    (Sub::describe(sub, ...) for `key:`)
///     k.crossCheck({key, ...}, CrossCheck check, accepted)
///
/// `accepted` says what is accepted, for messages ("(accepted: ...)"). A
/// cross check is a rule over several keys of the section (dotted paths
/// reach into sub-sections); it runs on the merged configuration once those
/// keys read fine, and its message points at the one the latest file set.

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace dmsd {

/// A problem with one value: what is wrong and, when it differs from the
/// key's range, what would be accepted.
struct ValueProblem {
    std::string message;
    std::string accepted; ///< empty: the key's own
};

/// A rule on one value beyond its type and range; nullopt when fine.
template <class T>
using ValueCheck = std::optional<ValueProblem> (*)(const T& value);

/// A rule on a text value; nullopt when fine, else the message.
using TextCheck = std::optional<std::string> (*)(std::string_view value);

/// A rule over several values; nullopt when fine, else the message.
using CrossCheck = std::function<std::optional<std::string>()>;

/// The YAML spellings of an enumeration's values, in the order messages list them.
template <class E>
using ChoiceNames = std::span<const std::pair<std::string_view, E>>;

/// The spelling of \a value in \a names ("?" when missing).
template <class E>
constexpr std::string_view choiceName(ChoiceNames<E> names, E value) {
    for (const auto& [name, candidate] : names) {
        if (candidate == value) {
            return name;
        }
    }
    return "?";
}

} // namespace dmsd
