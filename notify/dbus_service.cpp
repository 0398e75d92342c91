#include "notify/dbus_service.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <optional>
#include <poll.h>
#include <time.h>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <fmt/format.h>
#include <systemd/sd-bus.h>

#include "base/json.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/unique_fd.h"

namespace dmsd {

namespace {

namespace asio = boost::asio;

// One owner per sd-bus handle. The bus owner only closes: sd_bus_flush() waits
// without a deadline, so the service drains the write queue itself, bounded,
// before letting go of the connection (Impl::teardown).
struct BusRelease {
    void operator()(sd_bus* bus) const { sd_bus_close_unref(bus); }
};
using BusPtr = std::unique_ptr<sd_bus, BusRelease>;

struct SlotRelease {
    void operator()(sd_bus_slot* slot) const { sd_bus_slot_unref(slot); }
};
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotRelease>;

struct MessageRelease {
    void operator()(sd_bus_message* message) const { sd_bus_message_unref(message); }
};
using MessagePtr = std::unique_ptr<sd_bus_message, MessageRelease>;

// Null-terminated copies of the contract names, for the C API.
const std::string kName(kDbusServiceName);
const std::string kPath(kDbusObjectPath);
const std::string kInterface(kDbusInterface);
const std::string kErrorReloadFailed(kDbusErrorReloadFailed);
const std::string kErrorFailed(kDbusErrorFailed);

// sd_bus_process() is called at most this often in a row before the loop gets
// a turn, so a flood of calls cannot starve the camera and the model client.
constexpr int kMaxProcessBatch = 64;

std::string errnoText(int negativeErrno) {
    return std::strerror(-negativeErrno);
}

std::uint64_t monotonicNowUs() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
           static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

std::string describeBus(const std::string& bus) {
    if (bus == "system") {
        return "the system bus";
    }
    if (bus == "session") {
        return "the session bus";
    }
    return fmt::format("the bus at '{}'", bus);
}

// Opens (starts connecting) without blocking: connect() on a unix socket
// completes or fails at once; authentication and Hello run on the loop.
int openBus(const std::string& spec, BusPtr& out, std::string& error) {
    sd_bus* raw = nullptr;
    int r = 0;
    if (spec == "system") {
        r = sd_bus_open_system_with_description(&raw, "dmsd");
    } else if (spec == "session") {
        r = sd_bus_open_user_with_description(&raw, "dmsd");
    } else {
        if (spec.find(':') == std::string::npos) {
            error = fmt::format("notify.dbus.bus: '{}' is neither 'system', 'session' nor a D-Bus "
                                "address such as 'unix:path=/run/dbus/system_bus_socket'",
                                spec);
            return -EINVAL;
        }
        r = sd_bus_new(&raw);
        if (r < 0) {
            error = fmt::format("sd_bus_new: {}", errnoText(r));
            return r;
        }
        BusPtr bus(raw);
        if ((r = sd_bus_set_address(bus.get(), spec.c_str())) < 0 ||
            (r = sd_bus_set_bus_client(bus.get(), 1)) < 0 ||
            (r = sd_bus_set_description(bus.get(), "dmsd")) < 0 ||
            (r = sd_bus_start(bus.get())) < 0) {
            error = fmt::format("cannot connect to {}: {}", describeBus(spec), errnoText(r));
            return r;
        }
        out = std::move(bus);
        return 0;
    }
    if (r < 0) {
        error = fmt::format("cannot connect to {}: {}", describeBus(spec), errnoText(r));
        return r;
    }
    out.reset(raw);
    return 0;
}

} // namespace

std::string_view serviceStateName(ServiceState state) {
    switch (state) {
    case ServiceState::Starting:
        return "starting";
    case ServiceState::Running:
        return "running";
    case ServiceState::Degraded:
        return "degraded";
    case ServiceState::Stopping:
        return "stopping";
    }
    return "starting";
}

class DbusService::Impl : public std::enable_shared_from_this<Impl> {
public:
    Impl(asio::io_context& io, DbusSettings settings, DbusCallbacks callbacks,
         DbusServiceOptions options)
        : io_(io), settings_(std::move(settings)), callbacks_(std::move(callbacks)),
          options_(options), timeoutTimer_(io), retryTimer_(io), backoff_(options.initialBackoff) {}

