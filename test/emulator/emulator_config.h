#pragma once

/// \file
/// The Ollama emulator's settings: command line (fixed interface, see
/// docs/emulator.md) and the subset changeable at run time via POST /_emulator/config.

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dmsd::emulator {

/// Injected fault kinds, in the order they are rolled (the first hit wins).
enum class Fault {
    None,
    Busy503,
    Http500,
    Stall,
    Drop,
    Midstream,
    Oversize,
    Invalid,
    Prose,
    Fence
};
inline constexpr std::array<Fault, 9> kAllFaults = {
    Fault::Busy503,  Fault::Http500, Fault::Stall, Fault::Drop, Fault::Midstream,
    Fault::Oversize, Fault::Invalid, Fault::Prose, Fault::Fence};

/// "none", "busy503", "http500", "stall", "drop", "midstream", "oversize", "invalid", "prose",
/// "fence".
std::string_view faultName(Fault fault);
std::optional<Fault> faultFromName(std::string_view name);

/// One served model: `NAME[:TAG][=cap1,cap2]`.
struct ModelSpec {
    std::string name; ///< with tag, e.g. "llava:7b-v1.6-mistral-q2_K" or "foo:latest"
    std::vector<std::string> capabilities;
    std::optional<int> tokensPerImage; ///< `--tokens-per-image NAME=N`; unset: the default
    /// `--last-image-only NAME`: the model sees only the last image of a
    /// request (as some servers feed a model that takes one image): it
    /// answers from that image and the others cost no tokens.
    bool lastImageOnly = false;
    bool has(std::string_view capability) const;
};

/// Parses `NAME[:TAG][=cap1,cap2]` (no capabilities given: completion, vision).
/// Throws std::invalid_argument with a message.
ModelSpec parseModelSpec(std::string_view text);

struct EmulatorConfig {
    std::string host = "127.0.0.1";
    std::uint16_t port = 0;
    std::string version = "0.12.6";
    std::vector<ModelSpec> models;
    int slots = 1;
    int queue = 512;
    double loadMs = 0;
    double latencyMs = 0;
    double perImageMs = 0;
    double perCharMs = 0;
    double jitterMs = 0;
    int maxImages = 0;                                  ///< per message; 0 = unlimited
    std::array<double, kAllFaults.size()> faultRates{}; ///< indexed like kAllFaults
    std::uint64_t seed = 0;
    std::string scriptPath;
    std::string logPath;
    bool legacyErrors = false;
    // Options beyond the fixed interface:
    std::string keepAlive = "5m";        ///< OLLAMA_KEEP_ALIVE
    bool preloaded = false;              ///< models start loaded (no first cold load)
    std::size_t oversizeBytes = 8 << 20; ///< size of the `oversize` fault's body
    int tokensPerImage = 256;            ///< prompt tokens per image (models without their own)
    int numCtx = 4096;                   ///< default num_ctx (OLLAMA_CONTEXT_LENGTH)
    int contextLength = 32768;           ///< model_info "<arch>.context_length"
    std::size_t chunkChars = 3;          ///< characters per streamed piece ("token")
    // Servers as they really are (docs/emulator.md):
    std::string apiKey;     ///< required as `Authorization: Bearer KEY`; empty: none
    std::string pathPrefix; ///< served under this path ("/some/prefix"); empty: at the root
    int context = 0;        ///< the OpenAI routes' fixed context (tokens); 0: unlimited
    /// What a prompt longer than the context does: truncate (keep its tail,
    /// report the tokens kept) or fail. Unset: Ollama truncates, OpenAI fails.
    std::optional<bool> overflowTruncates;
    std::string tlsCert;        ///< PEM certificate chain: serve https
    std::string tlsKey;         ///< PEM private key of tlsCert
    std::int64_t vramBytes = 0; ///< GPU memory: /api/ps size_vram at most this; 0: unlimited

    double faultRate(Fault fault) const;
    void setFaultRate(Fault fault, double rate);
};

/// Result of parsing the command line.
struct CommandLine {
    std::optional<EmulatorConfig> config; ///< set when the emulator should run
    bool help = false;                    ///< --help: print \a text, exit 0
    std::string text;                     ///< help text, or the error message (exit 2)
};

CommandLine parseCommandLine(int argc, const char* const* argv);

} // namespace dmsd::emulator
