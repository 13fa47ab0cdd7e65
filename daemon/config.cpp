#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "daemon/credentials.hpp"
#include "sync/matrix_ids.hpp"
#include "sync/url.hpp"

namespace devlist::daemon {
namespace {

const std::set<std::string, std::less<>> known_keys = {
    "homeserver", "user_id", "device_id",           "access_token_file", "password_file",
    "database",   "ca_file", "device_display_name", "sync_timeout_ms",   "log_level"};

// Key maintenance (sync/key_maintenance.hpp), read by read_key_settings().
const std::set<std::string, std::less<>> key_maintenance_keys = {
    "sealing_key_file", "one_time_key_target", "one_time_keys_kept", "cross_signing"};

// The socket API's keys (daemon/socket_server.hpp), read by read_socket_settings().
const std::set<std::string, std::less<>> socket_keys = {
    "socket",       "socket_mode",     "socket_group",   "allowed_uids",
    "allowed_gids", "key_access_uids", "key_access_gids"};

error bad(std::string_view key, std::string_view problem) {
    return error{errc::invalid_argument,
                 "configuration key '" + std::string(key) + "': " + std::string(problem)};
}

// A string value, if the key is present; a value of another type is an error.
result<std::optional<std::string>> get_string(const toml::table& t, std::string_view key) {
    const toml::node* node = t.get(key);
    if (!node) return std::optional<std::string>{};
    auto s = node->value<std::string>();
    if (!s) return bad(key, "must be a string");
    if (s->empty()) return bad(key, "must not be empty");
    return std::optional<std::string>{std::move(*s)};
}

std::filesystem::path resolve(const std::filesystem::path& base, const std::string& p) {
    std::filesystem::path path(p);
    return path.is_absolute() ? path : base / path;
}

// A list of user or group IDs, if the key is present: an array of integers 0..2^32-2
// (2^32-1 is the "no ID" value of chown and setresuid, never a real ID).
result<std::optional<std::vector<std::uint32_t>>> get_ids(const toml::table& t,
                                                          std::string_view key) {
    const toml::node* node = t.get(key);
    if (!node) return std::optional<std::vector<std::uint32_t>>{};
    const toml::array* a = node->as_array();
    if (!a) return bad(key, "must be an array of numeric IDs, e.g. [1000, 1001]");
    std::vector<std::uint32_t> ids;
    for (const toml::node& element : *a) {
        auto id = element.value<std::int64_t>();
        if (!element.is_integer() || !id || *id < 0 || *id >= 0xffffffffLL) {
            return bad(key, "must hold integers from 0 to 4294967294 (numeric IDs, not names)");
        }
        ids.push_back(static_cast<std::uint32_t>(*id));
    }
    return std::optional<std::vector<std::uint32_t>>{std::move(ids)};
}

result<void> read_socket_settings(const toml::table& t, const std::filesystem::path& base,
                                  config& c) {
    auto socket = get_string(t, "socket");
    if (!socket) return socket.error();
    if (*socket) c.socket = resolve(base, **socket);

    auto mode = get_string(t, "socket_mode");
    if (!mode) return mode.error();
    if (*mode) {
        // A string, because TOML has no octal literal that reads like chmod's.
        const std::string& m = **mode;
        unsigned value = 0;
        bool octal = m.size() >= 3 && m.size() <= 4;
        for (char ch : m) {
            if (ch < '0' || ch > '7') octal = false;
            value = value * 8 + static_cast<unsigned>(ch - '0');
        }
        if (!octal || value > 0777) {
            return bad("socket_mode", "must be an octal permission string like \"0660\"");
        }
        // Connecting to a Unix socket needs write permission on it.
        if ((value & 0200) == 0) return bad("socket_mode", "must let the owner write (e.g. 0600)");
        c.socket_mode = value;
    }

    auto group = get_string(t, "socket_group");
    if (!group) return group.error();
    c.socket_group = *group;

    auto uids = get_ids(t, "allowed_uids");
    if (!uids) return uids.error();
    if (*uids) c.allowed_uids = std::move(**uids);
    auto gids = get_ids(t, "allowed_gids");
    if (!gids) return gids.error();
    if (*gids) c.allowed_gids = std::move(**gids);
    auto key_uids = get_ids(t, "key_access_uids");
    if (!key_uids) return key_uids.error();
    c.key_access_uids = std::move(*key_uids);
    auto key_gids = get_ids(t, "key_access_gids");
    if (!key_gids) return key_gids.error();
    c.key_access_gids = std::move(*key_gids);
    return {};
}

result<void> read_key_settings(const toml::table& t, const std::filesystem::path& base, config& c) {
    auto sealing = get_string(t, "sealing_key_file");
    if (!sealing) return sealing.error();
    if (*sealing) c.sealing_key_file = resolve(base, **sealing);

    const auto get_count = [&](std::string_view key, std::int64_t low, std::int64_t high,
                               std::size_t& out) -> result<void> {
        const toml::node* node = t.get(key);
        if (!node) return {};
        auto n = node->value<std::int64_t>();
        if (!node->is_integer() || !n || *n < low || *n > high) {
            return bad(key, "must be an integer from " + std::to_string(low) + " to " +
                                std::to_string(high));
        }
        out = static_cast<std::size_t>(*n);
        return {};
    };
    if (auto r = get_count("one_time_key_target", 1, 1000, c.one_time_key_target); !r) return r;
    if (auto r = get_count("one_time_keys_kept", 1, 1000000, c.one_time_keys_kept); !r) return r;
    if (c.one_time_keys_kept < c.one_time_key_target) {
        return bad("one_time_keys_kept",
                   "must be at least one_time_key_target (published keys need their private "
                   "parts until peers use them)");
    }

    auto mode = get_string(t, "cross_signing");
    if (!mode) return mode.error();
    if (*mode) {
        if (**mode == "off") {
            c.bootstrap_cross_signing = false;
        } else if (**mode == "bootstrap") {
            c.bootstrap_cross_signing = true;
        } else {
            return bad("cross_signing", "must be \"off\" or \"bootstrap\"");
        }
    }
    return {};
}

}  // namespace

result<std::string> read_secret_file(const std::filesystem::path& path, std::string_view what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return error{errc::io_error, "cannot read the " + std::string(what) + " file " +
                                         path.string() + ": " + std::strerror(errno)};
    }
    std::ostringstream s;
    s << in.rdbuf();
    std::string secret = s.str();
    while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r'))
        secret.pop_back();
    if (secret.empty()) {
        return error{errc::invalid_argument,
                     "the " + std::string(what) + " file " + path.string() + " is empty"};
    }
    if (secret.find('\n') != std::string::npos) {
        return error{errc::invalid_argument,
                     "the " + std::string(what) + " file " + path.string() + " must hold one line"};
    }
    return secret;
}

