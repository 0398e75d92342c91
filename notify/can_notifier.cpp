#include "notify/can_notifier.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <tuple>

#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>

#include <fmt/format.h>

#include "base/log.h"

namespace dmsd {
namespace {

std::error_code lastError() {
    return {errno, std::generic_category()};
}

CanOpenResult openFailure(std::error_code error, std::string message) {
    return CanOpenResult{UniqueFd{}, error, std::move(message)};
}

} // namespace

std::string_view canLinkStateName(CanLinkState state) {
    switch (state) {
    case CanLinkState::Disabled:
        return "disabled";
    case CanLinkState::Down:
        return "down";
    case CanLinkState::Up:
        return "up";
    case CanLinkState::Congested:
        return "congested";
    case CanLinkState::BusOff:
        return "bus-off";
    }
    return "down";
}

CanOpenResult openSocketCan(const std::string& interface) {
    if (interface.empty() || interface.size() >= IFNAMSIZ) {
        return openFailure(std::make_error_code(std::errc::invalid_argument),
                           fmt::format("notify.can.interface '{}' is not a valid interface name "
                                       "(1 to {} characters)",
                                       interface, IFNAMSIZ - 1));
    }
    UniqueFd fd(::socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW));
    if (!fd) {
        auto error = lastError();
        return openFailure(error,
                           fmt::format("cannot create a CAN socket for {}: {} (kernel without "
                                       "SocketCAN? load the can and can_raw modules)",
                                       interface, error.message()));
    }
    const unsigned index = ::if_nametoindex(interface.c_str());
    if (index == 0) {
        auto error = lastError();
        return openFailure(error, fmt::format("CAN interface {} not found ({}); check `ip link "
                                              "show {}` and notify.can.interface",
                                              interface, error.message(), interface));
    }
    // Receive no data frames (we only send) but the controller's error frames,
    // which is how bus-off and restarts become visible.
    if (::setsockopt(fd.get(), SOL_CAN_RAW, CAN_RAW_FILTER, nullptr, 0) != 0) {
        auto error = lastError();
        return openFailure(error, fmt::format("CAN {}: cannot set the receive filter: {}",
                                              interface, error.message()));
    }
    can_err_mask_t errorMask =
        CAN_ERR_BUSOFF | CAN_ERR_CRTL | CAN_ERR_RESTARTED | CAN_ERR_TX_TIMEOUT;
    if (::setsockopt(fd.get(), SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &errorMask, sizeof errorMask) !=
        0) {
        auto error = lastError();
        return openFailure(error, fmt::format("CAN {}: cannot set the error filter: {}", interface,
                                              error.message()));
    }
    sockaddr_can address{};
    address.can_family = AF_CAN;
    address.can_ifindex = static_cast<int>(index);
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        auto error = lastError();
        return openFailure(error, fmt::format("cannot bind to CAN interface {}: {}; is it a CAN "
                                              "interface (`ip -details link show {}`)?",
                                              interface, error.message(), interface));
    }
    return CanOpenResult{std::move(fd), {}, {}};
}

CanOpenResult openUnixCanStandIn(const std::filesystem::path& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd) {
        auto error = lastError();
        return openFailure(error, fmt::format("cannot create a unix socket for the CAN stand-in "
                                              "{}: {}",
                                              path.string(), error.message()));
    }
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string name = path.string();
    if (name.empty() || name.size() >= sizeof address.sun_path) {
        return openFailure(std::make_error_code(std::errc::filename_too_long),
                           fmt::format("CAN stand-in socket path '{}' is empty or too long", name));
    }
    std::memcpy(address.sun_path, name.c_str(), name.size() + 1);
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        auto error = lastError();
        return openFailure(
            error, fmt::format("cannot connect to the CAN stand-in {}: {}", name, error.message()));
    }
    return CanOpenResult{std::move(fd), {}, {}};
}

CanNotifier::CanNotifier(boost::asio::io_context& io, CanSettings settings, Journal& journal,
                         CanNotifierTiming timing, Opener opener)
    : io_(io), settings_(std::move(settings)), journal_(journal), timing_(timing),
      opener_(std::move(opener)), heartbeatTimer_(io), reopenTimer_(io), retryTimer_(io) {
    status_.interface = settings_.interface;
    status_.state = settings_.enabled ? CanLinkState::Down : CanLinkState::Disabled;
}

