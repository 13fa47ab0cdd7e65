// devlistd's command line: what to do, the configuration file, and the flags that override the
// file's keys. Parsing is pure (no environment, no files) so tests drive it directly.
//
// Plain functions and data; thread-safe.
#pragma once

#include <filesystem>
#include <span>
#include <string>

#include "daemon/config.hpp"
#include "devlist/error.hpp"

namespace devlist::daemon {

enum class command_action {
    run,           // run the daemon
    check_config,  // validate, print the effective configuration, exit 0 or 78
    help,
    version,
};

struct command_line {
    command_action action = command_action::run;
    std::filesystem::path config_path;  // required by run and check_config
    // log_level, database and socket from flags; credentials_directory is the environment's.
    config_overrides overrides;
};

// Parses the arguments after argv[0]. Paths given on the command line are made absolute (the
// file's own relative paths are relative to its folder instead). A usage error is
// errc::invalid_argument with a message for the user (exit status 64).
result<command_line> parse_command_line(std::span<const char* const> arguments);

// The text of --help.
const char* usage_text();

}  // namespace devlist::daemon
