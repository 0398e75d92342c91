#pragma once

/// \file
/// The two time bases of dmsd: the steady clock for everything measured
/// (latencies, timeouts, the alert engine in `run`), and CLOCK_REALTIME
/// microseconds for every timestamp shown outside (D-Bus, sidecars).

#include <chrono>
#include <cstdint>
#include <ctime>

namespace dmsd {

using SteadyTime = std::chrono::steady_clock::time_point;

/// CLOCK_REALTIME now, in microseconds (the time base of every D-Bus timestamp).
inline std::uint64_t realtimeNowUs() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

} // namespace dmsd
