// devlistd's configuration file (TOML). Secrets never live in it: the access token and the
// password are read from the files it names.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

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
};

// Loads and validates a configuration file. Relative paths in it are taken relative to the
// file's folder. Errors (errc::invalid_argument) name the key and what is wrong with it.
result<config> load_config(const std::filesystem::path& path);

// Reads a secret from a file: its content without a trailing newline; it must not be empty.
// The error names the file, never the content.
result<std::string> read_secret_file(const std::filesystem::path& path, std::string_view what);

}  // namespace devlist::daemon
