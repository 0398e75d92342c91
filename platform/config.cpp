#include "platform/config.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <tuple>
#include <unordered_map>
#include <utility>

#include <boost/json.hpp>
#include <fmt/format.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include "platform/config_syntax.h"

namespace dmsd {
namespace {

namespace json = boost::json;
using config::formatCanId;
using config::formatDuration;

// Bounds that keep hostile or broken input cheap: a configuration needs a
// handful of levels and a few hundred nodes; aliases could otherwise expand
// a small file into an exponential tree.
constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr int kMaxDepth = 32;
constexpr int kMaxNodesPerFile = 20000;

// ---------------------------------------------------------------------------
// A YAML tree that remembers where each value came from.

struct Location {
    int file = -1; ///< index into the loader's names; -1: not tied to a file
    int line = 0;  ///< 1-based; 0: whole file
    int column = 0;
};

bool operator<(const Location& a, const Location& b) {
    return std::tie(a.file, a.line, a.column) < std::tie(b.file, b.line, b.column);
}

struct Entry;

struct Node {
    enum class Kind { Null, Scalar, Sequence, Map };
    Kind kind = Kind::Null;
    std::string text; ///< Scalar
    Location loc;
    std::vector<Node> items;    ///< Sequence
    std::vector<Entry> entries; ///< Map, in file order

    const Entry* find(std::string_view key) const;
};

struct Entry {
    std::string key;
    Location keyLoc;
    Node value;
};

const Entry* Node::find(std::string_view key) const {
    for (const Entry& entry : entries) {
        if (entry.key == key) {
            return &entry;
        }
    }
    return nullptr;
}

struct RawError {
    Location loc;
    std::string keyPath;
    std::string message;
};

Location locationOf(const YAML::Mark& mark, int file, const Location& fallback) {
    if (mark.is_null() || mark.line < 0) {
        return fallback;
    }
    return {file, mark.line + 1, mark.column + 1};
}

Location locationOf(const YAML::Node& node, int file, const Location& fallback) {
    return locationOf(node.Mark(), file, fallback);
}

// ---------------------------------------------------------------------------
// Counting documents without YAML::LoadAll.
//
// yaml-cpp 0.7 (Debian bookworm) can stop on a token it never consumes, such
// as a stray ',' at the top level: each further document it reports is then an
// empty one at the same place, and YAML::LoadAll appends them until memory
// runs out (fixed upstream in 0.8 by jbeder/yaml-cpp#1319; found here by the
// configuration fuzzer). The event parser is therefore asked for at most three
// documents, and a document that starts where the previous one did is a
// parser that made no progress: a syntax error at that place.

class FirstMark final : public YAML::EventHandler {
public:
    std::optional<YAML::Mark> mark;

    void OnDocumentStart(const YAML::Mark&) override {}
    void OnDocumentEnd() override {}
    void OnNull(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
    void OnAlias(const YAML::Mark& m, YAML::anchor_t) override { note(m); }
    void OnScalar(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                  const std::string&) override {
        note(m);
    }
    void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                         YAML::EmitterStyle::value) override {
        note(m);
    }
    void OnSequenceEnd() override {}
    void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t,
                    YAML::EmitterStyle::value) override {
        note(m);
    }
    void OnMapEnd() override {}

private:
    void note(const YAML::Mark& m) {
        if (!mark) {
            mark = m;
        }
    }
};

struct DocumentCount {
    enum class Kind { Empty, One, Several, Stuck } kind = Kind::Empty;
    YAML::Mark at; ///< Several: where the second document starts; Stuck: the culprit
};

/// Throws YAML::ParserException for syntax errors, as YAML::Load does.
DocumentCount countDocuments(const std::string& text) {
    std::istringstream in(text);
    YAML::Parser parser(in);
    FirstMark first;
    if (!parser.HandleNextDocument(first)) {
        return {};
    }
    FirstMark second;
    if (!parser.HandleNextDocument(second)) {
        return {DocumentCount::Kind::One, {}};
    }
    const auto samePlace = [](const FirstMark& a, const FirstMark& b) {
        return a.mark && b.mark && a.mark->pos == b.mark->pos;
    };
    if (samePlace(first, second)) {
        return {DocumentCount::Kind::Stuck, *first.mark};
    }
    FirstMark third;
    if (parser.HandleNextDocument(third) && samePlace(second, third)) {
        return {DocumentCount::Kind::Stuck, *second.mark};
    }
    return {DocumentCount::Kind::Several, second.mark.value_or(YAML::Mark::null_mark())};
}

std::string unexpectedAt(const std::string& text, const YAML::Mark& mark) {
    if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text.size()) {
        const unsigned char c =
            static_cast<unsigned char>(text[static_cast<std::size_t>(mark.pos)]);
        if (c >= 0x21 && c < 0x7f) {
            return fmt::format("YAML syntax error: unexpected '{}'", static_cast<char>(c));
        }
        return fmt::format("YAML syntax error: unexpected byte 0x{:02x}", c);
    }
    return "YAML syntax error: unexpected token";
}

class TreeBuilder {
public:
    TreeBuilder(int file, std::vector<RawError>& errors) : file_(file), errors_(errors) {}

