#include "daemon/service_notifier.hpp"

#include <boost/asio/cancellation_state.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/system/system_error.hpp>

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstdlib>
#include <system_error>

namespace devlist::daemon {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string describe_status(const sync::engine_status& status) {
    switch (status.phase) {
        case sync::engine_phase::starting:
            return "starting: logging in and loading the device lists";
        case sync::engine_phase::syncing: {
            std::string s = "syncing: " + std::to_string(status.tracked) + " users tracked, " +
                            std::to_string(status.outdated) + " outdated";
            if (!status.keys.last_key_error.empty()) {
                s += "; key upload failing: " + status.keys.last_key_error;
            }
            return s;
        }
        case sync::engine_phase::backing_off:
            return status.last_error.empty() ? std::string("backing off")
                                             : "backing off: " + status.last_error;
        case sync::engine_phase::stopped:
            return status.last_error.empty() ? std::string("stopped")
                                             : "stopped: " + status.last_error;
    }
    return "running";
}

service_notifier::service_notifier(sync::log_function log) : log_(std::move(log)) {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    enabled_ = socket != nullptr && *socket != '\0';
    std::uint64_t usec = 0;
    // Checks WATCHDOG_PID too: a watchdog meant for a parent is not ours to feed.
    int r = sd_watchdog_enabled(0, &usec);
    if (r > 0 && usec > 0) {
        watchdog_timeout_ = std::chrono::microseconds(static_cast<std::int64_t>(usec));
    } else if (r < 0 && log_) {
        log_(sync::log_level::warning, std::string("ignoring the watchdog settings: ") +
                                           std::generic_category().message(-r) +
                                           " (WATCHDOG_USEC, WATCHDOG_PID)");
    }
}

void service_notifier::send(const std::string& message) {
    if (!enabled_) return;
    int r = sd_notify(0, message.c_str());
    if (r < 0 && !send_failed_) {
        send_failed_ = true;
        if (log_) {
            log_(sync::log_level::warning, std::string("cannot notify the service manager: ") +
                                               std::generic_category().message(-r) +
                                               " (NOTIFY_SOCKET)");
        }
    }
}

void service_notifier::set_status(std::string status) {
    if (status == status_) return;
    status_ = std::move(status);
    send("STATUS=" + status_);
}

asio::awaitable<void> service_notifier::run(sync::sync_engine& engine) {
    if (!enabled_) co_return;
    status_ = describe_status(engine.status());
    send("READY=1\nSTATUS=" + status_);
    // The engine reports no event when its phase changes without a commit (backing off, a
    // failed key upload): a second is soon enough for `systemctl status`.
    constexpr auto status_check = 1s;
    auto next_ping = std::chrono::steady_clock::now();
    try {
        for (;;) {
            const auto now = std::chrono::steady_clock::now();
            // From this loop, on the io thread: if the loop hangs, the pings stop and systemd
            // restarts devlistd.
            if (watchdog_timeout_ && now >= next_ping) {
                send("WATCHDOG=1");
                next_ping = now + *watchdog_timeout_ / 2;
            }
            set_status(describe_status(engine.status()));
            auto deadline = now + status_check;
            if (watchdog_timeout_) deadline = std::min(deadline, next_ping);
            co_await engine.wait_for_change(deadline);
            if ((co_await asio::this_coro::cancellation_state).cancelled() !=
                asio::cancellation_type::none) {
                co_return;  // devlistd is stopping, which stopping() reports
            }
        }
    } catch (const boost::system::system_error& e) {
        // A coroutine that was cancelled throws at its next asynchronous wait.
        if (e.code() != asio::error::operation_aborted) throw;
    }
}

void service_notifier::reloading() {
    send("RELOADING=1");
}

void service_notifier::reloaded() {
    send("READY=1");
}

void service_notifier::stopping(std::string_view status) {
    status_ = std::string(status);
    if (stopping_) {
        send("STATUS=" + status_);
        return;
    }
    stopping_ = true;
    send("STOPPING=1\nSTATUS=" + status_);
}

}  // namespace devlist::daemon
