#include "daemon/config.hpp"

#include <toml++/toml.h>

#include <fstream>
#include <set>
#include <sstream>

#include "sync/matrix_ids.hpp"
#include "sync/url.hpp"

namespace devlist::daemon {
namespace {

const std::set<std::string, std::less<>> known_keys = {
    "homeserver", "user_id", "device_id",           "access_token_file", "password_file",
    "database",   "ca_file", "device_display_name", "sync_timeout_ms",   "log_level"};

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

result<config> load_config(const std::filesystem::path& path) {
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
        if (!known_keys.contains(key.str())) {
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
    if (!*token && !*password) {
        return bad("access_token_file",
                   "or password_file is required (the secret itself never "
                   "goes in this file)");
    }
    if (*token) c.access_token_file = resolve(base, **token);
    if (*password) c.password_file = resolve(base, **password);

    auto database = get_string(table, "database");
    if (!database) return database.error();
    if (!*database) return bad("database", "is required (e.g. \"/var/lib/devlistd/devlistd.db\")");
    c.database = resolve(base, **database);

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
        const std::string& l = **level;
        if (l == "debug")
            c.log_level = log_level_setting::debug;
        else if (l == "info")
            c.log_level = log_level_setting::info;
        else if (l == "notice")
            c.log_level = log_level_setting::notice;
        else if (l == "warning")
            c.log_level = log_level_setting::warning;
        else if (l == "error")
            c.log_level = log_level_setting::error;
        else
            return bad("log_level", "must be one of debug, info, notice, warning, error");
    }
    return c;
}

}  // namespace devlist::daemon