    Node build(const YAML::Node& node, const Location& fallback, int depth) {
        Node out;
        out.loc = locationOf(node, file_, fallback);
        if (++nodes_ > kMaxNodesPerFile) {
            if (!tooMany_) {
                tooMany_ = true;
                errors_.push_back({out.loc, "",
                                   fmt::format("more than {} values (are aliases expanding?); a "
                                               "configuration file needs far fewer",
                                               kMaxNodesPerFile)});
            }
            return out;
        }
        if (depth > kMaxDepth) {
            errors_.push_back(
                {out.loc, "", fmt::format("nested deeper than {} levels", kMaxDepth)});
            return out;
        }
        switch (node.Type()) {
        case YAML::NodeType::Scalar:
            out.kind = Node::Kind::Scalar;
            out.text = node.Scalar();
            break;
        case YAML::NodeType::Sequence:
            out.kind = Node::Kind::Sequence;
            for (const YAML::Node& item : node) {
                out.items.push_back(build(item, out.loc, depth + 1));
            }
            break;
        case YAML::NodeType::Map: {
            out.kind = Node::Kind::Map;
            std::unordered_map<std::string, Location> keys;
            for (const auto& pair : node) {
                const Location keyLoc = locationOf(pair.first, file_, out.loc);
                if (!pair.first.IsScalar()) {
                    errors_.push_back(
                        {keyLoc, "", "a key must be a plain name, not a list or map"});
                    continue;
                }
                // A value-less key ("capture:") reports the key's position, which is
                // where a technician looks; yaml-cpp gives the next line.
                Node value = pair.second.IsNull() ? Node{} : build(pair.second, keyLoc, depth + 1);
                if (pair.second.IsNull()) {
                    value.loc = keyLoc;
                    ++nodes_;
                }
                const std::string key = pair.first.Scalar();
                // An index, not a scan: a hostile file may hold thousands of keys.
                const auto [seen, fresh] = keys.try_emplace(key, keyLoc);
                if (!fresh) {
                    errors_.push_back({keyLoc, key,
                                       fmt::format("duplicate key; it is already set at line {}, "
                                                   "column {} of this file",
                                                   seen->second.line, seen->second.column)});
                    continue;
                }
                out.entries.push_back({key, keyLoc, std::move(value)});
            }
            break;
        }
        default:
            break;
        }
        return out;
    }

private:
    int file_;
    std::vector<RawError>& errors_;
    int nodes_ = 0;
    bool tooMany_ = false;
};

/// Maps merge key by key; everything else replaces. An empty section
/// ("capture:" with nothing below) in a later file leaves the earlier one alone.
void merge(Node& into, Node&& from) {
    std::unordered_map<std::string, std::size_t> index;
    for (std::size_t i = 0; i < into.entries.size(); ++i) {
        index.emplace(into.entries[i].key, i);
    }
    for (Entry& entry : from.entries) {
        const auto found = index.find(entry.key);
        Entry* existing = found == index.end() ? nullptr : &into.entries[found->second];
        if (!existing) {
            index.emplace(entry.key, into.entries.size());
            into.entries.push_back(std::move(entry));
        } else if (existing->value.kind == Node::Kind::Map && entry.value.kind == Node::Kind::Map) {
            merge(existing->value, std::move(entry.value));
        } else if (existing->value.kind == Node::Kind::Map &&
                   entry.value.kind == Node::Kind::Null) {
            // keep the earlier section
        } else {
            existing->keyLoc = entry.keyLoc;
            existing->value = std::move(entry.value);
        }
    }
}

// ---------------------------------------------------------------------------
// Names of enumerations.

template <class E>
using Choices = std::vector<std::pair<std::string, E>>;

const Choices<LlmMode>& modeChoices() {
    static const Choices<LlmMode> choices = {{"auto", LlmMode::Auto},
                                             {"parallel", LlmMode::Parallel},
                                             {"combined", LlmMode::Combined},
                                             {"sequential", LlmMode::Sequential}};
    return choices;
}

const Choices<ImageLayout>& layoutChoices() {
    static const Choices<ImageLayout> choices = {{"separate", ImageLayout::Separate},
                                                 {"mosaic", ImageLayout::Mosaic}};
    return choices;
}

template <class E>
std::string choiceName(const Choices<E>& choices, E value) {
    for (const auto& [name, candidate] : choices) {
        if (candidate == value) {
            return name;
        }
    }
    return "?";
}

std::string joined(const std::vector<std::string>& names) {
    return fmt::format("{}", fmt::join(names, ", "));
}

// ---------------------------------------------------------------------------
// Validation: reads the merged tree into a Config, collecting every problem.

class Section {
public:
    Section(std::vector<RawError>& errors, const Node* node, std::string path, Location where)
        : errors_(errors), node_(node), path_(std::move(path)), where_(where) {}

    std::string path(std::string_view key) const {
        return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
    }

    /// Registers \a key as known and returns its value node, if present.
    const Node* take(std::string_view key) {
        known_.emplace_back(key);
        if (!isMap()) {
            return nullptr;
        }
        const Entry* entry = node_->find(key);
        return entry ? &entry->value : nullptr;
    }

    /// Where the value of \a key was set, if it was.
    std::optional<Location> setAt(std::string_view key) const {
        if (!isMap()) {
            return std::nullopt;
        }
        const Entry* entry = node_->find(key);
        return entry ? std::optional<Location>(entry->value.loc) : std::nullopt;
    }

    Section section(std::string_view key) {
        const Node* node = take(key);
        return Section(errors_, node, path(key), node ? node->loc : where_);
    }