CanNotifier::~CanNotifier() {
    stop();
}

void CanNotifier::start() {
    if (!settings_.enabled || running_) {
        return;
    }
    if (settings_.alertId > CAN_SFF_MASK || settings_.heartbeatId > CAN_SFF_MASK) {
        linkFault(CanLinkState::Down,
                  fmt::format("notify.can.alert_id 0x{:X} / heartbeat_id 0x{:X}: both must be "
                              "11-bit standard ids (at most 0x7FF); CAN disabled",
                              settings_.alertId, settings_.heartbeatId));
        return;
    }
    running_ = true;
    nextHeartbeat_ = std::chrono::steady_clock::now();
    open();
    armHeartbeat();
}

void CanNotifier::stop() {
    running_ = false;
    heartbeatTimer_.cancel();
    reopenTimer_.cancel();
    closeSocket();
}

void CanNotifier::open() {
    CanOpenResult result = opener_(settings_.interface);
    if (!result.fd) {
        ++status_.openFailures;
        linkFault(CanLinkState::Down,
                  result.message.empty() ? result.error.message() : result.message);
        scheduleReopen();
        return;
    }
    boost::system::error_code ec;
    socket_.emplace(io_);
    socket_->assign(result.fd.release(), ec);
    if (ec) {
        socket_.reset();
        ++status_.openFailures;
        linkFault(CanLinkState::Down, fmt::format("CAN {}: cannot watch the socket: {}",
                                                  settings_.interface, ec.message()));
        scheduleReopen();
        return;
    }
    ++socketGeneration_;
    onOpened();
}

void CanNotifier::onOpened() {
    reopenDelay_ = std::chrono::milliseconds{0};
    linkUp();
    waitReadable();
    // The receivers learn the current state at once instead of a heartbeat later.
    sendHeartbeat();
    if (auto top = repeatedAlert(active_)) {
        sendAlertFrame(top->kind, top->level, top->confidence);
    }
}

void CanNotifier::scheduleReopen() {
    if (!running_) {
        return;
    }
    reopenDelay_ = reopenDelay_.count() == 0 ? timing_.reopenMin
                                             : std::min(reopenDelay_ * 2, timing_.reopenMax);
    reopenTimer_.expires_after(reopenDelay_);
    reopenTimer_.async_wait(
        [this, weak = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
            if (weak.expired() || ec || !running_ || socket_) {
                return;
            }
            open();
        });
}

void CanNotifier::closeSocket() {
    if (socket_) {
        ++socketGeneration_;
        boost::system::error_code ignored;
        socket_->close(ignored);
        socket_.reset();
    }
    writeWaitPending_ = false;
    retryPending_ = false;
    retryTimer_.cancel();
    status_.framesDropped += queue_.size();
    queue_.clear();
}

void CanNotifier::armHeartbeat() {
    if (!running_) {
        return;
    }
    const auto period = std::max(settings_.heartbeat, std::chrono::milliseconds{1});
    nextHeartbeat_ += period;
    const auto now = std::chrono::steady_clock::now();
    if (nextHeartbeat_ < now) {
        nextHeartbeat_ = now + period; // we fell behind (suspend): resynchronise, no burst
    }
    heartbeatTimer_.expires_at(nextHeartbeat_);
    heartbeatTimer_.async_wait(
        [this, weak = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
            if (weak.expired() || ec || !running_) {
                return;
            }
            onHeartbeat();
        });
}

void CanNotifier::onHeartbeat() {
    if (status_.state == CanLinkState::Congested && !faultReported_ &&
        std::chrono::steady_clock::now() - congestedSince_ >= settings_.heartbeat) {
        // Congested for a whole period: now it is worth a technician's attention.
        linkFault(CanLinkState::Congested,
                  fmt::format("transmit queue of {} full for more than {} ms (bus overloaded or "
                              "no other node acknowledging?)",
                              settings_.interface, settings_.heartbeat.count()));
    }
    sendHeartbeat();
    if (auto top = repeatedAlert(active_)) {
        sendAlertFrame(top->kind, top->level, top->confidence);
    }
    armHeartbeat();
}

