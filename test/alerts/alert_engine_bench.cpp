// Cost of the decision engine per input, printed as figures (not a pass/fail test).
// Usage: bench_alerts [SEQUENCES]   (default 200000)

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "alerts/alert_engine.h"
#include "test/alerts/answers_fixtures.h"

using namespace dmsd;
using namespace dmsd::test;

int main(int argc, char** argv) {
    const long count = argc > 1 ? std::atol(argv[1]) : 200000;
    if (count <= 0) {
        std::fprintf(stderr, "bench_alerts: SEQUENCES must be a positive number, got '%s'\n",
                     argv[1]);
        return 2;
    }
    // A mix that keeps the engine busy: drowsy stretches (raise, escalate), calm ones
    // (clear), failures and carried windows, a sequence every 2 s of engine time.
    const SequenceAnswers inputs[] = {sleepy(), sleepy(), sleepy(),   sleepy(), sleepy(), sleepy(),
                                      calm(),   calm(),   calm(),     calm(),   calm(),   calm(),
                                      calm(),   calm(),   calm(),     calm(),   calm(),   calm(),
                                      calm(),   calm(),   allFailed()};
    constexpr long kInputs = sizeof(inputs) / sizeof(inputs[0]);
    AlertEngine engine(AlertsSettings{});
    std::vector<double> nanos;
    nanos.reserve(static_cast<std::size_t>(count));
    std::size_t events = 0;
    using Clock = std::chrono::steady_clock;
    for (long i = 0; i < count; ++i) {
        const EngineTime t{i * 2000};
        const auto start = Clock::now();
        std::vector<AlertEvent> out =
            i % 7 == 3 ? engine.carryForward(t)
                       : engine.observe(t, static_cast<std::uint64_t>(i + 1), inputs[i % kInputs]);
        const auto stop = Clock::now();
        events += out.size();
        nanos.push_back(std::chrono::duration<double, std::nano>(stop - start).count());
    }
    std::sort(nanos.begin(), nanos.end());
    auto pct = [&](double p) {
        return nanos[static_cast<std::size_t>(p * static_cast<double>(nanos.size() - 1))];
    };
    std::printf("alert engine: %ld inputs, %zu events\n", count, events);
    std::printf("per input: p50 %.1f us, p99 %.1f us, max %.1f us\n", pct(0.50) / 1000.0,
                pct(0.99) / 1000.0, nanos.back() / 1000.0);
    return events > 0 ? 0 : 1;
}
