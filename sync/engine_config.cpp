// parse_engine_config and load_engine_config of include/devlist/engine.hpp: devlistd's TOML
// format (README, "Configuration"), with the same checks as daemon/config.cpp.
#include <toml++/toml.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "devlist/engine.hpp"
#include "sync/matrix_ids.hpp"
#include "sync/url.hpp"

namespace devlist {
namespace {

const std::set<std::string, std::less<>> engine_keys = {
    "homeserver",         "user_id",       "device_id",        "access_token_file",
    "password_file",      "database",      "ca_file",          "device_display_name",
    "sync_timeout_ms",    "log_level",     "sealing_key_file", "one_time_key_target",
    "one_time_keys_kept", "cross_signing", "sync_filter"};

// The daemon's socket settings: a bot may read the daemon's file, the engine has no socket.
const std::set<std::string, std::less<>> daemon_only_keys = {
    "socket",       "socket_mode",     "socket_group",   "allowed_uids",
    "allowed_gids", "key_access_uids", "key_access_gids"};

error bad(std::string_view key, std::string_view problem) {
    return error{errc::invalid_argument,
                 "configuration key '" + std::string(key) + "': " + std::string(problem)};
}

result<std::optional<std::string>> get_string(const toml::table& t, std::string_view key) {
    const toml::node* node = t.get(key);
    if (!node) return std::optional<std::string>{};
    auto s = node->value<std::string>();
    if (!s) return bad(key, "must be a string");
    if (s->empty()) return bad(key, "must not be empty");
    return std::optional<std::string>{std::move(*s)};
}

result<std::optional<std::filesystem::path>> get_path(const toml::table& t, std::string_view key,
                                                      const std::filesystem::path& base) {
    auto s = get_string(t, key);
    if (!s) return s.error();
    if (!*s) return std::optional<std::filesystem::path>{};
    std::filesystem::path p(**s);
    return std::optional<std::filesystem::path>{p.is_absolute() ? p : base / p};
}

result<void> get_count(const toml::table& t, std::string_view key, std::int64_t low,
                       std::int64_t high, std::size_t& out) {
    const toml::node* node = t.get(key);
    if (!node) return {};
    auto n = node->value<std::int64_t>();
    if (!node->is_integer() || !n || *n < low || *n > high) {
        return bad(
            key, "must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
    }
    out = static_cast<std::size_t>(*n);
    return {};
}

std::optional<log_level> parse_log_level(std::string_view name) {
    if (name == "debug") return log_level::debug;
    if (name == "info") return log_level::info;
    if (name == "notice") return log_level::notice;
    if (name == "warning") return log_level::warning;
    if (name == "error") return log_level::error;
    return std::nullopt;
}

result<engine_config> from_table(const toml::table& table, const std::filesystem::path& base) {
    for (const auto& [key, value] : table) {
        if (!engine_keys.contains(key.str()) && !daemon_only_keys.contains(key.str())) {
            return bad(key.str(), "unknown key (a typo?); see the README for the keys");
        }
    }
    engine_config c;

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

    auto token = get_path(table, "access_token_file", base);
    if (!token) return token.error();
    c.access_token.file = *token;
    auto password = get_path(table, "password_file", base);
    if (!password) return password.error();
    c.password.file = *password;
    if (!c.access_token.file && !c.password.file) {
        return bad("access_token_file",
                   "or password_file is required (the secret itself never goes in this file)");
    }

    auto database = get_path(table, "database", base);
    if (!database) return database.error();
    if (!*database) return bad("database", "is required (e.g. \"/var/lib/mybot/devlist.db\")");
    c.database = **database;

    auto ca = get_path(table, "ca_file", base);
    if (!ca) return ca.error();
    c.ca_file = *ca;
    auto sealing = get_path(table, "sealing_key_file", base);
    if (!sealing) return sealing.error();
    c.sealing_key_file = *sealing;

    auto name = get_string(table, "device_display_name");
    if (!name) return name.error();
    if (*name) c.device_display_name = **name;

    if (const toml::node* node = table.get("sync_timeout_ms")) {
        auto ms = node->value<std::int64_t>();
        if (!node->is_integer() || !ms || *ms < 0 || *ms > 300000) {
            return bad("sync_timeout_ms", "must be an integer from 0 to 300000");
        }
        c.sync_timeout = std::chrono::milliseconds(*ms);
    }

    auto level = get_string(table, "log_level");
    if (!level) return level.error();
    if (*level) {
        auto l = parse_log_level(**level);
        if (!l) return bad("log_level", "must be one of debug, info, notice, warning, error");
        c.min_log_level = *l;
    }

    if (auto r = get_count(table, "one_time_key_target", 1, 1000, c.one_time_key_target); !r) {
        return r.error();
    }
    if (auto r = get_count(table, "one_time_keys_kept", 1, 1000000, c.one_time_keys_kept); !r) {
        return r.error();
    }
    if (c.one_time_keys_kept < c.one_time_key_target) {
        return bad("one_time_keys_kept",
                   "must be at least one_time_key_target (published keys need their private "
                   "parts until peers use them)");
    }
    auto mode = get_string(table, "cross_signing");
    if (!mode) return mode.error();
    if (*mode) {
        if (**mode != "off" && **mode != "bootstrap") {
            return bad("cross_signing", "must be \"off\" or \"bootstrap\"");
        }
        c.bootstrap_cross_signing = **mode == "bootstrap";
    }
    // The library's own key: a bot's /sync filter, as JSON text (see engine_config).
    auto filter = get_string(table, "sync_filter");
    if (!filter) return filter.error();
    c.sync_filter = *filter;
    return c;
}

}  // namespace

result<engine_config> parse_engine_config(std::string_view toml_text,
                                          const std::filesystem::path& base_dir) {
    try {
        return from_table(toml::parse(toml_text), base_dir);
    } catch (const toml::parse_error& e) {
        std::ostringstream where;
        where << e.source().begin;
        return error{errc::invalid_argument,
                     "configuration " + where.str() + ": " + std::string(e.description())};
    }
}

result<engine_config> load_engine_config(const std::filesystem::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        return error{errc::io_error, "cannot read the configuration file " + file.string() + ": " +
                                         std::strerror(errno)};
    }
    std::ostringstream text;
    text << in.rdbuf();
    auto c = parse_engine_config(text.str(), file.parent_path());
    if (!c && c.error() == errc::invalid_argument &&
        c.error().detail.starts_with("configuration ")) {
        // Name the file: a bot may read several.
        return error{errc::invalid_argument, file.string() + ": " + c.error().detail};
    }
    return c;
}

}  // namespace devlist
