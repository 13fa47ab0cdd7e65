// devlistd: keeps a Matrix account's device lists and E2EE key bookkeeping right.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "crypto/seal.hpp"
#include "daemon/command_line.hpp"
#include "daemon/config.hpp"
#include "daemon/config_reload.hpp"
#include "daemon/config_report.hpp"
#include "daemon/default_paths.hpp"
#include "daemon/log_sink.hpp"
#include "daemon/service_notifier.hpp"
#include "daemon/socket_activation.hpp"
#include "daemon/socket_server.hpp"
#include "storage/store.hpp"
#include "sync/http_client.hpp"
#include "sync/sealing_key_file.hpp"
#include "sync/sync_engine.hpp"
#include "sync/url.hpp"

namespace {

namespace asio = boost::asio;
using namespace devlist;

// sysexits.h: EX_USAGE and EX_CONFIG.
constexpr int exit_usage = 64;
constexpr int exit_config = 78;

// The service manager's side: sd_notify and SIGHUP. Neither ends on its own (the notifier
// returns at once outside systemd, hence `&&`).
asio::awaitable<void> run_service(sync::sync_engine* engine, daemon::service_notifier* notifier,
                                  daemon::config_reloader* reloader) {
    using namespace asio::experimental::awaitable_operators;
    co_await (notifier->run(*engine) && reloader->run());
}

// The engine, the socket server and the service side by side: the others stop when the engine
// ends, and all stop on cancellation. The engine is started first: it loads its state from the
// store before it first waits, so no request is served against an engine that has not.
asio::awaitable<result<void>> run_daemon(sync::sync_engine* engine, daemon::socket_server* server,
                                         daemon::service_notifier* notifier,
                                         daemon::config_reloader* reloader) {
    using namespace asio::experimental::awaitable_operators;
    if (!server) {
        auto ended = co_await (engine->run() || run_service(engine, notifier, reloader));
        if (auto* r = std::get_if<0>(&ended)) co_return std::move(*r);
        co_return result<void>{};
    }
    auto ended =
        co_await (engine->run() || server->run() || run_service(engine, notifier, reloader));
    if (auto* r = std::get_if<0>(&ended)) co_return std::move(*r);
    co_return result<void>{};
}

int run(const daemon::command_line& command, const daemon::config& cfg) {
    // Shared with the log function, which reads it at every line: SIGHUP changes it.
    auto level = std::make_shared<sync::log_level>(daemon::to_log_level(cfg.log_level));
    auto log = daemon::make_stderr_log(level);
    daemon::service_notifier notifier(log);
    auto fail = [&](std::string_view what, int code) {
        log(sync::log_level::error, what);
        notifier.stopping("failed: " + std::string(what));
        return code;
    };
    auto activated = daemon::take_activated_socket();
    if (!activated) return fail(activated.error().detail, exit_config);

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
    auto sealing =
        sync::load_or_create_sealing_key(cfg.sealing_key_file, cfg.database, *store, log);
    if (!sealing) {
        return fail(sealing.error().detail,
                    sealing.error() == errc::invalid_argument ? exit_config : 1);
    }
    options.sealing_key = std::move(*sealing);
    options.one_time_key_target = cfg.one_time_key_target;
    options.one_time_keys_kept = cfg.one_time_keys_kept;
    options.bootstrap_cross_signing = cfg.bootstrap_cross_signing;

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

    daemon::socket_api_options api_options;
    api_options.access = daemon::make_access_policy(::geteuid(), cfg.allowed_uids, cfg.allowed_gids,
                                                    cfg.key_access_uids, cfg.key_access_gids);
    api_options.version = DEVLIST_VERSION;
    daemon::socket_api api(engine, *store, api_options, log);
    daemon::socket_server server(io.get_executor(), api, daemon::socket_server_limits{}, log);
    bool serving = true;
    const std::filesystem::path socket_path = cfg.socket.value_or(daemon::default_socket_path);
    if (*activated) {
        // The socket's file, mode and group are systemd's (devlistd.socket): used as they are.
        if (auto r = server.adopt(**activated); !r) return fail(r.error().detail, exit_config);
        auto path = daemon::bound_path(**activated);
        log(sync::log_level::info,
            "socket API on " + (path ? path->string() : "a socket") + ", handed over by systemd");
        if (cfg.socket && path && *cfg.socket != *path) {
            log(sync::log_level::warning, "socket = " + cfg.socket->string() +
                                              " is not used: systemd handed over " +
                                              path->string());
        }
    } else if (!cfg.socket && !std::filesystem::is_directory(socket_path.parent_path())) {
        // Only the default path may be missing: a path someone configured must work.
        log(sync::log_level::warning, "socket API off: the folder " +
                                          socket_path.parent_path().string() +
                                          " does not exist (set `socket` in the configuration)");
        serving = false;
    } else {
        daemon::socket_file_options socket_options{socket_path, cfg.socket_mode, std::nullopt};
        if (cfg.socket_group) {
            auto gid = daemon::find_group(*cfg.socket_group);
            if (!gid) return fail(gid.error().detail, exit_config);
            socket_options.group = *gid;
        }
        if (auto r = server.bind(socket_options); !r) return fail(r.error().detail, 1);
        log(sync::log_level::info, "socket API on " + socket_path.string());
    }

    daemon::reload_targets targets{level, &engine, &api, &notifier};
    daemon::config_reloader reloader(io.get_executor(), command.config_path, command.overrides, cfg,
                                     targets, log);

    asio::cancellation_signal stop;
    asio::signal_set signals(io, SIGINT, SIGTERM);
    signals.async_wait([&](const boost::system::error_code& ec, int signo) {
        if (ec) return;
        const std::string name = signo == SIGINT ? "SIGINT" : "SIGTERM";
        log(sync::log_level::notice, "received " + name + ", stopping");
        notifier.stopping("stopping: received " + name);
        stop.emit(asio::cancellation_type::terminal);
    });

    int exit_code = 0;
    asio::co_spawn(
        io, run_daemon(&engine, serving ? &server : nullptr, &notifier, &reloader),
        asio::bind_cancellation_slot(stop.slot(), [&](std::exception_ptr ex, result<void> r) {
            signals.cancel();
            http->close();
            if (ex) {
                try {
                    std::rethrow_exception(ex);
                } catch (const std::exception& e) {
                    log(sync::log_level::error, std::string("internal error: ") + e.what());
                    notifier.stopping(std::string("stopped: internal error: ") + e.what());
                }
                exit_code = 70;  // EX_SOFTWARE
            } else if (!r) {
                log(sync::log_level::error, "stopped: " + r.error().message());
                notifier.stopping("stopped: " + r.error().message());
                exit_code = 1;
            } else {
                log(sync::log_level::notice, "stopped cleanly");
                notifier.stopping("stopped");
            }
        }));
    io.run();
    return exit_code;
}

}  // namespace

