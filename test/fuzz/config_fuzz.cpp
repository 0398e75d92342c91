// libFuzzer target for the configuration loader: the input is one to three
// YAML files separated by NUL bytes, merged in order. The loader must never
// crash, hang or leak, and must keep its promises: a result has a config
// exactly when it has no errors, and the effective configuration it prints is
// itself a valid configuration with the same content.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    std::vector<dmsd::ConfigSource> sources;
    std::size_t start = 0;
    while (sources.size() < 3) {
        const std::size_t end = input.find('\0', start);
        sources.push_back({"fuzz" + std::to_string(sources.size()) + ".yaml",
                           std::string(input.substr(start, end - start))});
        if (end == std::string_view::npos) {
            break;
        }
        start = end + 1;
    }

    const dmsd::ConfigLoad result = dmsd::loadConfigSources(sources);
    if (result.config.has_value() == !result.errors.empty()) {
        std::abort();
    }
    for (const dmsd::ConfigError& error : result.errors) {
        if (error.format().empty() || error.message.empty()) {
            std::abort();
        }
    }
    if (result.config) {
        const std::string effective = dmsd::effectiveConfigJson(*result.config);
        const dmsd::ConfigLoad again = dmsd::loadConfigSources({{"effective.yaml", effective}});
        if (!again.config || dmsd::effectiveConfigJson(*again.config) != effective ||
            !dmsd::changedParts(*result.config, *again.config).empty()) {
            std::abort();
        }
        (void)dmsd::summary(*result.config);
    }
    return 0;
}