void CanNotifier::sendHeartbeat() {
    if (!socket_) {
        ++status_.framesDropped;
        return;
    }
    HeartbeatFrameFields fields;
    fields.cameraOk = cameraOk_;
    fields.modelServerOk = modelServerOk_;
    fields.degraded = degraded_;
    fields.activeMask = activeMask(active_);
    fields.counter = heartbeatCounter_;
    heartbeatCounter_ = static_cast<std::uint8_t>((heartbeatCounter_ + 1) & 0x0F);
    enqueue(CanFrame{settings_.heartbeatId, encodeHeartbeatFrame(fields)});
}

void CanNotifier::sendAlertFrame(std::optional<AlertKind> kind, AlertLevel level,
                                 double confidence) {
    if (!socket_) {
        ++status_.framesDropped;
        return;
    }
    AlertFrameFields fields;
    fields.kind = kind;
    fields.level = level;
    fields.confidence = confidencePercent(confidence);
    fields.face = face_;
    fields.activeMask = activeMask(active_);
    fields.counter = alertCounter_;
    alertCounter_ = static_cast<std::uint8_t>((alertCounter_ + 1) & 0x0F);
    enqueue(CanFrame{settings_.alertId, encodeAlertFrame(fields)});
}

void CanNotifier::enqueue(const CanFrame& frame) {
    queue_.push_back(frame);
    while (queue_.size() > std::max<std::size_t>(timing_.maxQueued, 1)) {
        queue_.pop_front();
        ++status_.framesDropped;
    }
    if (!writeWaitPending_ && !retryPending_) {
        flush();
    }
}

void CanNotifier::flush() {
    while (socket_ && !queue_.empty()) {
        const CanFrame& next = queue_.front();
        can_frame frame{};
        frame.can_id = next.id & CAN_SFF_MASK;
        frame.len = static_cast<__u8>(next.data.size());
        std::memcpy(frame.data, next.data.data(), next.data.size());
        const ssize_t sent =
            ::send(socket_->native_handle(), &frame, sizeof frame, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent == static_cast<ssize_t>(sizeof frame)) {
            queue_.pop_front();
            ++status_.framesSent;
            if (status_.state != CanLinkState::Up) {
                linkUp();
            }
            continue;
        }
        const int error = sent < 0 ? errno : EIO;
        if (error == EINTR) {
            continue;
        }
        ++status_.sendErrors;
        if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) {
            // Full transmit queue: the frame waits (bounded queue), reported only if it lasts.
            if (status_.state == CanLinkState::Up) {
                status_.state = CanLinkState::Congested;
                congestedSince_ = std::chrono::steady_clock::now();
                status_.lastError = fmt::format("transmit queue of {} full ({})",
                                                settings_.interface, std::strerror(error));
            }
            if (error == ENOBUFS) {
                // SocketCAN reports a full qdisc with ENOBUFS but poll() still says
                // writable, so only a timer helps here.
                retryPending_ = true;
                retryTimer_.expires_after(timing_.congestionRetry);
                retryTimer_.async_wait([this, weak = std::weak_ptr<int>(alive_),
                                        gen = socketGeneration_](boost::system::error_code ec) {
                    if (weak.expired() || ec || gen != socketGeneration_) {
                        return;
                    }
                    retryPending_ = false;
                    flush();
                });
            } else {
                waitWritable();
            }
            return;
        }
        status_.framesDropped += queue_.size();
        queue_.clear();
        if (error == ENETDOWN) {
            // Bus-off or link set down: the socket stays valid and sending resumes when
            // the controller restarts, so keep it and try again at the next heartbeat.
            linkFault(CanLinkState::BusOff,
                      fmt::format("{} is down or bus-off (ENETDOWN); check `ip -details link "
                                  "show {}` (restart-ms)",
                                  settings_.interface, settings_.interface));
            return;
        }
        linkFault(CanLinkState::Down, fmt::format("sending on {} failed: {}; reopening",
                                                  settings_.interface, std::strerror(error)));
        closeSocket();
        scheduleReopen();
        return;
    }
}

