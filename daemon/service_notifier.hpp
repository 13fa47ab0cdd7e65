// devlistd's side of systemd's notify protocol (sd_notify(3), Type=notify): READY=1 once it
// serves, STATUS= lines saying what the engine does, WATCHDOG=1 from the event loop, RELOADING=1
// around a configuration reload, STOPPING=1 on the way out. Outside systemd (no NOTIFY_SOCKET)
// every call does nothing.
//
// Threading: on the io thread, like the engine it reports on; not thread-safe.
// Cancellation: run() ends when cancelled.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sync/log.hpp"
#include "sync/sync_engine.hpp"

namespace devlist::daemon {

// The STATUS= text for an engine status: the phase, and why when it is not going well.
// "syncing: 12 users tracked, 0 outdated", "backing off: <error>", "stopped: <error>".
std::string describe_status(const sync::engine_status& status);

class service_notifier {
  public:
    // Reads NOTIFY_SOCKET, and WATCHDOG_USEC when WATCHDOG_PID is unset or this process.
    explicit service_notifier(sync::log_function log);

    // Whether a service manager listens (NOTIFY_SOCKET is set).
    bool enabled() const noexcept { return enabled_; }
    // How often the service manager wants WATCHDOG=1 at the latest; nullopt: no watchdog.
    std::optional<std::chrono::microseconds> watchdog_timeout() const noexcept {
        return watchdog_timeout_;
    }

    // Sends READY=1 with a first STATUS=, then, until cancelled, WATCHDOG=1 every half
    // watchdog timeout and a new STATUS= whenever describe_status() of the engine changes
    // (checked after each change the engine commits, and every second for the rest). Returns
    // at once when no service manager listens.
    boost::asio::awaitable<void> run(sync::sync_engine& engine);

    // RELOADING=1 before a configuration reload, READY=1 after it.
    void reloading();
    void reloaded();
    // STOPPING=1 (once) with a final STATUS=.
    void stopping(std::string_view status);

  private:
    void send(const std::string& message);
    void set_status(std::string status);

    sync::log_function log_;
    bool enabled_ = false;
    std::optional<std::chrono::microseconds> watchdog_timeout_;
    std::string status_;
    bool stopping_ = false;
    bool send_failed_ = false;  // logged once, not at every ping
};

}  // namespace devlist::daemon
