// The configuration reload on SIGHUP: the file is read again (with the same command-line flags
// and credentials) and what can change while devlistd runs is applied — log_level, the socket
// allow-lists, one_time_key_target. Other changed keys are named in the log as needing a
// restart; a file that no longer loads changes nothing.
//
// plan_reload() decides, without I/O; config_reloader does it on SIGHUP.
// Threading: config_reloader runs on the io thread; not thread-safe. Cancellation: run() ends
// when cancelled.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/signal_set.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "daemon/config.hpp"
#include "daemon/service_notifier.hpp"
#include "daemon/socket_api.hpp"
#include "sync/log.hpp"
#include "sync/sync_engine.hpp"

namespace devlist::daemon {

struct reload_plan {
    bool log_level = false;            // take next.log_level
    bool access = false;               // take next's allow-lists
    bool one_time_key_target = false;  // take next.one_time_key_target
    std::vector<std::string> applied;  // what changes, for the log: "log_level info -> debug"
    std::vector<std::string> refused;  // changes that cannot be applied, and why
    std::vector<std::string> restart;  // keys that changed and take effect at the next start
};

// What reloading `next` over the running configuration does.
reload_plan plan_reload(const config& running, const config& next);

// The running configuration with the changes of the plan made.
config apply_reload(config running, const config& next, const reload_plan& plan);

// One log line: "applied ...; not applied ...; needs a restart to change: ..." or "nothing
// changed".
std::string describe_reload(const reload_plan& plan);

// What a reload changes in the running daemon.
struct reload_targets {
    std::shared_ptr<sync::log_level> log_level;  // read by the log function at every line
    sync::sync_engine* engine = nullptr;
    socket_api* api = nullptr;             // nullptr when the socket API is off
    service_notifier* notifier = nullptr;  // RELOADING=1, READY=1
};

class config_reloader {
  public:
    // Installs the SIGHUP handler at once: a SIGHUP before run() waits for it instead of
    // ending the process (the default action).
    config_reloader(const boost::asio::any_io_executor& executor, std::filesystem::path config_path,
                    config_overrides overrides, config running, reload_targets targets,
                    sync::log_function log);

    // Reloads at every SIGHUP until cancelled.
    boost::asio::awaitable<void> run();

    // One reload, as at a SIGHUP.
    void reload();

  private:
    boost::asio::signal_set hangup_;
    std::filesystem::path config_path_;
    config_overrides overrides_;
    config running_;
    reload_targets targets_;
    sync::log_function log_;
};

}  // namespace devlist::daemon
