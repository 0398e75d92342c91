#pragma once

/// \file
/// Sends the alert and heartbeat frames of docs/interfaces.md section 5 on a SocketCAN
/// raw socket (classic CAN, standard ids), non-blocking, on the daemon's asio
/// io_context. Link faults (missing interface, full transmit queue, bus-off,
/// interface gone) are states, not exceptions: reported through the journal
/// (rate-limited), shown in status(), and retried; the daemon is never blocked.
///
/// Every member function must be called on the io_context's thread.

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "alerts/alert_types.h"
#include "base/unique_fd.h"
#include "llm/answers.h"
#include "notify/can_frame.h"
#include "notify/journal.h"
#include "notify/settings.h"

namespace dmsd {

/// Result of opening the CAN socket: a descriptor, or the error with a message
/// naming the interface and what to do.
struct CanOpenResult {
    UniqueFd fd;
    std::error_code error;
    std::string message;
};

/// Opens a non-blocking CAN_RAW socket bound to \a interface that receives no
/// data frames, only error frames (bus-off, controller problems, restarts).
CanOpenResult openSocketCan(const std::string& interface);

/// For tests and benchmarks on machines without AF_CAN: a non-blocking
/// AF_UNIX SOCK_SEQPACKET socket connected to \a path, to which the notifier
/// writes exactly what it would write to CAN_RAW (one `struct can_frame` per
/// packet). Not used by dmsd; the test-only dmsd-testbed (--can-socket) hands
/// it to the daemon through DaemonSeams::canOpener.
CanOpenResult openUnixCanStandIn(const std::filesystem::path& path);

/// Link state of the notifier.
enum class CanLinkState : std::uint8_t {
    Disabled,  ///< notify.can.enabled is false
    Down,      ///< socket not open (interface missing or gone); reopen pending
    Up,        ///< frames are being sent
    Congested, ///< transmit queue full (EAGAIN/ENOBUFS): frames wait, retried
    BusOff,    ///< controller bus-off or interface down (ENETDOWN); retried
};

/// "disabled", "down", "up", "congested", "bus-off".
std::string_view canLinkStateName(CanLinkState state);

/// What status() reports (for GetStatus and tests).
struct CanStatus {
    CanLinkState state = CanLinkState::Disabled;
    std::string interface;
    std::string lastError; ///< empty when none since the last recovery
    std::uint64_t framesSent = 0;
    std::uint64_t framesDropped = 0; ///< not sent: link down, or queue overflow
    std::uint64_t sendErrors = 0;    ///< failed send attempts of any kind
    std::uint64_t openFailures = 0;
    std::uint64_t errorFrames = 0; ///< CAN error frames received from the controller
    std::size_t queued = 0;        ///< frames waiting for a congested link
};

/// Tuning that is not configuration (tests shorten it).
struct CanNotifierTiming {
    std::chrono::milliseconds reopenMin{500};      ///< first reopen delay, doubled per failure
    std::chrono::milliseconds reopenMax{30000};    ///< cap of the reopen delay
    std::chrono::milliseconds congestionRetry{20}; ///< retry after ENOBUFS (no writability event)
    std::size_t maxQueued = 32;                    ///< oldest frames dropped beyond this
};

/// The CAN notifier. Create, start(), then feed it events.
class CanNotifier {
public:
    /// Opens the socket for an interface; replaceable so tests can hand in a socketpair.
    using Opener = std::function<CanOpenResult(const std::string& interface)>;

    CanNotifier(boost::asio::io_context& io, CanSettings settings, Journal& journal,
                CanNotifierTiming timing = CanNotifierTiming{}, Opener opener = openSocketCan);
    ~CanNotifier();
    CanNotifier(const CanNotifier&) = delete;
    CanNotifier& operator=(const CanNotifier&) = delete;

    /// Opens the socket (or schedules retries) and starts the heartbeat. No-op when disabled.
    void start();
    /// Stops timers and closes the socket. Frames not yet sent are dropped.
    void stop();

    /// An alert transition: sends the alert frame for \a event at once. \a active is the
    /// set of alerts raised after the event; \a face the last face state.
    void onAlertEvent(const AlertEvent& event, const std::vector<ActiveAlert>& active,
                      FaceState face);
    /// Latest face state (carried in byte 3 of the repeated alert frames).
    void setFaceState(FaceState face);
    /// Health bits of the heartbeat frame.
    void setHealth(bool cameraOk, bool modelServerOk, bool degraded);

    CanStatus status() const;

    /// The frame the heartbeat tick repeats while alerts are active: the most severe
    /// active alert (highest level, then most recently raised, then lowest kind code).
    static std::optional<ActiveAlert> repeatedAlert(const std::vector<ActiveAlert>& active);

private:
    void open();
    void scheduleReopen();
    void closeSocket();
    void onOpened();
    void armHeartbeat();
    void onHeartbeat();
    void sendHeartbeat();
    void sendAlertFrame(std::optional<AlertKind> kind, AlertLevel level, double confidence);
    void enqueue(const CanFrame& frame);
    void flush();
    void waitWritable();
    void waitReadable();
    void onReadable();
    void linkFault(CanLinkState state, const std::string& reason);
    void linkUp();

    boost::asio::io_context& io_;
    CanSettings settings_;
    Journal& journal_;
    CanNotifierTiming timing_;
    Opener opener_;

    std::optional<boost::asio::posix::stream_descriptor> socket_;
    std::uint64_t socketGeneration_ = 0;
    boost::asio::steady_timer heartbeatTimer_;
    boost::asio::steady_timer reopenTimer_;
    boost::asio::steady_timer retryTimer_;
    std::chrono::steady_clock::time_point nextHeartbeat_{};
    std::chrono::milliseconds reopenDelay_{0};
    std::chrono::steady_clock::time_point congestedSince_{};
    bool running_ = false;
    bool writeWaitPending_ = false;
    bool retryPending_ = false;
    bool everUp_ = false;
    bool faultReported_ = false;

    std::deque<CanFrame> queue_;
    std::vector<ActiveAlert> active_;
    FaceState face_ = FaceState::Unknown;
    bool cameraOk_ = false;
    bool modelServerOk_ = false;
    bool degraded_ = false;
    std::uint8_t alertCounter_ = 0;
    std::uint8_t heartbeatCounter_ = 0;
    CanStatus status_;
    /// Handlers hold a weak copy: after destruction they do nothing.
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
};

} // namespace dmsd
