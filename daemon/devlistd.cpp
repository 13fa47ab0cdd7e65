// devlistd: keeps a Matrix account's device lists and E2EE key bookkeeping right.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <string_view>

#include "daemon/config.hpp"
#include "daemon/log_sink.hpp"
#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"

namespace {

namespace asio = boost::asio;
using namespace devlist;

// sysexits.h: EX_USAGE and EX_CONFIG.
constexpr int exit_usage = 64;
constexpr int exit_config = 78;

void usage(std::FILE* to) {
    std::fputs(
        "usage: devlistd --config FILE\n"
        "\n"
        "Tracks the device lists of the users a Matrix account shares encrypted rooms with,\n"
        "verifies their keys, and stores them in SQLite. See README.md for the configuration.\n"
        "\n"
        "  --config FILE   the TOML configuration file\n"
        "  --help          this text\n"
        "  --version       the version\n",
        to);
}

sync::log_level to_log_level(daemon::log_level_setting s) {
    switch (s) {
        case daemon::log_level_setting::debug:
            return sync::log_level::debug;
        case daemon::log_level_setting::info:
            return sync::log_level::info;
        case daemon::log_level_setting::notice:
            return sync::log_level::notice;
        case daemon::log_level_setting::warning:
            return sync::log_level::warning;
        case daemon::log_level_setting::error:
            return sync::log_level::error;
    }
    return sync::log_level::info;
}

int run(const daemon::config& cfg) {
    auto log = daemon::make_stderr_log(to_log_level(cfg.log_level));
    auto fail = [&](std::string_view what, int code) {
        log(sync::log_level::error, what);
        return code;
    };

    sync::engine_options options;
    options.user_id = cfg.user_id;
    options.device_id = cfg.device_id;
    options.device_display_name = cfg.device_display_name;
    options.sync_timeout = cfg.sync_timeout;
    if (cfg.access_token_file) {
        auto token = daemon::read_secret_file(*cfg.access_token_file, "access token");
        if (!token) return fail(token.error().detail, exit_config);
        options.access_token = std::move(*token);
    }
    if (cfg.password_file) {
        auto password = daemon::read_secret_file(*cfg.password_file, "password");
        if (!password) return fail(password.error().detail, exit_config);
        options.password = std::move(*password);
    }

    auto store = storage::store::open(cfg.database);
    if (!store) return fail("cannot open the database: " + store.error().message(), 1);

    auto base = sync::parse_url(cfg.homeserver);
    if (!base) return fail("homeserver: " + base.error().message(), exit_config);

    asio::io_context io(1);
    sync::http_client_options http_options;
    http_options.extra_ca_file = cfg.ca_file;
    std::optional<sync::http_client> http;
    try {
        http.emplace(io.get_executor(), *base, http_options);
    } catch (const std::exception& e) {
        return fail(std::string("cannot set up TLS: ") + e.what(), exit_config);
    }
    sync::sync_engine engine(io.get_executor(), *store, *http, options, log);

    asio::cancellation_signal stop;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        log(sync::log_level::notice,
            std::string("received ") + (signo == SIGINT ? "SIGINT" : "SIGTERM") + ", stopping");
        stop.emit(asio::cancellation_type::terminal);
    });

    int exit_code = 0;
    asio::co_spawn(
        io, engine.run(),
        asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr ex, result<void> r) {
            signals.cancel();
            http->close();
            if (ex) {
                try {
                    std::rethrow_exception(ex);
                } catch (const std::exception& e) {
                    log(sync::log_level::error, std::string("internal error: ") + e.what());
                }
                exit_code = 70;  // EX_SOFTWARE
            } else if (!r) {
                log(sync::log_level::error, "stopped: " + r.error().message());
                exit_code = 1;
            } else {
                log(sync::log_level::notice, "stopped cleanly");
            }
        }));
    io.run();
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_path;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        }
        if (arg == "--version") {
            std::puts("devlistd " DEVLIST_VERSION);
            return 0;
        }
        if (arg == "--config" && i + 1 < argc) {
            config_path = argv[++i];
        } else if (arg.starts_with("--config=")) {
            config_path = std::string(arg.substr(9));
        } else {
            std::fprintf(stderr, "devlistd: unknown argument '%s'\n\n", argv[i]);
            usage(stderr);
            return exit_usage;
        }
    }
    if (config_path.empty()) {
        std::fputs("devlistd: --config FILE is required\n\n", stderr);
        usage(stderr);
        return exit_usage;
    }
    auto cfg = daemon::load_config(config_path);
    if (!cfg) {
        std::fprintf(stderr, "devlistd: %s\n", cfg.error().detail.c_str());
        return exit_config;
    }
    return run(*cfg);
}
