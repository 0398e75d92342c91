#include "test/emulator/emulator_config.h"

#include <algorithm>
#include <random>
#include <sstream>
#include <stdexcept>

#include <boost/program_options.hpp>

namespace dmsd::emulator {
namespace po = boost::program_options;

namespace {

constexpr std::array<std::string_view, kAllFaults.size()> kFaultNames = {
    "busy503", "http500", "stall", "drop", "midstream", "oversize", "invalid", "prose", "fence"};

std::size_t faultIndex(Fault fault) {
    auto it = std::find(kAllFaults.begin(), kAllFaults.end(), fault);
    return static_cast<std::size_t>(it - kAllFaults.begin());
}

} // namespace

std::string_view faultName(Fault fault) {
    if (fault == Fault::None) {
        return "none";
    }
    return kFaultNames[faultIndex(fault)];
}

std::optional<Fault> faultFromName(std::string_view name) {
    for (std::size_t i = 0; i < kFaultNames.size(); ++i) {
        if (kFaultNames[i] == name) {
            return kAllFaults[i];
        }
    }
    return std::nullopt;
}

bool ModelSpec::has(std::string_view capability) const {
    return std::find(capabilities.begin(), capabilities.end(), capability) != capabilities.end();
}

ModelSpec parseModelSpec(std::string_view text) {
    ModelSpec spec;
    std::string_view name = text;
    std::string_view caps = "completion,vision";
    if (auto eq = text.find('='); eq != std::string_view::npos) {
        name = text.substr(0, eq);
        caps = text.substr(eq + 1);
    }
    if (name.empty() || name.front() == ':' || name.back() == ':' ||
        std::count(name.begin(), name.end(), ':') > 1) {
        throw std::invalid_argument("--model \"" + std::string(text) +
                                    "\": expected NAME[:TAG][=cap1,cap2]");
    }
    for (char c : name) {
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' ||
              c == ':' || c == '/')) {
            throw std::invalid_argument("--model \"" + std::string(text) +
                                        "\": invalid character in the model name");
        }
    }
    spec.name = std::string(name);
    if (name.find(':') == std::string_view::npos) {
        spec.name += ":latest";
    }
    static constexpr std::string_view known[] = {"completion", "tools",    "insert", "vision",
                                                 "embedding",  "thinking", "image",  "audio"};
    std::stringstream in{std::string(caps)};
    for (std::string cap; std::getline(in, cap, ',');) {
        if (cap.empty()) {
            continue;
        }
        if (std::find(std::begin(known), std::end(known), cap) == std::end(known)) {
            throw std::invalid_argument("--model \"" + std::string(text) +
                                        "\": unknown capability \"" + cap +
                                        "\" (known: completion, tools, insert, vision, "
                                        "embedding, thinking, image, audio)");
        }
        spec.capabilities.push_back(cap);
    }
    return spec;
}

double EmulatorConfig::faultRate(Fault fault) const {
    return fault == Fault::None ? 0.0 : faultRates[faultIndex(fault)];
}

void EmulatorConfig::setFaultRate(Fault fault, double rate) {
    if (fault != Fault::None) {
        faultRates[faultIndex(fault)] = rate;
    }
}

