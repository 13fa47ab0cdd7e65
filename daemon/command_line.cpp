#include "daemon/command_line.hpp"

#include <optional>
#include <string_view>
#include <system_error>

namespace devlist::daemon {
namespace {

error usage_error(std::string message) {
    return error{errc::invalid_argument, std::move(message)};
}

result<std::filesystem::path> absolute_path(std::string_view flag, std::string_view value) {
    if (value.empty()) return usage_error(std::string(flag) + " needs a path");
    std::error_code ec;
    auto path = std::filesystem::absolute(std::filesystem::path(value), ec);
    if (ec) return usage_error(std::string(flag) + " " + std::string(value) + ": " + ec.message());
    return path;
}

}  // namespace

const char* usage_text() {
    return "usage: devlistd --config FILE [--log-level LEVEL] [--database PATH] [--socket PATH]\n"
           "       devlistd --check-config --config FILE [flags as above]\n"
           "\n"
           "Tracks the device lists of the users a Matrix account shares encrypted rooms with,\n"
           "verifies their keys, keeps the own device's keys published, and answers local\n"
           "programs on a Unix socket. See README.md for the configuration file.\n"
           "\n"
           "  --config FILE      the TOML configuration file (required)\n"
           "  --check-config     validate the configuration, print it with every default\n"
           "                     filled in (secrets only by the file they come from), and exit:\n"
           "                     0 if it is valid, 78 if not\n"
           "  --log-level LEVEL  overrides log_level: debug, info, notice, warning, error\n"
           "  --database PATH    overrides database\n"
           "  --socket PATH      overrides socket (unused when systemd hands over the socket)\n"
           "  --help             this text\n"
           "  --version          the version\n"
           "\n"
           "Secrets: where the file sets no access_token_file, password_file or\n"
           "sealing_key_file, the files access_token, password and sealing_key in\n"
           "$CREDENTIALS_DIRECTORY (systemd's LoadCredential=) are used.\n"
           "\n"
           "Signals: SIGTERM or SIGINT stop cleanly (exit status 0); SIGHUP re-reads the\n"
           "configuration and applies log_level, the socket allow-lists and\n"
           "one_time_key_target (other changes need a restart; the log says which).\n"
           "\n"
           "Exit status: 0 stopped cleanly, 1 could not go on (the log says why),\n"
           "64 usage error, 78 configuration error.\n";
}

result<command_line> parse_command_line(std::span<const char* const> arguments) {
    command_line out;
    bool help = false;
    bool version = false;
    bool check = false;
    std::optional<std::string> config;
    for (std::size_t i = 0; i < arguments.size(); ++i) {
        std::string_view arg = arguments[i];
        if (arg == "--help" || arg == "-h") {
            help = true;
            continue;
        }
        if (arg == "--version") {
            version = true;
            continue;
        }
        if (arg == "--check-config") {
            check = true;
            continue;
        }
        // The flags with a value, as "--flag VALUE" or "--flag=VALUE".
        std::string_view flag = arg;
        std::optional<std::string_view> value;
        if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
            flag = arg.substr(0, eq);
            value = arg.substr(eq + 1);
        }
        if (flag != "--config" && flag != "--log-level" && flag != "--database" &&
            flag != "--socket") {
            return usage_error("unknown argument '" + std::string(arg) + "'");
        }
        if (!value) {
            if (i + 1 >= arguments.size()) {
                return usage_error(std::string(flag) + " needs a value");
            }
            value = arguments[++i];
        }
        if (flag == "--config") {
            if (value->empty()) return usage_error("--config needs a file");
            config = std::string(*value);
        } else if (flag == "--log-level") {
            auto level = parse_log_level(*value);
            if (!level) {
                return usage_error(
                    "--log-level must be one of debug, info, notice, warning, "
                    "error, not '" +
                    std::string(*value) + "'");
            }
            out.overrides.log_level = *level;
        } else {
            auto path = absolute_path(flag, *value);
            if (!path) return path.error();
            (flag == "--database" ? out.overrides.database : out.overrides.socket) =
                std::move(*path);
        }
    }
    if (help) {
        out.action = command_action::help;
        return out;
    }
    if (version) {
        out.action = command_action::version;
        return out;
    }
    if (!config) return usage_error("--config FILE is required");
    out.config_path = std::move(*config);
    out.action = check ? command_action::check_config : command_action::run;
    return out;
}

}  // namespace devlist::daemon
