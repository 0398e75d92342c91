// Cost of the notifiers on the alert path, as seen by the caller (the daemon's
// event loop): CAN frame encoded and handed to the socket, journal entry
// composed and written, snapshot queued; plus the snapshot worker's write time.
// Prints figures; no pass/fail. Usage: bench_notify [events]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <linux/can.h>

#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "notify/can_notifier.h"
#include "notify/journal.h"
#include "notify/snapshots.h"
#include "test/support/temp_dir.h"

using namespace dmsd;
using Clock = std::chrono::steady_clock;

namespace {

struct Figures {
    std::vector<double> us;
    void add(Clock::duration d) {
        us.push_back(std::chrono::duration<double, std::micro>(d).count());
    }
    void print(const char* what) {
        std::sort(us.begin(), us.end());
        auto at = [&](double q) {
            return us[std::min(us.size() - 1, static_cast<std::size_t>(q * us.size()))];
        };
        std::printf("%-44s n=%-6zu p50=%8.2f us  p99=%8.2f us  max=%8.2f us\n", what, us.size(),
                    at(0.50), at(0.99), us.back());
    }
};

AlertEvent makeEvent(int i) {
    AlertEvent event;
    event.type = (i % 3 == 0)   ? AlertEvent::Type::Raised
                 : (i % 3 == 1) ? AlertEvent::Type::LevelChanged
                                : AlertEvent::Type::Cleared;
    event.kind = kAllAlertKinds[static_cast<std::size_t>(i) % kAlertKindCount];
    event.level =
        event.type == AlertEvent::Type::Cleared ? AlertLevel::Cleared : AlertLevel::Warning;
    event.confidence = 0.8;
    event.sequenceId = static_cast<std::uint64_t>(i);
    event.evidence = boost::json::parse(
                         R"({"face_state":{"state":"SLEEPY","eyes_closed":true,"confidence":0.8}})")
                         .as_object();
    return event;
}

} // namespace

int main(int argc, char** argv) {
    const int events = argc > 1 ? std::atoi(argv[1]) : 20000;
    std::printf("bench_notify (%s build), %d events per figure\n", DMSD_BUILD_TYPE, events);

    // CAN: onAlertEvent -> frame accepted by the socket (a local SEQPACKET pair
    // stands in for CAN_RAW; on a real bus the kernel path is similar in cost).
    {
        boost::asio::io_context io;
        Journal journal([](const JournalEntry&) {});
        int peer = -1;
        CanSettings settings;
        settings.enabled = true;
        settings.interface = "bench";
        settings.heartbeat = std::chrono::hours(1);
        CanNotifier notifier(io, settings, journal, CanNotifierTiming{}, [&](const std::string&) {
            int fds[2];
            ::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds);
            peer = fds[1];
            return CanOpenResult{UniqueFd(fds[0]), {}, {}};
        });
        notifier.start();
        Figures send;
        Figures endToEnd;
        std::vector<ActiveAlert> active{{AlertKind::Drowsiness, AlertLevel::Warning, 0.8, {}}};
        can_frame frame{};
        for (int i = 0; i < events; ++i) {
            const AlertEvent event = makeEvent(i);
            const auto t0 = Clock::now();
            notifier.onAlertEvent(event, active, FaceState::Sleepy);
            const auto t1 = Clock::now();
            while (::recv(peer, &frame, sizeof frame, MSG_DONTWAIT) != sizeof frame) {
            }
            const auto t2 = Clock::now();
            send.add(t1 - t0);
            endToEnd.add(t2 - t0);
        }
        send.print("CAN onAlertEvent (encode + send)");
        endToEnd.print("CAN event -> frame read by the peer");
        const CanStatus status = notifier.status();
        std::printf("  frames sent %llu, dropped %llu\n",
                    static_cast<unsigned long long>(status.framesSent),
                    static_cast<unsigned long long>(status.framesDropped));
        ::close(peer);
    }

    // Journal: compose only, and compose + write through dmsd::log to stderr
    // (redirected to /dev/null here; sd_journal_send costs a similar syscall).
    {
        Journal composeOnly([](const JournalEntry&) {});
        Figures compose;
        for (int i = 0; i < events; ++i) {
            const auto t0 = Clock::now();
            composeOnly.alert(makeEvent(i), {"factory-1", std::chrono::milliseconds(812), {}});
            compose.add(Clock::now() - t0);
        }
        compose.print("journal alert entry (compose)");

        std::fflush(stderr);
        const int saved = ::dup(STDERR_FILENO);
        std::FILE* devnull = std::fopen("/dev/null", "w");
        ::dup2(::fileno(devnull), STDERR_FILENO);
        log::configure(log::Backend::Stderr);
        Journal toLog;
        Figures write;
        for (int i = 0; i < events; ++i) {
            const auto t0 = Clock::now();
            toLog.alert(makeEvent(i), {"factory-1", std::chrono::milliseconds(812), {}});
            write.add(Clock::now() - t0);
        }
        Figures suppressed;
        for (int i = 0; i < events; ++i) {
            const auto t0 = Clock::now();
            toLog.cameraFault("v4l2:/dev/video0", "no frames");
            suppressed.add(Clock::now() - t0);
        }
        std::fflush(stderr);
        ::dup2(saved, STDERR_FILENO);
        ::close(saved);
        std::fclose(devnull);
        write.print("journal alert entry (compose + stderr write)");
        suppressed.print("journal repeated fault (rate-limited)");
    }

    // Snapshots: the caller's cost (submit) and the worker's time per snapshot
    // of 4 frames of 30 kB each, fsync'ed, in $TMPDIR.
    {
        test::TempDir dir("dmsd-bench-snap");
        Journal journal([](const JournalEntry&) {});
        SnapshotSettings settings;
        settings.dir = dir.path().string();
        settings.maxFiles = 50;
        const int snapshots = std::min(events, 200);
        auto sequence = std::make_shared<EncodedSequence>();
        for (int i = 0; i < 4; ++i) {
            auto bytes = std::make_shared<std::vector<unsigned char>>(30000, 0x55);
            (*bytes)[0] = 0xFF;
            (*bytes)[1] = 0xD8;
            sequence->images.push_back(JpegImage{bytes, 640, 480});
            sequence->frames.push_back(SampledFrameInfo{});
        }
        Figures submit;
        const auto start = Clock::now();
        {
            SnapshotWriter writer(settings, journal, static_cast<std::size_t>(snapshots));
            for (int i = 0; i < snapshots; ++i) {
                SnapshotRequest request;
                request.event = makeEvent(0);
                request.sequence = sequence;
                request.configVersion = "factory-1";
                const auto t0 = Clock::now();
                writer.submit(std::move(request));
                submit.add(Clock::now() - t0);
            }
            writer.waitIdle(std::chrono::minutes(5));
            const auto elapsed = std::chrono::duration<double, std::milli>(Clock::now() - start);
            submit.print("snapshot submit (caller)");
            const SnapshotStats stats = writer.stats();
            std::printf("snapshot worker: %llu written, %llu failed, %.2f ms per snapshot "
                        "(4 x 30 kB, fsync, retention 50)\n",
                        static_cast<unsigned long long>(stats.written),
                        static_cast<unsigned long long>(stats.failed),
                        elapsed.count() /
                            std::max<double>(1.0, static_cast<double>(stats.written)));
        }
    }
    return 0;
}
