// Where devlistd's log lines go: standard error, with syslog priority prefixes ("<6>") that
// journald understands when it is attached (JOURNAL_STREAM set), else with a timestamp.
#pragma once

#include "sync/log.hpp"

namespace devlist::daemon {

// A log function that drops lines below `min`.
sync::log_function make_stderr_log(sync::log_level min);

}  // namespace devlist::daemon
