// hostile-proxy: a fault-injecting reverse proxy in front of the Ollama
// emulator, for the fault matrix and the soak (docs/hostile.md).

#include <charconv>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "test/hostile/hostile_proxy.h"

namespace {

constexpr const char* kUsage =
    "usage: hostile-proxy --upstream-port PORT [--port 0] [--seed N] [--log FILE]\n"
    "                     [--fault KIND [--count N]] [--random-rate P] [--huge-bytes N]\n";

[[noreturn]] void usage(const std::string& problem) {
    std::cerr << "hostile-proxy: " << problem << '\n' << kUsage;
    std::exit(2);
}

long number(std::string_view text, std::string_view what) {
    long value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || value < 0) {
        usage(std::string(what) + " must be a number >= 0");
    }
    return value;
}

} // namespace

int main(int argc, char** argv) {
    using dmsd::hostile::ProxyOptions;
    ProxyOptions options;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--help") {
            std::cout << kUsage;
            return 0;
        }
        if (i + 1 >= argc) {
            usage(std::string(arg) + " needs a value");
        }
        const std::string_view value = argv[++i];
        if (arg == "--upstream-port") {
            options.upstreamPort = static_cast<std::uint16_t>(number(value, arg));
        } else if (arg == "--port") {
            options.port = static_cast<std::uint16_t>(number(value, arg));
        } else if (arg == "--seed") {
            options.seed = static_cast<std::uint32_t>(number(value, arg));
        } else if (arg == "--log") {
            options.logPath = value;
        } else if (arg == "--fault") {
            if (!dmsd::hostile::isFault(value)) {
                usage("unknown fault " + std::string(value));
            }
            options.fault = value;
            options.count = std::max(options.count, 1);
        } else if (arg == "--count") {
            options.count = static_cast<int>(number(value, arg));
        } else if (arg == "--random-rate") {
            options.randomRate = std::atof(std::string(value).c_str());
        } else if (arg == "--huge-bytes") {
            options.hugeBytes = static_cast<std::size_t>(number(value, arg));
        } else {
            usage("unknown option " + std::string(arg));
        }
    }
    if (options.upstreamPort == 0) {
        usage("--upstream-port is required");
    }
    try {
        boost::asio::io_context io;
        dmsd::hostile::HostileProxy proxy(io, options);
        const std::uint16_t port = proxy.listen();
        proxy.start();
        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
        std::cout << "listening on http://127.0.0.1:" << port << std::endl;
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "hostile-proxy: " << e.what() << '\n';
        return 2;
    }
}