    ~Impl() { stop(); }

    void start() {
        if (started_) {
            return;
        }
        started_ = true;
        stopped_ = false;
        connect();
    }

    void stop() {
        if (stopped_) {
            return;
        }
        // Every caller gets an answer, even when dmsd stops under it.
        while (!pendingReloads_.empty()) {
            finishReload(pendingReloads_.front(), "dmsd is stopping");
        }
        stopped_ = true;
        retryTimer_.cancel();
        teardown(true);
    }

    // --- properties -------------------------------------------------------

    template <class T>
    void setProperty(T& member, T value, const char* name) {
        if (member == value) {
            return;
        }
        member = std::move(value);
        if (!status_.connected) {
            return;
        }
        const int r = sd_bus_emit_properties_changed(bus_.get(), kPath.c_str(), kInterface.c_str(),
                                                     name, nullptr);
        if (r < 0) {
            log::debug("D-Bus: PropertiesChanged({}) not sent: {}", name, errnoText(r));
        }
        afterSend();
    }

    static int getProperty(sd_bus* /*bus*/, const char* /*path*/, const char* /*interface*/,
                           const char* property, sd_bus_message* reply, void* userdata,
                           sd_bus_error* error) {
        const auto* self = static_cast<const Impl*>(userdata);
        const std::string_view name(property);
        if (name == "State") {
            return sd_bus_message_append(reply, "s",
                                         std::string(serviceStateName(self->state_)).c_str());
        }
        if (name == "ActiveAlerts") {
            int r = sd_bus_message_open_container(reply, 'a', "s");
            for (const std::string& kind : self->activeAlerts_) {
                if (r >= 0) {
                    r = sd_bus_message_append(reply, "s", kind.c_str());
                }
            }
            return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        if (name == "ActiveAlertLevels") {
            int r = sd_bus_message_open_container(reply, 'a', "{ss}");
            for (const auto& [kind, level] : self->activeAlertLevels_) {
                if (r >= 0) {
                    r = sd_bus_message_append(reply, "{ss}", kind.c_str(), level.c_str());
                }
            }
            return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        if (name == "DriverState") {
            return sd_bus_message_append(reply, "s", self->driverState_.c_str());
        }
        if (name == "LastAnalysisUs") {
            return sd_bus_message_append(reply, "t", self->lastAnalysisUs_);
        }
        if (name == "ConfigVersion") {
            return sd_bus_message_append(reply, "s", self->configVersion_.c_str());
        }
        if (name == "ConfigError") {
            return sd_bus_message_append(reply, "s", self->configError_.c_str());
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s",
                                 property);
    }

    // --- methods ----------------------------------------------------------

    static int onGetStatus(sd_bus_message* call, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<Impl*>(userdata);
        std::string json;
        // Exceptions must not unwind through sd-bus (C code). GetStatus never
        // fails: without the daemon's status, the one built from the properties.
        try {
            json =
                self->callbacks_.getStatus ? self->callbacks_.getStatus() : self->fallbackStatus();
        } catch (const std::exception& e) {
            log::warning("D-Bus: GetStatus: the full status failed ({}); sending the properties",
                         e.what());
            json = self->fallbackStatus(e.what());
        } catch (...) {
            json = self->fallbackStatus("unknown error");
        }
        // D-Bus strings must be valid UTF-8 (else sd-bus refuses the reply).
        return sd_bus_reply_method_return(call, "s", publicText(json).c_str());
    }

    /// A Reload call waiting for its outcome, answered exactly once: by the
    /// daemon, or by the deadline.
    struct PendingReload {
        MessagePtr call;
        asio::steady_timer deadline;
        std::string sender;
        explicit PendingReload(asio::io_context& io) : deadline(io) {}
    };

    /// Answers \a pending (once) and forgets it.
    void finishReload(const std::shared_ptr<PendingReload>& pending, const std::string& outcome) {
        const auto it = std::find(pendingReloads_.begin(), pendingReloads_.end(), pending);
        if (it == pendingReloads_.end()) {
            return; // already answered
        }
        pendingReloads_.erase(it);
        pending->deadline.cancel();
        int r = 0;
        if (!outcome.empty()) {
            const std::string shown = publicText(outcome);
            // The rejection itself is the journal's "Configuration rejected" entry.
            log::info("D-Bus: Reload requested by {} failed: {}", pending->sender, shown);
            r = sd_bus_reply_method_errorf(pending->call.get(), kErrorReloadFailed.c_str(), "%s",
                                           shown.c_str());
        } else {
            log::info("D-Bus: Reload requested by {} done", pending->sender);
            r = sd_bus_reply_method_return(pending->call.get(), "");
        }
        if (r < 0) {
            log::debug("D-Bus: Reload reply not sent: {}", errnoText(r));
        }
        afterSend();
    }

    static int onReload(sd_bus_message* call, void* userdata, sd_bus_error* error) {
        auto* self = static_cast<Impl*>(userdata);
        if (!self->callbacks_.reload) {
            return sd_bus_error_set(error, kErrorFailed.c_str(),
                                    "Reload is not available in this process");
        }
        // The configuration is loaded off the loop: the reply is sent when the
        // outcome is known, or when the deadline passes, whichever comes first.
        auto pending = std::make_shared<PendingReload>(self->io_);
        pending->call.reset(sd_bus_message_ref(call));
        pending->sender = senderOf(call);
        self->pendingReloads_.push_back(pending);
        std::weak_ptr<Impl> weakSelf = self->weak_from_this();
        std::weak_ptr<PendingReload> weakPending = pending;
        pending->deadline.expires_after(self->options_.reloadDeadline);
        pending->deadline.async_wait([weakSelf, weakPending](const boost::system::error_code& ec) {
            auto me = weakSelf.lock();
            auto waiting = weakPending.lock();
            if (ec || !me || !waiting) {
                return;
            }
            me->finishReload(waiting, fmt::format("the reload did not finish within {} s; it may "
                                                  "still be applied (see ConfigVersion)",
                                                  std::chrono::duration_cast<std::chrono::seconds>(
                                                      me->options_.reloadDeadline)
                                                      .count()));
        });
        auto reply = [weakSelf, weakPending](const std::string& outcome) {
            auto me = weakSelf.lock();
            auto waiting = weakPending.lock();
            if (me && waiting) {
                me->finishReload(waiting, outcome);
            }
        };
        try {
            self->callbacks_.reload(reply);
        } catch (const std::exception& e) {
            reply(e.what());
        } catch (...) {
            reply("unknown error");
        }
        return 1; // answered by finishReload
    }

    static std::string senderOf(sd_bus_message* message) {
        const char* sender = sd_bus_message_get_sender(message);
        return sender != nullptr ? sender : "?";
    }

    /// The status built from the properties; \a error: why the full one is missing.
    std::string fallbackStatus(const std::string& error = {}) const {
        boost::json::object status;
        if (!error.empty()) {
            status["error"] = "the full status could not be built: " + error;
        }
        status["state"] = serviceStateName(state_);
        status["config_version"] = configVersion_;
        boost::json::array alerts;
        for (const std::string& kind : activeAlerts_) {
            alerts.push_back(boost::json::object{{"kind", kind}});
        }
        status["active_alerts"] = std::move(alerts);
        status["driver_state"] = driverState_;
        return writeJson(status);
    }

    // --- signals ----------------------------------------------------------

    void emitSignal(const char* member, const std::function<int(sd_bus_message*)>& append) {
        if (!status_.nameOwned) {
            // Subscribers match on the well-known name; without it nobody would get it.
            ++status_.signalsDropped;
            log::debug("D-Bus: signal {} dropped, service not on the bus", member);
            return;
        }
        sd_bus_message* raw = nullptr;
        int r =
            sd_bus_message_new_signal(bus_.get(), &raw, kPath.c_str(), kInterface.c_str(), member);
        MessagePtr message(raw);
        if (r >= 0) {
            r = append(message.get());
        }
        if (r >= 0) {
            r = sd_bus_send(bus_.get(), message.get(), nullptr);
        }
        if (r < 0) {
            ++status_.signalsDropped;
            log::warning("D-Bus: signal {} not sent: {}", member, errnoText(r));
        }
        afterSend();
    }

    // --- connection -------------------------------------------------------

    void connect() {
        if (stopped_) {
            return;
        }
        std::string error;
        BusPtr bus;
        if (openBus(settings_.bus, bus, error) < 0) {
            connectionLost(error);
            return;
        }
        bus_ = std::move(bus);
        ++generation_;
        status_.connected = true;

        sd_bus_slot* slot = nullptr;
        int r = sd_bus_add_object_vtable(bus_.get(), &slot, kPath.c_str(), kInterface.c_str(),
                                         kVtable, this);
        vtableSlot_.reset(slot);
        if (r < 0) {
            connectionLost(fmt::format("cannot register {}: {}", kPath, errnoText(r)));
            return;
        }
        // Without flags sd-bus asks for the name with DO_NOT_QUEUE: a second dmsd
        // fails visibly instead of waiting silently behind the first.
        slot = nullptr;
        r = sd_bus_request_name_async(bus_.get(), &slot, kName.c_str(), 0, &Impl::onNameReply,
                                      this);
        nameSlot_.reset(slot);
        if (r < 0) {
            connectionLost(fmt::format("cannot request the name {}: {}", kName, errnoText(r)));
            return;
        }
        const int fd = sd_bus_get_fd(bus_.get());
        // The descriptor is duplicated so that asio and sd-bus each close their own.
        UniqueFd watched(fd >= 0 ? ::fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1);
        if (!watched) {
            connectionLost(fmt::format("cannot watch the bus connection: {}",
                                       fd < 0 ? errnoText(fd) : std::strerror(errno)));
            return;
        }
        descriptor_.emplace(io_, watched.release());
        process();
    }

    static int onNameReply(sd_bus_message* reply, void* userdata, sd_bus_error* /*error*/) {
        auto* self = static_cast<Impl*>(userdata);
        self->nameSlot_.reset();
        const sd_bus_error* failure = sd_bus_message_get_error(reply);
        if (failure != nullptr) {
            self->connectionLost(
                fmt::format("cannot own the name {} on {}: {} (check the bus policy "
                            "/usr/share/dbus-1/system.d/{}.conf)",
                            kName, describeBus(self->settings_.bus),
                            failure->message != nullptr ? failure->message : failure->name, kName));
            return 0;
        }
        std::uint32_t result = 0;
        const int r = sd_bus_message_read(reply, "u", &result);
        // 1: primary owner, 4: already owner; 3 (exists) and 2 (queued) mean someone else has it.
        if (r < 0 || (result != 1 && result != 4)) {
            self->connectionLost(
                fmt::format("the name {} on {} is owned by another process (is another dmsd "
                            "running?)",
                            kName, describeBus(self->settings_.bus)));
            return 0;
        }
        self->nameAcquired();
        return 0;
    }

    void nameAcquired() {
        status_.nameOwned = true;
        ++status_.connects;
        status_.lastError.clear();
        reportedError_.clear();
        backoff_ = options_.initialBackoff;
        log::write(log::Priority::Notice,
                   fmt::format("D-Bus: serving {} on {}", kName, describeBus(settings_.bus)), {},
                   {{"DMS_EVENT", "dbus_serving"}, {"DMS_DBUS_BUS", settings_.bus}});
        reportAvailability(true, {});
    }

    void reportAvailability(bool available, const std::string& reason) {
        if (availableReported_ == available) {
            return;
        }
        availableReported_ = available;
        if (callbacks_.availabilityChanged) {
            callbacks_.availabilityChanged(available, reason);
        }
    }

    // Failure at any stage. Inside sd_bus_process() the teardown waits until the
    // call returns: the bus must not be closed under its own dispatcher.
    void connectionLost(std::string reason) {
        if (inProcess_) {
            if (!pendingLoss_) {
                pendingLoss_ = std::move(reason);
            }
            return;
        }
        teardown(false);
        ++status_.failures;
        status_.lastError = reason;
        if (stopped_) {
            return;
        }
        if (reason != reportedError_) {
            log::write(log::Priority::Warning,
                       fmt::format("D-Bus unavailable: {}; retrying, the daemon continues without "
                                   "D-Bus meanwhile",
                                   reason),
                       {}, {{"DMS_EVENT", "dbus_unavailable"}, {"DMS_DBUS_BUS", settings_.bus}});
            reportedError_ = reason;
        } else {
            log::debug("D-Bus still unavailable: {}", reason);
        }
        reportAvailability(false, reason);
        scheduleRetry();
    }

    void scheduleRetry() {
        retryTimer_.expires_after(backoff_);
        backoff_ = std::min(backoff_ * 2, options_.maxBackoff);
        retryTimer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped_) {
                return;
            }
            self->connect();
        });
    }