    /// Reports unknown keys (with a near miss) and a section that is not a map.
    void finish() {
        if (node_ == nullptr || node_->kind == Node::Kind::Null) {
            return;
        }
        if (!isMap()) {
            fail(node_->loc, path_,
                 fmt::format("expected a map of settings, got {}", describe(*node_)),
                 joined(known_));
            return;
        }
        for (const Entry& entry : node_->entries) {
            if (std::find(known_.begin(), known_.end(), entry.key) != known_.end()) {
                continue;
            }
            std::string message = "unknown key";
            if (auto near = config::nearMiss(entry.key, known_)) {
                message += fmt::format("; did you mean '{}'?", *near);
            }
            fail(entry.keyLoc, path(entry.key), message, joined(known_));
        }
    }

    void fail(const Location& loc, std::string keyPath, std::string message,
              std::string_view accepted = {}) {
        if (!accepted.empty()) {
            message += fmt::format(" (accepted: {})", accepted);
        }
        errors_.push_back({loc, std::move(keyPath), std::move(message)});
    }

    /// Finds the scalar value of \a key: false when the value is not a scalar
    /// (reported); true with \a node nullptr when the key is absent.
    bool scalar(std::string_view key, std::string_view accepted, const Node*& node) {
        node = take(key);
        if (node == nullptr || node->kind == Node::Kind::Scalar) {
            return true;
        }
        const std::string message =
            node->kind == Node::Kind::Null
                ? std::string("missing value")
                : fmt::format("expected a single value, got {}", describe(*node));
        fail(node->loc, path(key), message, accepted);
        node = nullptr;
        return false;
    }

    // The readers below return false when the value is wrong (reported) and
    // true when it is fine or absent (the default stays).