CommandLine parseCommandLine(int argc, const char* const* argv) {
    CommandLine result;
    EmulatorConfig config;
    std::vector<std::string> models;
    std::vector<std::string> faults;
    std::vector<std::string> tokensPerImage;
    std::vector<std::string> lastImageOnly;
    std::string overflow;
    std::optional<std::uint64_t> seed;
    int port = 0;
    po::options_description options(
        "ollama-emulator: an Ollama server for tests (see docs/emulator.md)");
    // clang-format off
    options.add_options()
        ("help,h", "print this help and exit")
        ("host", po::value(&config.host)->default_value(config.host), "address to listen on")
        ("port", po::value(&port)->default_value(0), "TCP port, 0 = any free port")
        ("version", po::value(&config.version)->default_value(config.version), "version reported by /api/version")
        ("model", po::value(&models), "NAME[:TAG][=cap1,cap2], repeatable (default llava:7b-v1.6-mistral-q2_K=completion,vision)")
        ("slots", po::value(&config.slots)->default_value(1), "parallel slots per model (OLLAMA_NUM_PARALLEL)")
        ("queue", po::value(&config.queue)->default_value(512), "pending-load queue (OLLAMA_MAX_QUEUE)")
        ("load-ms", po::value(&config.loadMs)->default_value(0), "cold-load time")
        ("latency-ms", po::value(&config.latencyMs)->default_value(0), "base processing time per request")
        ("per-image-ms", po::value(&config.perImageMs)->default_value(0), "added per image")
        ("per-char-ms", po::value(&config.perCharMs)->default_value(0), "added per answer character")
        ("jitter-ms", po::value(&config.jitterMs)->default_value(0), "uniform random 0..N added")
        ("max-images", po::value(&config.maxImages)->default_value(0), "images per message the model accepts, 0 = unlimited")
        ("fault", po::value(&faults), "KIND=RATE, repeatable; KIND in busy503, http500, drop, stall, prose, fence, invalid, oversize, midstream")
        ("seed", po::value<std::uint64_t>(), "RNG seed for jitter and faults")
        ("script", po::value(&config.scriptPath), "JSON answer script")
        ("log", po::value(&config.logPath), "JSON Lines request log")
        ("legacy-errors", po::bool_switch(&config.legacyErrors), "pre-0.12.6 streaming errors (HTTP 200 + {\"error\"} line)")
        ("keep-alive", po::value(&config.keepAlive)->default_value(config.keepAlive), "default keep_alive (OLLAMA_KEEP_ALIVE)")
        ("preloaded", po::bool_switch(&config.preloaded), "models start loaded")
        ("oversize-bytes", po::value(&config.oversizeBytes)->default_value(config.oversizeBytes), "body size of the oversize fault")
        ("tokens-per-image", po::value(&tokensPerImage), "N or NAME=N, repeatable: prompt tokens per image (default 256)")
        ("last-image-only", po::value(&lastImageOnly), "NAME, repeatable: that --model sees only the last image of a request")
        ("num-ctx", po::value(&config.numCtx)->default_value(config.numCtx), "default num_ctx")
        ("chunk-chars", po::value(&config.chunkChars)->default_value(config.chunkChars), "characters per streamed piece")
        ("api-key", po::value(&config.apiKey), "require Authorization: Bearer KEY (else 401)")
        ("path-prefix", po::value(&config.pathPrefix), "serve under /PREFIX (as behind a reverse proxy)")
        ("context", po::value(&config.context)->default_value(0), "context of the OpenAI routes in tokens, 0 = unlimited")
        ("overflow", po::value(&overflow), "truncate|error: a prompt beyond the context (default: Ollama truncate, OpenAI error)")
        ("tls-cert", po::value(&config.tlsCert), "PEM certificate chain: serve https (with --tls-key)")
        ("tls-key", po::value(&config.tlsKey), "PEM private key of --tls-cert")
        ("vram-bytes", po::value(&config.vramBytes)->default_value(0), "GPU memory for /api/ps size_vram, 0 = unlimited");
    // clang-format on
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(options).run(), vm);
        po::notify(vm);
        if (vm.count("help") != 0U) {
            std::ostringstream text;
            text << options;
            result.help = true;
            result.text = text.str();
            return result;
        }
        if (vm.count("seed") != 0U) {
            seed = vm["seed"].as<std::uint64_t>();
        }
    } catch (const std::exception& e) {
        result.text = std::string(e.what()) + " (see --help)";
        return result;
    }
    auto fail = [&](const std::string& message) {
        result.text = message;
        return result;
    };
    if (port < 0 || port > 65535) {
        return fail("--port " + std::to_string(port) + " is out of range 0..65535");
    }
    config.port = static_cast<std::uint16_t>(port);
    if (config.slots < 1) {
        return fail("--slots must be at least 1");
    }
    if (config.queue < 0) {
        return fail("--queue must not be negative");
    }
    if (config.maxImages < 0) {
        return fail("--max-images must not be negative (0 = unlimited)");
    }
    if (config.chunkChars < 1) {
        return fail("--chunk-chars must be at least 1");
    }
    for (double v :
         {config.loadMs, config.latencyMs, config.perImageMs, config.perCharMs, config.jitterMs}) {
        if (v < 0) {
            return fail("times (--load-ms, --latency-ms, --per-image-ms, --per-char-ms, "
                        "--jitter-ms) must not be negative");
        }
    }
    if (config.context < 0) {
        return fail("--context must not be negative (0 = unlimited)");
    }
    if (!overflow.empty()) {
        if (overflow != "truncate" && overflow != "error") {
            return fail("--overflow \"" + overflow + "\": expected truncate or error");
        }
        config.overflowTruncates = overflow == "truncate";
    }
    if (config.tlsCert.empty() != config.tlsKey.empty()) {
        return fail("--tls-cert and --tls-key go together");
    }
    while (!config.pathPrefix.empty() && config.pathPrefix.back() == '/') {
        config.pathPrefix.pop_back();
    }
    if (!config.pathPrefix.empty() && config.pathPrefix.front() != '/') {
        config.pathPrefix.insert(0, "/");
    }
    if (models.empty()) {
        models.emplace_back("llava:7b-v1.6-mistral-q2_K=completion,vision");
    }
    try {
        for (const auto& m : models) {
            config.models.push_back(parseModelSpec(m));
        }
    } catch (const std::exception& e) {
        return fail(e.what());
    }
    for (const auto& t : tokensPerImage) {
        const auto eq = t.rfind('=');
        int value = 0;
        try {
            std::size_t used = 0;
            const std::string number = eq == std::string::npos ? t : t.substr(eq + 1);
            value = std::stoi(number, &used);
            if (used != number.size() || value < 1) {
                throw std::invalid_argument("bad");
            }
        } catch (const std::exception&) {
            return fail("--tokens-per-image \"" + t + "\": expected N or NAME=N, N >= 1");
        }
        if (eq == std::string::npos) {
            config.tokensPerImage = value;
            continue;
        }
        ModelSpec named;
        try {
            named = parseModelSpec(t.substr(0, eq));
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        auto it = std::find_if(config.models.begin(), config.models.end(),
                               [&](const ModelSpec& m) { return m.name == named.name; });
        if (it == config.models.end()) {
            return fail("--tokens-per-image \"" + t + "\": no --model " + named.name);
        }
        it->tokensPerImage = value;
    }
    for (const auto& name : lastImageOnly) {
        ModelSpec named;
        try {
            named = parseModelSpec(name);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        auto it = std::find_if(config.models.begin(), config.models.end(),
                               [&](const ModelSpec& m) { return m.name == named.name; });
        if (it == config.models.end()) {
            return fail("--last-image-only \"" + name + "\": no --model " + named.name);
        }
        it->lastImageOnly = true;
    }
    for (const auto& f : faults) {
        auto eq = f.find('=');
        if (eq == std::string::npos) {
            return fail("--fault \"" + f + "\": expected KIND=RATE");
        }
        auto kind = faultFromName(f.substr(0, eq));
        if (!kind) {
            return fail("--fault \"" + f +
                        "\": unknown kind (busy503, http500, drop, stall, prose, fence, invalid, "
                        "oversize, midstream)");
        }
        double rate = 0;
        try {
            std::size_t used = 0;
            rate = std::stod(f.substr(eq + 1), &used);
            if (used != f.size() - eq - 1) {
                throw std::invalid_argument("trailing characters");
            }
        } catch (const std::exception&) {
            return fail("--fault \"" + f + "\": RATE must be a number in 0..1");
        }
        if (!(rate >= 0 && rate <= 1)) {
            return fail("--fault \"" + f + "\": RATE must be in 0..1");
        }
        config.setFaultRate(*kind, rate);
    }
    config.seed = seed ? *seed : std::random_device{}();
    result.config = std::move(config);
    return result;
}

} // namespace dmsd::emulator
