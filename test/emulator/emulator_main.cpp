// ollama-emulator: an Ollama server for tests and benchmarks (docs/emulator.md).

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "test/emulator/emulator_server.h"

int main(int argc, char** argv) {
    using namespace dmsd::emulator;
    CommandLine cl = parseCommandLine(argc, argv);
    if (cl.help) {
        std::cout << cl.text;
        return 0;
    }
    if (!cl.config) {
        std::cerr << "ollama-emulator: " << cl.text << '\n';
        return 2;
    }
    try {
        AnswerScript script;
        if (!cl.config->scriptPath.empty()) {
            script = AnswerScript::fromFile(cl.config->scriptPath);
        }
        const std::string host = cl.config->host;
        const char* scheme = cl.config->tlsCert.empty() ? "http" : "https";
        boost::asio::io_context io;
        EmulatorServer server(io, std::move(*cl.config), std::move(script));
        const std::uint16_t port = server.listen();
        server.start();

        boost::asio::signal_set signals(io, SIGINT, SIGTERM);
        signals.async_wait([&](const boost::system::error_code& ec, int) {
            if (ec) {
                return;
            }
            server.shutdown();
            // Backstop: requests unwind when their sockets close; should one not,
            // still exit (log lines are flushed one by one, nothing is lost).
            std::thread([] {
                std::this_thread::sleep_for(std::chrono::seconds(3));
                std::fflush(nullptr);
                std::_Exit(0);
            }).detach();
        });

        const bool v6 = host.find(':') != std::string::npos;
        std::cout << "listening on " << scheme << "://" << (v6 ? "[" + host + "]" : host) << ':'
                  << port << std::endl;
        io.run();
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "ollama-emulator: " << e.what() << '\n';
        return 2;
    }
}