    template <class T>
    bool integer(std::string_view key, T& out, T min, T max) {
        const std::string accepted = fmt::format("{}..{}", min, max);
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        std::string_view text = node->text;
        if (text.starts_with('+')) {
            text.remove_prefix(1);
        }
        long long value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || end != text.data() + text.size() ||
            (ec != std::errc{} && ec != std::errc::result_out_of_range)) {
            fail(node->loc, path(key),
                 fmt::format("expected a whole number, got \"{}\"", node->text), accepted);
            return false;
        }
        // Every integer setting's range fits in long long.
        if (ec == std::errc::result_out_of_range || value < static_cast<long long>(min) ||
            value > static_cast<long long>(max)) {
            fail(node->loc, path(key), fmt::format("{} is out of range", node->text), accepted);
            return false;
        }
        out = static_cast<T>(value);
        return true;
    }

    bool number(std::string_view key, double& out, double min, double max) {
        const std::string accepted = fmt::format("{}..{}", min, max);
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        std::string_view text = node->text;
        if (text.starts_with('+')) {
            text.remove_prefix(1);
        }
        double value = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc{} || end != text.data() + text.size() ||
            !std::isfinite(value)) {
            fail(node->loc, path(key), fmt::format("expected a number, got \"{}\"", node->text),
                 accepted);
            return false;
        }
        if (value < min || value > max) {
            fail(node->loc, path(key), fmt::format("{} is out of range", node->text), accepted);
            return false;
        }
        out = value;
        return true;
    }

    bool boolean(std::string_view key, bool& out) {
        const std::string_view accepted = "true, false";
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        std::string text = node->text;
        std::transform(text.begin(), text.end(), text.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (text == "true" || text == "yes" || text == "on") {
            out = true;
        } else if (text == "false" || text == "no" || text == "off") {
            out = false;
        } else {
            fail(node->loc, path(key),
                 fmt::format("expected true or false, got \"{}\"", node->text), accepted);
            return false;
        }
        return true;
    }

    using Check = std::function<std::optional<std::string>(std::string_view)>;

    bool text(std::string_view key, std::string& out, std::string_view accepted,
              bool allowEmpty = false, const Check& check = {}) {
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        if (!allowEmpty && node->text.empty()) {
            fail(node->loc, path(key), "empty value", accepted);
            return false;
        }
        if (check) {
            if (auto problem = check(node->text)) {
                fail(node->loc, path(key), *problem, accepted);
                return false;
            }
        }
        out = node->text;
        return true;
    }

    bool duration(std::string_view key, Millis& out, Millis min, Millis max) {
        const std::string range = fmt::format("{}..{}", formatDuration(min), formatDuration(max));
        const Node* node = nullptr;
        if (!scalar(key, fmt::format("{}; {}", range, config::kDurationSyntax), node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        const auto value = config::parseDuration(node->text);
        if (!value) {
            fail(node->loc, path(key), fmt::format("invalid duration \"{}\"", node->text),
                 config::kDurationSyntax);
            return false;
        }
        if (*value < min || *value > max) {
            fail(node->loc, path(key), fmt::format("{} is out of range", node->text), range);
            return false;
        }
        out = *value;
        return true;
    }

    template <class E>
    bool choice(std::string_view key, E& out, const Choices<E>& choices) {
        std::vector<std::string> names;
        for (const auto& choice : choices) {
            names.push_back(choice.first);
        }
        const std::string accepted = joined(names);
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        for (const auto& [name, value] : choices) {
            if (node->text == name) {
                out = value;
                return true;
            }
        }
        std::string message = fmt::format("unknown value \"{}\"", node->text);
        if (auto near = config::nearMiss(node->text, names)) {
            message += fmt::format("; did you mean '{}'?", *near);
        }
        fail(node->loc, path(key), message, accepted);
        return false;
    }

    bool canId(std::string_view key, std::uint32_t& out) {
        const std::string accepted =
            fmt::format("0..{}, as hex like 0x6D0 or decimal", formatCanId(config::kMaxCanId));
        const Node* node = nullptr;
        if (!scalar(key, accepted, node)) {
            return false;
        }
        if (node == nullptr) {
            return true;
        }
        const auto value = config::parseCanId(node->text);
        if (!value) {
            fail(node->loc, path(key), fmt::format("expected a CAN id, got \"{}\"", node->text),
                 accepted);
            return false;
        }
        if (*value > config::kMaxCanId) {
            fail(node->loc, path(key),
                 fmt::format("{} does not fit in an 11-bit CAN id", node->text), accepted);
            return false;
        }
        out = *value;
        return true;
    }

    const Location& where() const { return where_; }

private:
    bool isMap() const { return node_ != nullptr && node_->kind == Node::Kind::Map; }

    static std::string describe(const Node& node) {
        switch (node.kind) {
        case Node::Kind::Null:
            return "nothing";
        case Node::Kind::Scalar:
            return fmt::format("\"{}\"", node.text);
        case Node::Kind::Sequence:
            return "a list";
        case Node::Kind::Map:
            return "a map";
        }
        return "?";
    }

    std::vector<RawError>& errors_;
    const Node* node_;
    std::string path_;
    Location where_;
    std::vector<std::string> known_;
};

/// The latest of the given (path, location) pairs that is set: a cross-field
/// error points at the value the last file changed.
std::optional<std::pair<std::string, Location>>
latestSet(std::initializer_list<std::pair<std::string, std::optional<Location>>> candidates) {
    std::optional<std::pair<std::string, Location>> best;
    for (const auto& [path, loc] : candidates) {
        if (loc && (!best || best->second < *loc)) {
            best.emplace(path, *loc);
        }
    }
    return best;
}

/// Reads \a root into \a cfg. \a crossChecks false validates a single file on its
/// own (its values against the defaults would give misleading combinations).
void readConfig(const Node& root, Config& cfg, bool& hasVersion, bool crossChecks,
                std::vector<RawError>& errors) {
    using namespace std::chrono_literals;
    Section top(errors, &root, "", root.loc);

    if (const Node* node = nullptr;
        top.scalar("version", "any text, e.g. \"fleet-2026-11\"", node) && node != nullptr) {
        if (node->text.empty() || node->text.size() > 200 ||
            node->text.find('\n') != std::string::npos) {
            top.fail(node->loc, "version",
                     "must be one line of 1..200 characters; remove the key to use a content hash");
        } else {
            cfg.version = node->text;
            hasVersion = true;
        }
    }

    Section capture = top.section("capture");
    capture.text("source", cfg.capture.source,
                 "v4l2:DEVICE, file:PATH, test:PATTERN, pipeline:GST-LAUNCH-DESCRIPTION", false,
                 config::sourceProblem);
    for (auto [key, field, max] : {std::tuple{"width", &cfg.capture.width, 7680},
                                   std::tuple{"height", &cfg.capture.height, 4320}}) {
        if (capture.integer(key, *field, 32, max) && *field % 2 != 0 && capture.setAt(key)) {
            capture.fail(*capture.setAt(key), capture.path(key),
                         fmt::format("{} is odd; the 4:2:0 frames need an even size", *field),
                         fmt::format("even numbers in 32..{}", max));
        }
    }
    const bool fpsOk = capture.integer("fps", cfg.capture.fps, 1, 120);
    capture.finish();

    Section sampling = top.section("sampling");
    const bool intervalOk = sampling.duration("interval", cfg.sampling.interval, 100ms, 1h);
    const bool framesOk =
        sampling.integer("frames_per_sequence", cfg.sampling.framesPerSequence, 2, 32);
    sampling.number("motion_threshold", cfg.sampling.motionThreshold, 0.0, 1.0);
    sampling.duration("max_static_skip", cfg.sampling.maxStaticSkip, 0ms, 24h);
    sampling.finish();
    if (crossChecks && fpsOk && intervalOk && framesOk) {
        const long long available = cfg.capture.fps * cfg.sampling.interval.count() / 1000;
        if (cfg.sampling.framesPerSequence > available) {
            if (auto culprit = latestSet(
                    {{"sampling.frames_per_sequence", sampling.setAt("frames_per_sequence")},
                     {"sampling.interval", sampling.setAt("interval")},
                     {"capture.fps", capture.setAt("fps")}})) {
                top.fail(culprit->second, culprit->first,
                         fmt::format("{} frames per sequence do not fit in one interval of {} at "
                                     "{} fps (at most {}); lower sampling.frames_per_sequence "
                                     "or raise sampling.interval or capture.fps",
                                     cfg.sampling.framesPerSequence,
                                     formatDuration(cfg.sampling.interval), cfg.capture.fps,
                                     available));
            }
        }
    }

    Section encode = top.section("encode");
    encode.integer("jpeg_quality", cfg.encode.jpegQuality, 1, 100);
    encode.choice("layout", cfg.encode.layout, layoutChoices());
    encode.finish();

    Section llm = top.section("llm");
    llm.text("url", cfg.llm.url, "http(s)://HOST[:PORT]", false, config::urlProblem);
    llm.text("model", cfg.llm.model, "a model name the server knows, e.g. llava:7b");
    llm.choice("mode", cfg.llm.mode, modeChoices());
    llm.integer("max_in_flight", cfg.llm.maxInFlight, 1, 64);
    llm.duration("timeout", cfg.llm.timeout, 100ms, 1h);
    llm.duration("keep_alive", cfg.llm.keepAlive, 0ms, 24h);
    {
        Section options = llm.section("options");
        LlmOptions& o = cfg.llm.options;
        options.number("temperature", o.temperature, 0.0, 2.0);
        options.integer("top_k", o.topK, 1, 1000);
        options.number("top_p", o.topP, 0.0, 1.0);
        options.integer("num_ctx", o.numCtx, 256, 131072);
        options.integer("num_predict", o.numPredict, 1, 16384);
        if (const Node* seed = options.take("seed"); seed && seed->kind == Node::Kind::Null) {
            o.seed.reset(); // an explicit null unsets a seed an earlier file gave
        } else if (seed != nullptr) {
            int value = 0;
            if (options.integer("seed", value, std::numeric_limits<int>::min(),
                                std::numeric_limits<int>::max())) {
                o.seed = value;
            }
        }
        options.finish();
    }
    {
        Section cache = llm.section("cache");
        cache.integer("entries", cfg.llm.cache.entries, 0, 100000);
        cache.duration("ttl", cfg.llm.cache.ttl, 0ms, 24h);
        cache.finish();
    }
    llm.duration("connect_timeout", cfg.llm.connectTimeout, 100ms, 1min);
    llm.duration("first_byte_timeout", cfg.llm.firstByteTimeout, 0ms, 1h);
    llm.duration("idle_timeout", cfg.llm.idleTimeout, 0ms, 1h);
    llm.integer<std::size_t>("max_response_bytes", cfg.llm.maxResponseBytes, 1024, 64u << 20);
    llm.finish();

    Section analyses = top.section("analyses");
    for (AnalysisKind kind : kAllAnalyses) {
        Section analysis = analyses.section(analysisName(kind));
        analysis.boolean("enabled", cfg.analyses[kind].enabled);
        analysis.text("prompt", cfg.analyses[kind].prompt, "text; empty for the built-in prompt",
                      true);
        analysis.finish();
    }
    analyses.finish();

    Section alerts = top.section("alerts");
    for (AlertKind kind : kAllAlertKinds) {
        Section alert = alerts.section(alertKindKey(kind));
        AlertRule& rule = cfg.alerts[kind];
        const bool raiseOk = alert.duration("raise_after", rule.raiseAfter, 0ms, 1h);
        alert.duration("clear_after", rule.clearAfter, 0ms, 1h);
        const bool criticalOk = alert.duration("critical_after", rule.criticalAfter, 0ms, 1h);
        alert.duration("cooldown", rule.cooldown, 0ms, 24h);
        if (crossChecks && raiseOk && criticalOk && rule.criticalAfter < rule.raiseAfter) {
            if (auto culprit =
                    latestSet({{alert.path("critical_after"), alert.setAt("critical_after")},
                               {alert.path("raise_after"), alert.setAt("raise_after")}})) {
                top.fail(culprit->second, culprit->first,
                         fmt::format("critical_after {} is shorter than raise_after {}; an alert "
                                     "is raised before it can become critical",
                                     formatDuration(rule.criticalAfter),
                                     formatDuration(rule.raiseAfter)),
                         "critical_after >= raise_after");
            }
        }
        alert.finish();
    }
    alerts.finish();

    Section notify = top.section("notify");
    {
        Section dbus = notify.section("dbus");
        dbus.boolean("enabled", cfg.notify.dbus.enabled);
        dbus.text("bus", cfg.notify.dbus.bus,
                  "system, session, or a D-Bus address such as unix:path=/run/dbus/"
                  "system_bus_socket",
                  false, config::busProblem);
        dbus.finish();
    }
    {
        Section can = notify.section("can");
        CanSettings& c = cfg.notify.can;
        can.boolean("enabled", c.enabled);
        can.text("interface", c.interface, "a SocketCAN interface name such as can0", false,
                 config::interfaceProblem);
        const bool alertOk = can.canId("alert_id", c.alertId);
        const bool heartbeatOk = can.canId("heartbeat_id", c.heartbeatId);
        can.duration("heartbeat", c.heartbeat, 10ms, 1min);
        if (crossChecks && alertOk && heartbeatOk && c.alertId == c.heartbeatId) {
            if (auto culprit = latestSet({{can.path("alert_id"), can.setAt("alert_id")},
                                          {can.path("heartbeat_id"), can.setAt("heartbeat_id")}})) {
                top.fail(culprit->second, culprit->first,
                         fmt::format("alert_id and heartbeat_id are both {}; receivers tell the "
                                     "frames apart by id",
                                     formatCanId(c.alertId)),
                         "two different ids");
            }
        }
        can.finish();
    }
    {
        Section snapshots = notify.section("snapshots");
        snapshots.boolean("enabled", cfg.notify.snapshots.enabled);
        snapshots.text("dir", cfg.notify.snapshots.dir, "a directory path");
        snapshots.integer("max_files", cfg.notify.snapshots.maxFiles, 1, 1000000);
        snapshots.finish();
    }
    notify.finish();

    top.finish();
}

// ---------------------------------------------------------------------------
// Loading.

class Loader {
public:
    /// Parses one source and merges it; problems are collected.
    void add(std::string name, std::string_view text) {
        const int file = static_cast<int>(names_.size());
        names_.push_back(std::move(name));
        if (text.size() > kMaxFileBytes) {
            errors_.push_back(
                {{file, 0, 0},
                 "",
                 fmt::format("larger than {} KiB; is this the right file?", kMaxFileBytes / 1024)});
            return;
        }
        const std::string source(text);
        YAML::Node document;
        try {
            const DocumentCount count = countDocuments(source);
            switch (count.kind) {
            case DocumentCount::Kind::Empty:
                return; // an empty file (or one of comments) changes nothing
            case DocumentCount::Kind::Stuck:
                errors_.push_back({{file, count.at.line + 1, count.at.column + 1},
                                   "",
                                   unexpectedAt(source, count.at)});
                return;
            case DocumentCount::Kind::Several:
                errors_.push_back(
                    {locationOf(count.at, file, {file, 0, 0}), "",
                     "more than one YAML document ('---'); put each in its own file"});
                return;
            case DocumentCount::Kind::One:
                break;
            }
            document = YAML::Load(source);
        } catch (const YAML::ParserException& e) {
            errors_.push_back({{file, e.mark.line + 1, e.mark.column + 1},
                               "",
                               fmt::format("YAML syntax error: {}", e.msg)});
            return;
        } catch (const std::exception& e) {
            errors_.push_back({{file, 0, 0}, "", fmt::format("cannot parse YAML: {}", e.what())});
            return;
        }
        if (document.IsNull()) {
            return;
        }
        Node root;
        try {
            TreeBuilder builder(file, errors_);
            root = builder.build(document, {file, 1, 1}, 0);
        } catch (const std::exception& e) {
            errors_.push_back({{file, 0, 0}, "", fmt::format("cannot read YAML: {}", e.what())});
            return;
        }
        if (root.kind != Node::Kind::Map) {
            errors_.push_back({root.loc, "",
                               "the top level must be a map of sections (accepted: version, "
                               "capture, sampling, encode, llm, analyses, alerts, notify)"});
            return;
        }
        // Each file is also checked on its own, so a bad value overridden by a
        // later file is still reported: removing that drop-in must not expose it.
        Config ignored;
        bool ignoredVersion = false;
        readConfig(root, ignored, ignoredVersion, false, errors_);
        merge(merged_, std::move(root));
    }

    void fileError(std::string name, std::string message) {
        const int file = static_cast<int>(names_.size());
        names_.push_back(std::move(name));
        errors_.push_back({{file, 0, 0}, "", std::move(message)});
    }

    ConfigLoad finish() {
        Config cfg;
        bool hasVersion = false;
        merged_.kind = Node::Kind::Map;
        merged_.loc = {names_.empty() ? -1 : 0, 0, 0};
        readConfig(merged_, cfg, hasVersion, true, errors_);
        if (!hasVersion) {
            cfg.version = contentVersion(cfg);
        }

        std::stable_sort(errors_.begin(), errors_.end(), [](const RawError& a, const RawError& b) {
            return std::tie(a.loc.file, a.loc.line, a.loc.column, a.keyPath, a.message) <
                   std::tie(b.loc.file, b.loc.line, b.loc.column, b.keyPath, b.message);
        });
        ConfigLoad result;
        for (std::size_t i = 0; i < errors_.size(); ++i) {
            const RawError& e = errors_[i];
            // The per-file pass and the merged pass find the same problem twice.
            if (i > 0 && !(errors_[i - 1].loc < e.loc) && errors_[i - 1].keyPath == e.keyPath &&
                errors_[i - 1].message == e.message) {
                continue;
            }
            ConfigError error;
            if (e.loc.file >= 0 && static_cast<std::size_t>(e.loc.file) < names_.size()) {
                error.file = names_[static_cast<std::size_t>(e.loc.file)];
            }
            error.line = e.loc.line;
            error.column = e.loc.column;
            error.keyPath = e.keyPath;
            error.message = e.message;
            result.errors.push_back(std::move(error));
        }
        if (result.errors.empty()) {
            result.config = std::move(cfg);
        }
        return result;
    }

private:
    std::vector<std::string> names_;
    std::vector<RawError> errors_;
    Node merged_;
};

struct FileCloser {
    void operator()(std::FILE* file) const { std::fclose(file); }
};

/// The whole file, or the reason it cannot be read.
std::optional<std::string> readFile(const std::filesystem::path& path, std::string& problem) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        problem = "is a directory, not a configuration file";
        return std::nullopt;
    }
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) {
        problem = fmt::format("cannot open: {}", std::strerror(errno));
        return std::nullopt;
    }
    std::string content;
    char buffer[16384];
    while (true) {
        const std::size_t got = std::fread(buffer, 1, sizeof buffer, file.get());
        content.append(buffer, got);
        if (content.size() > kMaxFileBytes) {
            break; // the loader reports the size
        }
        if (got < sizeof buffer) {
            if (std::ferror(file.get())) {
                problem = fmt::format("cannot read: {}", std::strerror(errno));
                return std::nullopt;
            }
            break;
        }
    }
    return content;
}

