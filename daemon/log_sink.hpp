// Where devlistd's log lines go: standard error, with syslog priority prefixes ("<6>") that
// journald understands when it is attached (JOURNAL_STREAM names standard error), else with a
// timestamp.
#pragma once

#include <memory>

#include "daemon/config.hpp"
#include "sync/log.hpp"

namespace devlist::daemon {

// A log function that drops lines below *min, read at every line so that a configuration
// reload can change it. Like every log call, changes happen on the io thread.
sync::log_function make_stderr_log(std::shared_ptr<const sync::log_level> min);

// The engine's level for the configuration's log_level.
sync::log_level to_log_level(log_level_setting setting);

// Whether standard error is the journal's stream: JOURNAL_STREAM names its device and inode.
// A variable inherited by a process whose stderr was redirected elsewhere does not count.
bool stderr_is_journal();

}  // namespace devlist::daemon