void CanNotifier::waitWritable() {
    writeWaitPending_ = true;
    socket_->async_wait(boost::asio::posix::stream_descriptor::wait_write,
                        [this, weak = std::weak_ptr<int>(alive_),
                         gen = socketGeneration_](boost::system::error_code ec) {
                            if (weak.expired() || gen != socketGeneration_) {
                                return;
                            }
                            writeWaitPending_ = false;
                            if (!ec) {
                                flush();
                            }
                        });
}

void CanNotifier::waitReadable() {
    socket_->async_wait(boost::asio::posix::stream_descriptor::wait_read,
                        [this, weak = std::weak_ptr<int>(alive_),
                         gen = socketGeneration_](boost::system::error_code ec) {
                            if (weak.expired() || ec || gen != socketGeneration_) {
                                return;
                            }
                            onReadable();
                        });
}

void CanNotifier::onReadable() {
    for (;;) {
        can_frame frame{};
        const ssize_t got = ::recv(socket_->native_handle(), &frame, sizeof frame, MSG_DONTWAIT);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        }
        if (got <= 0) {
            const std::string reason =
                got == 0 ? std::string("socket closed") : std::string(std::strerror(errno));
            status_.framesDropped += queue_.size();
            queue_.clear();
            linkFault(CanLinkState::Down,
                      fmt::format("CAN {} lost: {}; reopening", settings_.interface, reason));
            closeSocket();
            scheduleReopen();
            return;
        }
        if (got != static_cast<ssize_t>(sizeof frame) || (frame.can_id & CAN_ERR_FLAG) == 0) {
            continue;
        }
        ++status_.errorFrames;
        if ((frame.can_id & CAN_ERR_BUSOFF) != 0) {
            linkFault(CanLinkState::BusOff,
                      fmt::format("controller of {} is bus-off; frames are dropped until it "
                                  "restarts (`ip link set {} type can restart-ms 100`)",
                                  settings_.interface, settings_.interface));
        } else if ((frame.can_id & CAN_ERR_RESTARTED) != 0) {
            if (status_.state == CanLinkState::BusOff) {
                linkUp();
            }
        } else {
            log::debug("CAN {}: error frame 0x{:08X} (controller 0x{:02X})", settings_.interface,
                       frame.can_id, frame.data[1]);
        }
    }
    waitReadable();
}

void CanNotifier::linkFault(CanLinkState state, const std::string& reason) {
    status_.state = state;
    status_.lastError = reason;
    faultReported_ = true;
    journal_.canFault(settings_.interface, reason);
}

void CanNotifier::linkUp() {
    status_.state = CanLinkState::Up;
    status_.lastError.clear();
    if (faultReported_) {
        faultReported_ = false;
        journal_.canRecovered(settings_.interface);
    } else if (!everUp_) {
        log::info("CAN notifier sending on {} (alert id 0x{:03X}, heartbeat id 0x{:03X})",
                  settings_.interface, settings_.alertId, settings_.heartbeatId);
    }
    everUp_ = true;
}

void CanNotifier::onAlertEvent(const AlertEvent& event, const std::vector<ActiveAlert>& active,
                               FaceState face) {
    active_ = active;
    face_ = face;
    if (!running_) {
        return;
    }
    sendAlertFrame(event.kind,
                   event.type == AlertEvent::Type::Cleared ? AlertLevel::Cleared : event.level,
                   event.confidence);
}

void CanNotifier::setFaceState(FaceState face) {
    face_ = face;
}

void CanNotifier::setHealth(bool cameraOk, bool modelServerOk, bool degraded) {
    cameraOk_ = cameraOk;
    modelServerOk_ = modelServerOk;
    degraded_ = degraded;
}

CanStatus CanNotifier::status() const {
    CanStatus status = status_;
    status.queued = queue_.size();
    return status;
}

std::optional<ActiveAlert> CanNotifier::repeatedAlert(const std::vector<ActiveAlert>& active) {
    if (active.empty()) {
        return std::nullopt;
    }
    return *std::max_element(active.begin(), active.end(),
                             [](const ActiveAlert& a, const ActiveAlert& b) {
                                 // "less severe than": lower level, older, higher code.
                                 return std::tuple(a.level, a.since, -static_cast<int>(a.kind)) <
                                        std::tuple(b.level, b.since, -static_cast<int>(b.kind));
                             });
}

} // namespace dmsd
