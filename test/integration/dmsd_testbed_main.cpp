// dmsd-testbed: `dmsd run` with the seams the integration tests and benchmarks
// need (daemon/daemon.h, DaemonSeams), so that the shipped dmsd reads no test
// hook. Built under test/, never installed.
//
//   dmsd-testbed run [--config PATH] [--state-dir DIR]      as `dmsd run`, plus:
//       [--probation-ms N]            the rollback window (30 s in dmsd)
//       [--can-socket PATH]           CAN frames to the AF_UNIX SOCK_SEQPACKET
//                                     socket listening at PATH (openUnixCanStandIn)
//                                     instead of CAN_RAW, for machines without AF_CAN
//       [--stall-sampler-after N]     the sampler thread stops after N frames, so
//                                     the watchdog must send WATCHDOG=trigger
#include <atomic>
#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "base/allocator.h"
#include "base/log.h"
#include "daemon/daemon.h"

namespace {

constexpr int kExitUsage = 2;

/// The camera as the sampler thread sees it, until \a after frames; then the
/// thread blocks (stamps nothing) until the daemon stops it.
class StallingSource final : public dmsd::FrameSource {
public:
    StallingSource(dmsd::FrameSource& camera, const std::atomic<bool>& stop, std::uint64_t after)
        : camera_(camera), stop_(stop), after_(after) {}

    dmsd::PullResult nextFrame(std::chrono::milliseconds timeout) override {
        if (delivered_ >= after_) {
            dmsd::log::warning("testbed: the sampler thread stalls now (after {} frames)",
                               delivered_);
            stop_.wait(false);
            return {dmsd::PullResult::Status::Ended, nullptr};
        }
        dmsd::PullResult pulled = camera_.nextFrame(timeout);
        if (pulled.status == dmsd::PullResult::Status::Frame) {
            ++delivered_;
        }
        return pulled;
    }

private:
    dmsd::FrameSource& camera_;
    const std::atomic<bool>& stop_;
    std::uint64_t after_;
    std::uint64_t delivered_ = 0;
};

void usage(std::FILE* out) {
    fmt::print(out, "usage: dmsd-testbed run [--config PATH] [--state-dir DIR] [--probation-ms N]\n"
                    "                        [--can-socket PATH] [--stall-sampler-after N]\n");
}

std::optional<std::uint64_t> number(std::string_view text) {
    std::uint64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

} // namespace

int main(int argc, char** argv) {
    dmsd::tuneAllocator();
    if (argc < 2 || std::string_view(argv[1]) != "run") {
        usage(stderr);
        return kExitUsage;
    }
    dmsd::DaemonOptions options;
    dmsd::DaemonSeams seams;
    for (int i = 2; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) {
            fmt::print(stderr, "dmsd-testbed: {} needs a value\n", flag);
            usage(stderr);
            return kExitUsage;
        }
        const std::string_view value = argv[++i];
        if (flag == "--config") {
            options.configPath = value;
        } else if (flag == "--state-dir") {
            options.stateDir = value;
        } else if (flag == "--probation-ms" && number(value)) {
            options.probation = std::chrono::milliseconds(*number(value));
        } else if (flag == "--can-socket") {
            seams.canOpener = [path = std::filesystem::path(value)](const std::string&) {
                return dmsd::openUnixCanStandIn(path);
            };
        } else if (flag == "--stall-sampler-after" && number(value)) {
            const std::uint64_t after = *number(value);
            seams.wrapFrameSource = [after](dmsd::FrameSource& camera,
                                            const std::atomic<bool>& stop) {
                return std::make_unique<StallingSource>(camera, stop, after);
            };
        } else {
            fmt::print(stderr, "dmsd-testbed: bad option {} {}\n", flag, value);
            usage(stderr);
            return kExitUsage;
        }
    }
    return dmsd::runService(options, std::move(seams));
}
