#include "daemon/config_report.hpp"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <system_error>

#include "crypto/seal.hpp"
#include "daemon/credentials.hpp"
#include "daemon/default_paths.hpp"
#include "daemon/socket_file.hpp"

namespace devlist::daemon {
namespace {

error bad(std::string_view key, const std::string& problem) {
    return error{errc::invalid_argument,
                 "configuration key '" + std::string(key) + "': " + problem};
}

// A TOML basic string.
std::string toml_string(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        const auto byte = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out += '\\';
            out += ch;
        } else if (byte < 0x20 || byte == 0x7f) {
            char escaped[8];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
            out += escaped;
        } else {
            out += ch;
        }
    }
    out += '"';
    return out;
}

std::string toml_path(const std::filesystem::path& p) {
    return toml_string(std::string_view(p.native()));
}

std::string id_list(const std::vector<std::uint32_t>& ids) {
    std::string out = "[";
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i > 0) out += ", ";
        out += std::to_string(ids[i]);
    }
    return out + "]";
}

std::filesystem::path default_sealing_key_file(const config& c) {
    return c.database.string() + ".key";
}

class report {
  public:
    void line(std::string_view key, const std::string& value, std::string_view note = {}) {
        out_ << key << " = " << value;
        if (!note.empty()) out_ << "  # " << note;
        out_ << '\n';
    }
    void comment(std::string_view text) { out_ << "# " << text << '\n'; }
    std::string str() const { return out_.str(); }

  private:
    std::ostringstream out_;
};

}  // namespace

result<void> check_config_files(const config& c) {
    if (c.access_token_file) {
        if (auto r = read_secret_file(*c.access_token_file, "access token"); !r) {
            return bad("access_token_file", r.error().detail);
        }
    }
    if (c.password_file) {
        if (auto r = read_secret_file(*c.password_file, "password"); !r) {
            return bad("password_file", r.error().detail);
        }
    }
    std::error_code ec;
    if (c.sealing_key_file) {
        if (!std::filesystem::exists(*c.sealing_key_file, ec)) {
            return bad("sealing_key_file", c.sealing_key_file->string() + " does not exist");
        }
        if (auto key = crypto::sealing_key::load_file(*c.sealing_key_file); !key) {
            return bad("sealing_key_file", key.error().detail);
        }
    } else if (auto path = default_sealing_key_file(c); std::filesystem::exists(path, ec)) {
        if (auto key = crypto::sealing_key::load_file(path); !key) {
            return bad("sealing_key_file", "(default " + path.string() + ") " + key.error().detail);
        }
    }
    if (c.ca_file) {
        std::ifstream in(*c.ca_file);
        if (!in) {
            return bad("ca_file", "cannot read " + c.ca_file->string() + ": " +
                                      std::generic_category().message(errno));
        }
    }
    if (c.socket_group) {
        if (auto gid = find_group(*c.socket_group); !gid) {
            return bad("socket_group", gid.error().detail);
        }
    }
    return {};
}

std::string describe_config(const config& c, const config_overrides& overrides,
                            const std::filesystem::path& config_path) {
    report r;
    r.comment("The effective configuration of " + config_path.string() + ":");
    r.comment("defaults filled in, command-line flags and systemd credentials applied.");
    r.comment("Secrets are never shown, only the files they are read from.");

    const auto secret_source = [&](const std::filesystem::path& file,
                                   std::string_view credential) -> std::string {
        if (overrides.credentials_directory &&
            file == *overrides.credentials_directory / credential) {
            return "systemd credential " + std::string(credential) +
                   " ($CREDENTIALS_DIRECTORY); the secret is not shown";
        }
        return "the secret is not shown";
    };
    const auto flag = [](bool from_flag, std::string_view name) {
        return from_flag ? std::string(name) : std::string();
    };

    r.line("homeserver", toml_string(c.homeserver));
    r.line("user_id", toml_string(c.user_id));
    if (c.device_id) {
        r.line("device_id", toml_string(*c.device_id));
    } else {
        r.comment("device_id is not set: the device of the first login is kept");
    }
    if (c.access_token_file) {
        r.line("access_token_file", toml_path(*c.access_token_file),
               secret_source(*c.access_token_file, credential_access_token));
    } else {
        r.comment("access_token_file is not set: devlistd logs in with the password");
    }
    if (c.password_file) {
        r.line("password_file", toml_path(*c.password_file),
               secret_source(*c.password_file, credential_password));
    } else {
        r.comment("password_file is not set: no new login when the access token is revoked");
    }
    r.line("database", toml_path(c.database), flag(overrides.database.has_value(), "--database"));
    if (c.ca_file) {
        r.line("ca_file", toml_path(*c.ca_file));
    } else {
        r.comment("ca_file is not set: the system's certificate authorities only");
    }
    r.line("device_display_name", toml_string(c.device_display_name));
    r.line("sync_timeout_ms", std::to_string(c.sync_timeout.count()));
    r.line("log_level", toml_string(log_level_name(c.log_level)),
           flag(overrides.log_level.has_value(), "--log-level"));

    if (c.sealing_key_file) {
        r.line("sealing_key_file", toml_path(*c.sealing_key_file),
               secret_source(*c.sealing_key_file, credential_sealing_key));
    } else {
        const auto path = default_sealing_key_file(c);
        std::error_code ec;
        r.comment(
            "sealing_key_file is not set: DATABASE.key, " + toml_path(path) +
            (std::filesystem::exists(path, ec) ? " (exists)" : " (created at the first start)"));
    }
    r.line("one_time_key_target", std::to_string(c.one_time_key_target));
    r.line("one_time_keys_kept", std::to_string(c.one_time_keys_kept));
    r.line("cross_signing", toml_string(c.bootstrap_cross_signing ? "bootstrap" : "off"));

    if (c.socket) {
        r.line("socket", toml_path(*c.socket), flag(overrides.socket.has_value(), "--socket"));
    } else {
        const std::filesystem::path fallback = default_socket_path;
        r.comment("socket is not set: " + toml_path(fallback) + " (no socket API if " +
                  fallback.parent_path().string() + " does not exist)");
    }
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", c.socket_mode);
    r.line("socket_mode", toml_string(std::string_view(mode)));
    if (c.socket_group) {
        r.line("socket_group", toml_string(*c.socket_group));
    } else {
        r.comment("socket_group is not set: the daemon's group");
    }
    r.line("allowed_uids", id_list(c.allowed_uids));
    r.line("allowed_gids", id_list(c.allowed_gids));
    if (!c.key_access_uids && !c.key_access_gids) {
        r.comment(
            "key_access_uids and key_access_gids are not set: only the daemon's own uid "
            "may take private keys");
    } else {
        if (c.key_access_uids) {
            r.line("key_access_uids", id_list(*c.key_access_uids));
        } else {
            r.comment("key_access_uids is not set: no user may take private keys by its uid");
        }
        if (c.key_access_gids) {
            r.line("key_access_gids", id_list(*c.key_access_gids));
        } else {
            r.comment("key_access_gids is not set: no group may take private keys");
        }
    }
    return r.str();
}

}  // namespace devlist::daemon
