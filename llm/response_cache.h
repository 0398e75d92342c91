#pragma once

/// \file
/// Bounded LRU cache of model answers with a time-to-live (`llm.cache`). A hit
/// skips the request: the same frames asked the same question (same model,
/// prompt and image layout) get the answer the model gave a moment ago.

#include <chrono>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "pipeline/sequence.h"

namespace dmsd {

class ResponseCache {
public:
    using Clock = std::chrono::steady_clock;

    /// \a entries 0 disables the cache (every lookup misses, nothing is kept).
    ResponseCache(std::size_t entries, std::chrono::milliseconds ttl);

    /// The cached content for \a key if present and younger than the TTL; counts a hit or miss.
    std::optional<std::string> find(const std::string& key, Clock::time_point now = Clock::now());
    /// Stores \a content (the model's answer text), evicting the least recently used entry.
    void insert(const std::string& key, std::string content, Clock::time_point now = Clock::now());
    void clear();

    std::size_t size() const { return map_.size(); }
    std::uint64_t hits() const { return hits_; }
    std::uint64_t misses() const { return misses_; }

    /// Key of one request: model, question name (analysis or "combined"), the
    /// full prompt text (so a dependent prompt carrying the face state differs),
    /// the image layout and the content hash of every frame. Frames without a
    /// content hash are keyed by a hash of their JPEG bytes.
    static std::string makeKey(std::string_view model, std::string_view question,
                               std::string_view prompt, bool mosaic,
                               const EncodedSequence& sequence);

private:
    struct Entry {
        std::string key;
        std::string content;
        Clock::time_point storedAt;
    };
    std::size_t capacity_;
    std::chrono::milliseconds ttl_;
    std::list<Entry> lru_; ///< most recently used first
    std::unordered_map<std::string, std::list<Entry>::iterator> map_;
    std::uint64_t hits_ = 0;
    std::uint64_t misses_ = 0;
};

/// 64-bit FNV-1a (content hashes of JPEG bytes, prompt fingerprints).
std::uint64_t fnv1a64(const void* data, std::size_t size,
                      std::uint64_t seed = 0xcbf29ce484222325ULL);

} // namespace dmsd
