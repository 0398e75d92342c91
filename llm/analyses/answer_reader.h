#pragma once

/// \file
/// The toolkit an analysis is written with (llm/analyses/*.cpp): a reader of
/// the model's answer object that is tolerant of spelling ("Looking-At Road",
/// "drowsy" for SLEEPY, confidences as percentages) and strict about types,
/// and AnalysisOf<Answer>, the base that turns typed read/write functions
/// into the Analysis descriptor (llm/analysis.h).

#include <any>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <fmt/format.h>

#include "llm/analysis.h"

namespace dmsd {

/// Lower case, trimmed, spaces and hyphens as underscores: "Looking-At Road" -> "looking_at_road".
std::string normaliseAnswerWord(std::string_view s);

/// The member \a key of \a o, matched exactly, case-insensitively or normalised.
const boost::json::value* findAnswerKey(const boost::json::object& o, std::string_view key);

/// Reads the fields of one answer object; keeps the first problem (later
/// fields are still read so that the message is the earliest).
class FieldReader {
public:
    FieldReader(const boost::json::object& o, std::string_view analysis)
        : o_(o), analysis_(analysis) {}

    bool failed() const { return !error_.empty(); }
    /// "face_state: missing field 'state'".
    AnalysisError error() const;
    bool has(std::string_view key) const { return findAnswerKey(o_, key) != nullptr; }
    void fail(std::string message);

    /// The value of \a key; null (and, when \a required, a problem) if absent or null.
    const boost::json::value* get(std::string_view key, bool required);
    void boolean(std::string_view key, bool required, bool& out);
    std::optional<double> number(std::string_view key, bool required);
    /// 0..1, or a percentage 1..100 read as such.
    void confidence(std::string_view key, double& out);
    void integer(std::string_view key, bool required, int lo, int hi, int& out);
    std::optional<std::string> text(std::string_view key, bool required);

    /// Matches a string field against \a names (normalised), then \a synonyms.
    template <class E, std::size_t N, std::size_t M = 0>
    bool enumeration(std::string_view key, bool required,
                     const std::array<std::string_view, N>& names, E& out,
                     const std::array<std::pair<std::string_view, E>, M>& synonyms = {}) {
        auto s = text(key, required);
        if (!s) {
            return false;
        }
        const std::string n = normaliseAnswerWord(*s);
        for (std::size_t i = 0; i < N; ++i) {
            if (n == normaliseAnswerWord(names[i])) {
                out = static_cast<E>(i);
                return true;
            }
        }
        for (const auto& [name, value] : synonyms) {
            if (n == name) {
                out = value;
                return true;
            }
        }
        fail(fmt::format("field '{}' has an unknown value \"{}\"", key, *s));
        return false;
    }

private:
    const boost::json::object& o_;
    std::string_view analysis_;
    std::string error_;
};

/// An analysis whose answers are \a Answer structs (with `static constexpr
/// AnalysisKind kKind`): implement readAnswer(), write() and cite().
template <class Answer>
class AnalysisOf : public Analysis {
public:
    AnalysisKind kind() const final { return Answer::kKind; }

    std::any read(const boost::json::object& object, AnalysisError& error) const final {
        FieldReader reader(object, name());
        Answer answer = readAnswer(reader);
        if (reader.failed()) {
            error = reader.error();
            return {};
        }
        return answer;
    }
    boost::json::object toJson(const std::any& answer) const final {
        return write(std::any_cast<const Answer&>(answer));
    }
    boost::json::object evidence(const std::any& answer) const final {
        return cite(std::any_cast<const Answer&>(answer));
    }
    std::optional<double> confidence(const std::any& answer) const final {
        if constexpr (requires(const Answer& a) { a.confidence; }) {
            return std::any_cast<const Answer&>(answer).confidence;
        } else {
            return std::nullopt;
        }
    }

protected:
    /// The answer read from the model's object; problems go to \a r.
    virtual Answer readAnswer(FieldReader& r) const = 0;
    /// Every field, as `analyze` writes it.
    virtual boost::json::object write(const Answer& answer) const = 0;
    /// The fields alerts cite (the confidence is added by the alert layer).
    virtual boost::json::object cite(const Answer& answer) const = 0;
};

} // namespace dmsd