result<config> load_config(const std::filesystem::path& path, const config_overrides& overrides) {
    toml::table table;
    try {
        table = toml::parse_file(path.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream where;
        where << e.source().begin;
        return error{errc::invalid_argument, "configuration file " + path.string() + " " +
                                                 where.str() + ": " + std::string(e.description())};
    }
    for (const auto& [key, value] : table) {
        if (!known_keys.contains(key.str()) && !socket_keys.contains(key.str()) &&
            !key_maintenance_keys.contains(key.str())) {
            return bad(key.str(), "unknown key (a typo?); see the README for the keys");
        }
    }
    const auto base = path.parent_path();
    config c;

    auto homeserver = get_string(table, "homeserver");
    if (!homeserver) return homeserver.error();
    if (!*homeserver) return bad("homeserver", "is required (e.g. \"https://matrix.example.org\")");
    if (auto u = sync::parse_url(**homeserver); !u) return bad("homeserver", u.error().message());
    c.homeserver = **homeserver;

    auto user = get_string(table, "user_id");
    if (!user) return user.error();
    if (!*user) return bad("user_id", "is required (e.g. \"@bot:example.org\")");
    if (!sync::is_valid_user_id(**user)) return bad("user_id", "is not a valid Matrix user ID");
    c.user_id = **user;

    auto device = get_string(table, "device_id");
    if (!device) return device.error();
    if (*device && !sync::is_valid_device_id(**device)) {
        return bad("device_id", "must be printable ASCII without spaces, at most 255 bytes");
    }
    c.device_id = *device;

    auto token = get_string(table, "access_token_file");
    if (!token) return token.error();
    auto password = get_string(table, "password_file");
    if (!password) return password.error();
    if (*token) c.access_token_file = resolve(base, **token);
    if (*password) c.password_file = resolve(base, **password);
    if (overrides.credentials_directory) {
        const auto& credentials = *overrides.credentials_directory;
        if (!c.access_token_file) {
            c.access_token_file = find_credential(credentials, credential_access_token);
        }
        if (!c.password_file) c.password_file = find_credential(credentials, credential_password);
    }
    if (!c.access_token_file && !c.password_file) {
        return bad("access_token_file",
                   "or password_file is required, or a systemd credential access_token or "
                   "password (the secret itself never goes in this file)");
    }

    auto database = get_string(table, "database");
    if (!database) return database.error();
    if (overrides.database) {
        c.database = *overrides.database;
    } else if (*database) {
        c.database = resolve(base, **database);
    } else {
        return bad("database", "is required (e.g. \"/var/lib/devlistd/devlistd.db\")");
    }

    auto ca = get_string(table, "ca_file");
    if (!ca) return ca.error();
    if (*ca) c.ca_file = resolve(base, **ca);

    auto name = get_string(table, "device_display_name");
    if (!name) return name.error();
    if (*name) c.device_display_name = **name;

    if (const toml::node* node = table.get("sync_timeout_ms")) {
        auto ms = node->value<std::int64_t>();
        if (!ms || *ms < 0 || *ms > 300000) {
            return bad("sync_timeout_ms", "must be an integer from 0 to 300000");
        }
        c.sync_timeout = std::chrono::milliseconds(*ms);
    }

    auto level = get_string(table, "log_level");
    if (!level) return level.error();
    if (*level) {
        auto l = parse_log_level(**level);
        if (!l) return bad("log_level", "must be one of debug, info, notice, warning, error");
        c.log_level = *l;
    }
    if (overrides.log_level) c.log_level = *overrides.log_level;
    if (auto r = read_socket_settings(table, base, c); !r) return r.error();
    if (overrides.socket) c.socket = *overrides.socket;
    if (auto r = read_key_settings(table, base, c); !r) return r.error();
    if (overrides.credentials_directory && !c.sealing_key_file) {
        c.sealing_key_file =
            find_credential(*overrides.credentials_directory, credential_sealing_key);
    }
    return c;
}

std::optional<log_level_setting> parse_log_level(std::string_view name) {
    if (name == "debug") return log_level_setting::debug;
    if (name == "info") return log_level_setting::info;
    if (name == "notice") return log_level_setting::notice;
    if (name == "warning") return log_level_setting::warning;
    if (name == "error") return log_level_setting::error;
    return std::nullopt;
}

const char* log_level_name(log_level_setting level) {
    switch (level) {
        case log_level_setting::debug:
            return "debug";
        case log_level_setting::info:
            return "info";
        case log_level_setting::notice:
            return "notice";
        case log_level_setting::warning:
            return "warning";
        case log_level_setting::error:
            return "error";
    }
    return "info";
}

}  // namespace devlist::daemon
