// devlistd's configuration file (TOML). Secrets never live in it: the access token and the
// password are read from the files it names, or from systemd credentials.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devlist/error.hpp"

namespace devlist::daemon {

enum class log_level_setting { debug, info, notice, warning, error };

struct config {
    std::string homeserver;  // base URL, http:// or https://
    std::string user_id;
    std::optional<std::string> device_id;
    std::optional<std::filesystem::path> access_token_file;
    std::optional<std::filesystem::path> password_file;
    std::filesystem::path database;
    std::optional<std::filesystem::path> ca_file;  // trusted besides the system store
    std::string device_display_name = "devlistd";
    std::chrono::milliseconds sync_timeout{30000};
    log_level_setting log_level = log_level_setting::info;

    // ---- key maintenance (sync/key_maintenance.hpp) ----
    // The key that seals private keys at rest. nullopt: "<database>.key", created (mode 0600)
    // when neither it nor an identity exists yet.
    std::optional<std::filesystem::path> sealing_key_file;
    std::size_t one_time_key_target = 50;
    std::size_t one_time_keys_kept = 5000;
    bool bootstrap_cross_signing = false;  // cross_signing = "bootstrap"

    // ---- the socket API (daemon/socket_server.hpp) ----
    // nullopt: default_socket_path, where a missing folder only disables the socket (with a
    // warning) instead of stopping devlistd; a configured path must work.
    std::optional<std::filesystem::path> socket;
    unsigned socket_mode = 0660;
    std::optional<std::string> socket_group;  // a group name, resolved at start
    // Peers allowed to use the socket besides the daemon's own uid and root.
    std::vector<std::uint32_t> allowed_uids;
    std::vector<std::uint32_t> allowed_gids;
    // Peers allowed to take private keys. When neither is set, the daemon's own uid alone;
    // when either is set, exactly the peers listed (see README, "Socket API").
    std::optional<std::vector<std::uint32_t>> key_access_uids;
    std::optional<std::vector<std::uint32_t>> key_access_gids;
};

// What the command line and the service manager add to the file (daemon/command_line.hpp).
struct config_overrides {
    // Command-line flags: they win over the file's keys.
    std::optional<log_level_setting> log_level;
    std::optional<std::filesystem::path> database;
    std::optional<std::filesystem::path> socket;
    // $CREDENTIALS_DIRECTORY (systemd's LoadCredential=): its access_token, password and
    // sealing_key files are used where the file sets no access_token_file, password_file or
    // sealing_key_file (daemon/credentials.hpp).
    std::optional<std::filesystem::path> credentials_directory;
};

// Loads and validates a configuration file. Relative paths in it are taken relative to the
// file's folder. Errors (errc::invalid_argument) name the key and what is wrong with it.
result<config> load_config(const std::filesystem::path& path,
                           const config_overrides& overrides = {});

// "debug", "info", "notice", "warning", "error", as the file and the command line spell them.
std::optional<log_level_setting> parse_log_level(std::string_view name);
const char* log_level_name(log_level_setting level);

// Reads a secret from a file: its content without a trailing newline; it must not be empty.
// The error names the file, never the content.
result<std::string> read_secret_file(const std::filesystem::path& path, std::string_view what);

}  // namespace devlist::daemon