    void teardown(bool flush) {
        if (flush && bus_ && !inProcess_) {
            boundedFlush();
        }
        ++generation_;
        if (descriptor_) {
            boost::system::error_code ignored;
            descriptor_->cancel(ignored);
            descriptor_->close(ignored);
            descriptor_.reset();
        }
        timeoutTimer_.cancel();
        timerArmed_ = false;
        readWaiting_ = false;
        writeWaiting_ = false;
        nameSlot_.reset();
        vtableSlot_.reset();
        bus_.reset();
        status_.connected = false;
        status_.nameOwned = false;
    }

    // Shutdown: give queued messages (the last PropertiesChanged) a bounded
    // chance to leave; normally the queue is already empty.
    void boundedFlush() {
        const auto deadline = std::chrono::steady_clock::now() + options_.flushTimeout;
        const int fd = sd_bus_get_fd(bus_.get());
        while (fd >= 0) {
            const int events = sd_bus_get_events(bus_.get());
            if (events < 0 || (events & POLLOUT) == 0) {
                return;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                log::warning("D-Bus: messages still queued at shutdown were dropped");
                return;
            }
            pollfd pfd{fd, POLLOUT, 0};
            if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) {
                continue;
            }
            inProcess_ = true;
            const int r = sd_bus_process(bus_.get(), nullptr);
            inProcess_ = false;
            if (r < 0) {
                return;
            }
        }
    }

    void process() {
        if (!bus_) {
            return;
        }
        for (int i = 0; i < kMaxProcessBatch; ++i) {
            inProcess_ = true;
            const int r = sd_bus_process(bus_.get(), nullptr);
            inProcess_ = false;
            if (pendingLoss_) {
                connectionLost(*std::exchange(pendingLoss_, std::nullopt));
                return;
            }
            if (r < 0) {
                connectionLost(fmt::format("connection to {} lost: {}", describeBus(settings_.bus),
                                           errnoText(r)));
                return;
            }
            if (r == 0) {
                arm();
                return;
            }
        }
        asio::post(io_, [weak = weak_from_this(), generation = generation_] {
            auto self = weak.lock();
            if (self && self->generation_ == generation) {
                self->process();
            }
        });
    }

    void afterSend() {
        if (!inProcess_ && bus_) {
            arm();
        }
    }

    // Waits for what sd-bus wants next: readable, writable, or its timeout.
    void arm() {
        if (sd_bus_is_open(bus_.get()) <= 0) {
            connectionLost(fmt::format("connection to {} closed", describeBus(settings_.bus)));
            return;
        }
        const int events = sd_bus_get_events(bus_.get());
        if (events < 0) {
            connectionLost(fmt::format("connection to {} lost: {}", describeBus(settings_.bus),
                                       errnoText(events)));
            return;
        }
        if ((events & POLLIN) != 0 && !readWaiting_) {
            readWaiting_ = true;
            waitFor(asio::posix::stream_descriptor::wait_read, readWaiting_);
        }
        if ((events & POLLOUT) != 0 && !writeWaiting_) {
            writeWaiting_ = true;
            waitFor(asio::posix::stream_descriptor::wait_write, writeWaiting_);
        }
        std::uint64_t until = 0;
        const int r = sd_bus_get_timeout(bus_.get(), &until);
        if (r < 0 || until == UINT64_MAX) {
            if (timerArmed_) {
                timeoutTimer_.cancel();
                timerArmed_ = false;
            }
            return;
        }
        if (timerArmed_ && until == timerUntil_) {
            return;
        }
        const std::uint64_t now = monotonicNowUs();
        timeoutTimer_.expires_after(std::chrono::microseconds(until > now ? until - now : 0));
        timerArmed_ = true;
        timerUntil_ = until;
        timeoutTimer_.async_wait([weak = weak_from_this(),
                                  generation = generation_](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->generation_ != generation) {
                return;
            }
            self->timerArmed_ = false;
            self->process();
        });
    }

    void waitFor(asio::posix::stream_descriptor::wait_type type, bool& flag) {
        descriptor_->async_wait(type, [weak = weak_from_this(), generation = generation_,
                                       &flag](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (!self || self->generation_ != generation) {
                return; // a stale wait of a closed connection; flag belongs to the new one
            }
            flag = false;
            if (!ec) {
                self->process();
            }
        });
    }

    static const sd_bus_vtable kVtable[];

    asio::io_context& io_;
    DbusSettings settings_;
    DbusCallbacks callbacks_;
    DbusServiceOptions options_;

    BusPtr bus_;
    SlotPtr vtableSlot_;
    SlotPtr nameSlot_;
    std::optional<asio::posix::stream_descriptor> descriptor_;
    asio::steady_timer timeoutTimer_;
    asio::steady_timer retryTimer_;
    std::uint64_t generation_ = 0;
    bool readWaiting_ = false;
    bool writeWaiting_ = false;
    bool timerArmed_ = false;
    std::uint64_t timerUntil_ = 0;
    bool inProcess_ = false;
    std::optional<std::string> pendingLoss_;
    bool started_ = false;
    bool stopped_ = false;
    std::chrono::milliseconds backoff_;
    std::optional<bool> availableReported_;
    std::string reportedError_;
    DbusStatus status_;

    ServiceState state_ = ServiceState::Starting;
    std::vector<std::string> activeAlerts_;
    std::vector<std::pair<std::string, std::string>> activeAlertLevels_;
    std::string driverState_ = "UNKNOWN";
    std::uint64_t lastAnalysisUs_ = 0;
    std::string configVersion_;
    std::string configError_;
    std::vector<std::shared_ptr<PendingReload>> pendingReloads_;
};