int main(int argc, char** argv) {
    auto command = daemon::parse_command_line(
        std::span<const char* const>(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0)));
    if (!command) {
        std::fprintf(stderr, "devlistd: %s\n\n%s", command.error().detail.c_str(),
                     daemon::usage_text());
        return exit_usage;
    }
    switch (command->action) {
        case daemon::command_action::help:
            std::fputs(daemon::usage_text(), stdout);
            return 0;
        case daemon::command_action::version:
            std::puts("devlistd " DEVLIST_VERSION);
            return 0;
        case daemon::command_action::run:
        case daemon::command_action::check_config:
            break;
    }
    // systemd's LoadCredential=: the secrets the configuration does not name a file for.
    if (const char* credentials = std::getenv("CREDENTIALS_DIRECTORY");
        credentials && *credentials) {
        command->overrides.credentials_directory = credentials;
    }
    auto cfg = daemon::load_config(command->config_path, command->overrides);
    if (!cfg) {
        std::fprintf(stderr, "devlistd: %s\n", cfg.error().detail.c_str());
        return exit_config;
    }
    if (command->action == daemon::command_action::check_config) {
        if (auto r = daemon::check_config_files(*cfg); !r) {
            std::fprintf(stderr, "devlistd: %s\n", r.error().detail.c_str());
            return exit_config;
        }
        std::fputs(daemon::describe_config(*cfg, command->overrides, command->config_path).c_str(),
                   stdout);
        return 0;
    }
    return run(*command, *cfg);
}
