#include "llm/response_cache.h"

#include <fmt/format.h>

namespace dmsd {

std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t seed) {
    const auto* p = static_cast<const unsigned char*>(data);
    std::uint64_t h = seed;
    for (std::size_t i = 0; i < size; ++i) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

ResponseCache::ResponseCache(std::size_t entries, std::chrono::milliseconds ttl)
    : capacity_(entries), ttl_(ttl) {
}

std::optional<std::string> ResponseCache::find(const std::string& key, Clock::time_point now) {
    auto it = map_.find(key);
    if (it == map_.end()) {
        ++misses_;
        return std::nullopt;
    }
    if (now - it->second->storedAt > ttl_) {
        lru_.erase(it->second);
        map_.erase(it);
        ++misses_;
        return std::nullopt;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    ++hits_;
    return it->second->content;
}

void ResponseCache::insert(const std::string& key, std::string content, Clock::time_point now) {
    if (capacity_ == 0 || ttl_.count() <= 0) {
        return;
    }
    if (auto it = map_.find(key); it != map_.end()) {
        it->second->content = std::move(content);
        it->second->storedAt = now;
        lru_.splice(lru_.begin(), lru_, it->second);
        return;
    }
    lru_.push_front(Entry{key, std::move(content), now});
    map_.emplace(key, lru_.begin());
    while (map_.size() > capacity_) {
        map_.erase(lru_.back().key);
        lru_.pop_back();
    }
}

void ResponseCache::clear() {
    lru_.clear();
    map_.clear();
}

std::string ResponseCache::makeKey(std::string_view model, std::string_view question,
                                   std::string_view prompt, bool mosaic,
                                   const EncodedSequence& sequence) {
    std::string key =
        fmt::format("{}\x1f{}\x1f{}\x1f{:016x}:{}", model, question, mosaic ? "mosaic" : "separate",
                    fnv1a64(prompt.data(), prompt.size()), prompt.size());
    bool hashed = !sequence.frames.empty();
    for (const SampledFrameInfo& frame : sequence.frames) {
        hashed = hashed && frame.contentHash != 0;
    }
    if (hashed) {
        for (const SampledFrameInfo& frame : sequence.frames) {
            key += fmt::format("\x1f{:016x}", frame.contentHash);
        }
    } else {
        for (const JpegImage& image : sequence.images) {
            const std::uint64_t h =
                image.bytes ? fnv1a64(image.bytes->data(), image.bytes->size()) : 0;
            key += fmt::format("\x1fj{:016x}", h);
        }
    }
    return key;
}

} // namespace dmsd