// ---------------------------------------------------------------------------
// The effective configuration as JSON.

json::object partJson(const Config& c, ConfigPart part) {
    switch (part) {
    case ConfigPart::Capture:
        return {{"source", c.capture.source},
                {"width", c.capture.width},
                {"height", c.capture.height},
                {"fps", c.capture.fps}};
    case ConfigPart::Sampling:
        return {{"interval", formatDuration(c.sampling.interval)},
                {"frames_per_sequence", c.sampling.framesPerSequence},
                {"motion_threshold", c.sampling.motionThreshold},
                {"max_static_skip", formatDuration(c.sampling.maxStaticSkip)}};
    case ConfigPart::Encode:
        return {{"jpeg_quality", c.encode.jpegQuality},
                {"layout", choiceName(layoutChoices(), c.encode.layout)}};
    case ConfigPart::Llm: {
        const LlmOptions& o = c.llm.options;
        json::object options{{"temperature", o.temperature},
                             {"top_k", o.topK},
                             {"top_p", o.topP},
                             {"num_ctx", o.numCtx},
                             {"num_predict", o.numPredict}};
        if (o.seed) {
            options["seed"] = *o.seed;
        }
        return {
            {"url", c.llm.url},
            {"model", c.llm.model},
            {"mode", choiceName(modeChoices(), c.llm.mode)},
            {"max_in_flight", c.llm.maxInFlight},
            {"timeout", formatDuration(c.llm.timeout)},
            {"keep_alive", formatDuration(c.llm.keepAlive)},
            {"options", std::move(options)},
            {"cache", {{"entries", c.llm.cache.entries}, {"ttl", formatDuration(c.llm.cache.ttl)}}},
            {"connect_timeout", formatDuration(c.llm.connectTimeout)},
            {"first_byte_timeout", formatDuration(c.llm.firstByteTimeout)},
            {"idle_timeout", formatDuration(c.llm.idleTimeout)},
            {"max_response_bytes", c.llm.maxResponseBytes}};
    }
    case ConfigPart::Analyses: {
        json::object out;
        for (AnalysisKind kind : kAllAnalyses) {
            out[analysisName(kind)] = {{"enabled", c.analyses[kind].enabled},
                                       {"prompt", c.analyses[kind].prompt}};
        }
        return out;
    }
    case ConfigPart::Alerts: {
        json::object out;
        for (AlertKind kind : kAllAlertKinds) {
            const AlertRule& r = c.alerts[kind];
            out[alertKindKey(kind)] = {{"raise_after", formatDuration(r.raiseAfter)},
                                       {"clear_after", formatDuration(r.clearAfter)},
                                       {"critical_after", formatDuration(r.criticalAfter)},
                                       {"cooldown", formatDuration(r.cooldown)}};
        }
        return out;
    }
    case ConfigPart::Dbus:
        return {{"enabled", c.notify.dbus.enabled}, {"bus", c.notify.dbus.bus}};
    case ConfigPart::Can:
        return {{"enabled", c.notify.can.enabled},
                {"interface", c.notify.can.interface},
                {"alert_id", formatCanId(c.notify.can.alertId)},
                {"heartbeat_id", formatCanId(c.notify.can.heartbeatId)},
                {"heartbeat", formatDuration(c.notify.can.heartbeat)}};
    case ConfigPart::Snapshots:
        return {{"enabled", c.notify.snapshots.enabled},
                {"dir", c.notify.snapshots.dir},
                {"max_files", c.notify.snapshots.maxFiles}};
    }
    return {};
}

