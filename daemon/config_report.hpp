// devlistd --check-config: the checks a configuration needs beyond its text, and the effective
// configuration written out as TOML — every key, defaults filled in, flags and systemd
// credentials applied, secrets named only by the file they come from.
//
// Plain functions; thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "daemon/config.hpp"
#include "devlist/error.hpp"

namespace devlist::daemon {

// What load_config() cannot see in the text: every secret file can be read and holds a secret
// (the content is dropped at once), an existing sealing key file holds a key, a configured
// sealing key file exists, ca_file can be read, socket_group names a group.
// errc::invalid_argument naming the key and the problem, never a secret.
result<void> check_config_files(const config& c);

// The effective configuration as TOML that load_config() reads back to the same values. A key
// whose absence means something of its own (device_id, socket, sealing_key_file, ...) is
// written as a comment saying what that is; trailing comments say where a value comes from
// (a flag, a systemd credential, a default).
std::string describe_config(const config& c, const config_overrides& overrides,
                            const std::filesystem::path& config_path);

}  // namespace devlist::daemon