// Methods are UNPRIVILEGED for sd-bus: access is the bus policy's job (root
// only), and sd-bus's own capability check would query the caller's
// credentials with a blocking call on the loop.
const sd_bus_vtable DbusService::Impl::kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_PROPERTY("State", "s", &Impl::getProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ActiveAlerts", "as", &Impl::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ActiveAlertLevels", "a{ss}", &Impl::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("DriverState", "s", &Impl::getProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("LastAnalysisUs", "t", &Impl::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ConfigVersion", "s", &Impl::getProperty, 0,
                    SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_PROPERTY("ConfigError", "s", &Impl::getProperty, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
    SD_BUS_METHOD_WITH_NAMES("GetStatus", "", "", "s", SD_BUS_PARAM(status_json),
                             &Impl::onGetStatus, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_METHOD_WITH_NAMES("Reload", "", "", "", "", &Impl::onReload, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_SIGNAL_WITH_NAMES("AlertRaised", "ssdts",
                             SD_BUS_PARAM(kind) SD_BUS_PARAM(level) SD_BUS_PARAM(confidence)
                                 SD_BUS_PARAM(timestamp_us) SD_BUS_PARAM(details_json),
                             0),
    SD_BUS_SIGNAL_WITH_NAMES("AlertCleared", "st", SD_BUS_PARAM(kind) SD_BUS_PARAM(timestamp_us),
                             0),
    SD_BUS_VTABLE_END,
};

// --- public API ----------------------------------------------------------------

DbusService::DbusService(asio::io_context& io, DbusSettings settings, DbusCallbacks callbacks,
                         DbusServiceOptions options)
    : impl_(std::make_shared<Impl>(io, std::move(settings), std::move(callbacks), options)) {
}

DbusService::~DbusService() {
    impl_->stop();
}

void DbusService::start() {
    impl_->start();
}

void DbusService::stop() {
    impl_->stop();
}

DbusStatus DbusService::status() const {
    return impl_->status_;
}

void DbusService::setState(ServiceState state) {
    impl_->setProperty(impl_->state_, state, "State");
}

void DbusService::setActiveAlerts(std::vector<std::string> kinds) {
    impl_->setProperty(impl_->activeAlerts_, std::move(kinds), "ActiveAlerts");
}

void DbusService::setActiveAlerts(const std::vector<ActiveAlert>& alerts) {
    std::vector<std::string> kinds;
    std::vector<std::pair<std::string, std::string>> levels;
    for (AlertKind kind : kAllAlertKinds) {
        const auto it = std::find_if(alerts.begin(), alerts.end(),
                                     [&](const ActiveAlert& a) { return a.kind == kind; });
        if (it != alerts.end()) {
            kinds.emplace_back(alertKindName(kind));
            levels.emplace_back(alertKindName(kind), alertLevelName(it->level));
        }
    }
    setActiveAlerts(std::move(kinds));
    setActiveAlertLevels(std::move(levels));
}

void DbusService::setActiveAlertLevels(std::vector<std::pair<std::string, std::string>> levels) {
    impl_->setProperty(impl_->activeAlertLevels_, std::move(levels), "ActiveAlertLevels");
}

void DbusService::setDriverState(const std::string& state) {
    impl_->setProperty(impl_->driverState_, publicText(state), "DriverState");
}

void DbusService::setLastAnalysisUs(std::uint64_t realtimeUs) {
    impl_->setProperty(impl_->lastAnalysisUs_, realtimeUs, "LastAnalysisUs");
}

void DbusService::setConfigVersion(const std::string& version) {
    impl_->setProperty(impl_->configVersion_, publicText(version), "ConfigVersion");
}

void DbusService::setConfigError(const std::string& error) {
    impl_->setProperty(impl_->configError_, publicText(error), "ConfigError");
}

void DbusService::emitAlertRaised(const AlertEvent& event, std::uint64_t timestampUs) {
    boost::json::object details;
    details["event"] = event.type == AlertEvent::Type::LevelChanged ? "level_changed" : "raised";
    details["sequence_id"] = event.sequenceId;
    if (!event.evidence.empty()) {
        details["evidence"] = event.evidence;
    }
    const std::string detailsJson = publicText(writeJson(details));
    const std::string kind(alertKindName(event.kind));
    const std::string level(alertLevelName(event.level));
    const double confidence = std::clamp(event.confidence, 0.0, 1.0);
    impl_->emitSignal("AlertRaised", [&](sd_bus_message* message) {
        return sd_bus_message_append(message, "ssdts", kind.c_str(), level.c_str(), confidence,
                                     timestampUs, detailsJson.c_str());
    });
}

void DbusService::emitAlertCleared(AlertKind kind, std::uint64_t timestampUs) {
    const std::string name(alertKindName(kind));
    impl_->emitSignal("AlertCleared", [&](sd_bus_message* message) {
        return sd_bus_message_append(message, "st", name.c_str(), timestampUs);
    });
}

void DbusService::emitAlert(const AlertEvent& event, std::uint64_t timestampUs) {
    if (event.type == AlertEvent::Type::Cleared) {
        emitAlertCleared(event.kind, timestampUs);
    } else {
        emitAlertRaised(event, timestampUs);
    }
}

} // namespace dmsd