constexpr std::array kAllParts = {ConfigPart::Capture, ConfigPart::Sampling, ConfigPart::Encode,
                                  ConfigPart::Llm,     ConfigPart::Analyses, ConfigPart::Alerts,
                                  ConfigPart::Dbus,    ConfigPart::Can,      ConfigPart::Snapshots};

json::object configJson(const Config& c, bool withVersion) {
    json::object out;
    if (withVersion) {
        out["version"] = c.version;
    }
    json::object notify;
    for (ConfigPart part : kAllParts) {
        const std::string_view name = configPartName(part);
        if (name.starts_with("notify.")) {
            notify[name.substr(7)] = partJson(c, part);
        } else {
            out[name] = partJson(c, part);
        }
    }
    out["notify"] = std::move(notify);
    return out;
}

void pretty(std::string& out, const json::value& value, int indent) {
    if (value.is_double()) {
        out += fmt::format("{}", value.as_double()); // "0.02" rather than "2E-2"
        return;
    }
    if (!value.is_object() || value.as_object().empty()) {
        out += json::serialize(value);
        return;
    }
    out += "{\n";
    const json::object& object = value.as_object();
    std::size_t i = 0;
    for (const auto& member : object) {
        out.append(static_cast<std::size_t>(indent + 2), ' ');
        out += json::serialize(json::string(member.key()));
        out += ": ";
        pretty(out, member.value(), indent + 2);
        out += ++i < object.size() ? ",\n" : "\n";
    }
    out.append(static_cast<std::size_t>(indent), ' ');
    out += "}";
}

} // namespace

