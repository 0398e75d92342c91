#pragma once

/// \file
/// "Did you mean": the nearest of a few known words to a likely typo, for
/// messages about configuration keys, values and source schemes.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd {

/// Optimal-string-alignment distance (a transposition counts 1), case-insensitive.
std::size_t editDistance(std::string_view a, std::string_view b);

/// The candidate nearest to \a word when it is a plausible typo of it.
std::optional<std::string> nearMiss(std::string_view word,
                                    const std::vector<std::string>& candidates);

} // namespace dmsd