std::string ConfigError::format() const {
    std::string out = file;
    if (!file.empty() && line > 0) {
        out += fmt::format(":{}", line);
        if (column > 0) {
            out += fmt::format(":{}", column);
        }
    }
    if (!out.empty()) {
        out += ": ";
    }
    if (!keyPath.empty()) {
        out += keyPath;
        out += ": ";
    }
    out += message;
    return out;
}

std::filesystem::path configDropInDir(const std::filesystem::path& mainFile) {
    return mainFile.parent_path() / "conf.d";
}

std::vector<std::filesystem::path>
configFileList(const std::filesystem::path& mainFile,
               const std::vector<std::filesystem::path>& extraFiles,
               std::vector<ConfigError>& errors) {
    namespace fs = std::filesystem;
    std::vector<fs::path> files{mainFile};
    const fs::path dir = configDropInDir(mainFile);
    std::error_code ec;
    const fs::file_status status = fs::status(dir, ec);
    if (fs::exists(status)) {
        if (!fs::is_directory(status)) {
            errors.push_back({dir.string(), 0, 0, "",
                              "is not a directory; drop-ins go in a "
                              "directory named conf.d"});
        } else {
            std::vector<fs::path> dropIns;
            fs::directory_iterator it(dir, ec);
            for (; !ec && it != fs::directory_iterator(); it.increment(ec)) {
                const fs::path& path = it->path();
                const std::string name = path.filename().string();
                if (name.starts_with('.') || !name.ends_with(".yaml")) {
                    continue; // editor backups and files being written (".x.tmp")
                }
                std::error_code typeEc;
                if (it->is_regular_file(typeEc)) {
                    dropIns.push_back(path);
                } else if (it->is_symlink(typeEc) && !fs::exists(path, typeEc)) {
                    errors.push_back({path.string(), 0, 0, "",
                                      "is a dangling symbolic link; remove it or fix its target"});
                }
                // Other types (a link to /dev/null) disable a drop-in, as in systemd.
            }
            if (ec) {
                errors.push_back(
                    {dir.string(), 0, 0, "", fmt::format("cannot list: {}", ec.message())});
            }
            std::sort(dropIns.begin(), dropIns.end(), [](const fs::path& a, const fs::path& b) {
                return a.filename().string() < b.filename().string();
            });
            files.insert(files.end(), dropIns.begin(), dropIns.end());
        }
    } else if (ec && ec != std::errc::no_such_file_or_directory) {
        errors.push_back({dir.string(), 0, 0, "", fmt::format("cannot access: {}", ec.message())});
    }
    files.insert(files.end(), extraFiles.begin(), extraFiles.end());
    return files;
}

ConfigLoad loadConfigFiles(const std::vector<std::filesystem::path>& files) {
    Loader loader;
    for (const auto& path : files) {
        std::string problem;
        if (auto text = readFile(path, problem)) {
            loader.add(path.string(), *text);
        } else {
            loader.fileError(path.string(), problem);
        }
    }
    ConfigLoad result = loader.finish();
    result.files = files;
    return result;
}

ConfigLoad loadConfig(const std::filesystem::path& mainFile,
                      const std::vector<std::filesystem::path>& extraFiles) {
    std::vector<ConfigError> listErrors;
    const auto files = configFileList(mainFile, extraFiles, listErrors);
    ConfigLoad result = loadConfigFiles(files);
    if (!listErrors.empty()) {
        result.errors.insert(result.errors.begin(), listErrors.begin(), listErrors.end());
        result.config.reset();
    }
    return result;
}

ConfigLoad loadConfigSources(const std::vector<ConfigSource>& sources) {
    Loader loader;
    for (const ConfigSource& source : sources) {
        loader.add(source.name, source.text);
    }
    return loader.finish();
}

std::optional<Config> loadConfigOrReport(const std::filesystem::path& mainFile,
                                         std::string_view command, std::FILE* err) {
    ConfigLoad load = loadConfig(mainFile);
    if (load.config) {
        return std::move(load.config);
    }
    for (const ConfigError& error : load.errors) {
        fmt::print(err, "{}\n", error.format());
    }
    fmt::print(err,
               "dmsd {}: configuration {} rejected ({} error{}); fix it and check with 'dmsd "
               "check-config {}'\n",
               command, mainFile.string(), load.errors.size(), load.errors.size() == 1 ? "" : "s",
               mainFile.string());
    return std::nullopt;
}

std::string formatErrors(const std::vector<ConfigError>& errors) {
    std::string out;
    for (const ConfigError& error : errors) {
        if (!out.empty()) {
            out += '\n';
        }
        out += error.format();
    }
    return out;
}

std::string_view configPartName(ConfigPart part) {
    switch (part) {
    case ConfigPart::Capture:
        return "capture";
    case ConfigPart::Sampling:
        return "sampling";
    case ConfigPart::Encode:
        return "encode";
    case ConfigPart::Llm:
        return "llm";
    case ConfigPart::Analyses:
        return "analyses";
    case ConfigPart::Alerts:
        return "alerts";
    case ConfigPart::Dbus:
        return "notify.dbus";
    case ConfigPart::Can:
        return "notify.can";
    case ConfigPart::Snapshots:
        return "notify.snapshots";
    }
    return "?";
}

std::vector<ConfigPart> changedParts(const Config& a, const Config& b) {
    // Comparing the canonical JSON of each part covers every field without a
    // hand-written operator== that a new field could silently escape.
    std::vector<ConfigPart> changed;
    for (ConfigPart part : kAllParts) {
        if (partJson(a, part) != partJson(b, part)) {
            changed.push_back(part);
        }
    }
    return changed;
}

std::string summary(const Config& config) {
    return fmt::format("version \"{}\", source \"{}\", model \"{}\" at {}, mode {}", config.version,
                       config.capture.source, config.llm.model, config.llm.url,
                       choiceName(modeChoices(), config.llm.mode));
}

std::string effectiveConfigJson(const Config& config, bool withVersion) {
    std::string out;
    pretty(out, configJson(config, withVersion), 0);
    out += '\n';
    return out;
}

std::string contentVersion(const Config& config) {
    return "sha256:" + config::sha256Hex(json::serialize(configJson(config, false))).substr(0, 12);
}

DbusBusKind dbusBusKind(const DbusSettings& settings) {
    if (settings.bus == "system") {
        return DbusBusKind::System;
    }
    if (settings.bus == "session") {
        return DbusBusKind::Session;
    }
    return DbusBusKind::Address;
}

} // namespace dmsd
