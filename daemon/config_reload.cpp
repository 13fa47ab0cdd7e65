#include "daemon/config_reload.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/system_error.hpp>

#include <unistd.h>

#include <csignal>

#include "daemon/log_sink.hpp"
#include "daemon/peer_access.hpp"

namespace devlist::daemon {

namespace asio = boost::asio;

namespace {

std::string id_list(const std::optional<std::vector<std::uint32_t>>& ids) {
    if (!ids) return "(not set)";
    std::string out = "[";
    for (std::size_t i = 0; i < ids->size(); ++i) {
        if (i > 0) out += ", ";
        out += std::to_string((*ids)[i]);
    }
    return out + "]";
}

std::string join(const std::vector<std::string>& parts) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += ", ";
        out += p;
    }
    return out;
}

}  // namespace

reload_plan plan_reload(const config& running, const config& next) {
    reload_plan plan;
    if (next.log_level != running.log_level) {
        plan.log_level = true;
        plan.applied.push_back(std::string("log_level ") + log_level_name(running.log_level) +
                               " -> " + log_level_name(next.log_level));
    }

    const auto access_key = [&](const char* key, const auto& before, const auto& after) {
        if (before == after) return;
        plan.access = true;
        plan.applied.push_back(std::string(key) + " " + id_list(before) + " -> " + id_list(after));
    };
    using ids = std::optional<std::vector<std::uint32_t>>;
    access_key("allowed_uids", ids(running.allowed_uids), ids(next.allowed_uids));
    access_key("allowed_gids", ids(running.allowed_gids), ids(next.allowed_gids));
    access_key("key_access_uids", running.key_access_uids, next.key_access_uids);
    access_key("key_access_gids", running.key_access_gids, next.key_access_gids);

    if (next.one_time_key_target != running.one_time_key_target) {
        const auto change = "one_time_key_target " + std::to_string(running.one_time_key_target) +
                            " -> " + std::to_string(next.one_time_key_target);
        // The private parts of published keys are kept up to one_time_keys_kept, which only a
        // restart changes: more keys on the server than that would lose some of them.
        if (next.one_time_key_target > running.one_time_keys_kept) {
            plan.refused.push_back(change + " (above the running one_time_keys_kept " +
                                   std::to_string(running.one_time_keys_kept) +
                                   "; restart to change both)");
        } else {
            plan.one_time_key_target = true;
            plan.applied.push_back(change);
        }
    }

    const auto restart_key = [&](const char* key, const auto& before, const auto& after) {
        if (before != after) plan.restart.emplace_back(key);
    };
    restart_key("homeserver", running.homeserver, next.homeserver);
    restart_key("user_id", running.user_id, next.user_id);
    restart_key("device_id", running.device_id, next.device_id);
    restart_key("access_token_file", running.access_token_file, next.access_token_file);
    restart_key("password_file", running.password_file, next.password_file);
    restart_key("database", running.database, next.database);
    restart_key("ca_file", running.ca_file, next.ca_file);
    restart_key("device_display_name", running.device_display_name, next.device_display_name);
    restart_key("sync_timeout_ms", running.sync_timeout, next.sync_timeout);
    restart_key("sealing_key_file", running.sealing_key_file, next.sealing_key_file);
    restart_key("one_time_keys_kept", running.one_time_keys_kept, next.one_time_keys_kept);
    restart_key("cross_signing", running.bootstrap_cross_signing, next.bootstrap_cross_signing);
    restart_key("socket", running.socket, next.socket);
    restart_key("socket_mode", running.socket_mode, next.socket_mode);
    restart_key("socket_group", running.socket_group, next.socket_group);
    return plan;
}

config apply_reload(config running, const config& next, const reload_plan& plan) {
    if (plan.log_level) running.log_level = next.log_level;
    if (plan.access) {
        running.allowed_uids = next.allowed_uids;
        running.allowed_gids = next.allowed_gids;
        running.key_access_uids = next.key_access_uids;
        running.key_access_gids = next.key_access_gids;
    }
    if (plan.one_time_key_target) running.one_time_key_target = next.one_time_key_target;
    return running;
}

std::string describe_reload(const reload_plan& plan) {
    std::vector<std::string> parts;
    if (!plan.applied.empty()) parts.push_back("applied " + join(plan.applied));
    if (!plan.refused.empty()) parts.push_back("not applied " + join(plan.refused));
    if (!plan.restart.empty()) parts.push_back("needs a restart to change " + join(plan.restart));
    if (parts.empty()) return "nothing changed";
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += "; ";
        out += p;
    }
    return out;
}

config_reloader::config_reloader(const asio::any_io_executor& executor,
                                 std::filesystem::path config_path, config_overrides overrides,
                                 config running, reload_targets targets, sync::log_function log)
    : hangup_(executor, SIGHUP),
      config_path_(std::move(config_path)),
      overrides_(std::move(overrides)),
      running_(std::move(running)),
      targets_(std::move(targets)),
      log_(std::move(log)) {}

asio::awaitable<void> config_reloader::run() {
    try {
        for (;;) {
            auto [ec, signal] = co_await hangup_.async_wait(asio::as_tuple(asio::use_awaitable));
            if (ec) co_return;  // cancelled: devlistd is stopping
            reload();
        }
    } catch (const boost::system::system_error& e) {
        // A coroutine that was cancelled throws at its next asynchronous wait.
        if (e.code() != asio::error::operation_aborted) throw;
    }
}

void config_reloader::reload() {
    if (targets_.notifier) targets_.notifier->reloading();
    auto next = load_config(config_path_, overrides_);
    if (!next) {
        log_(sync::log_level::error, "SIGHUP: the configuration " + config_path_.string() +
                                         " did not load, nothing changed: " + next.error().detail);
    } else {
        auto plan = plan_reload(running_, *next);
        // The level first, so that the line below obeys it.
        if (plan.log_level) *targets_.log_level = to_log_level(next->log_level);
        if (plan.access && targets_.api) {
            targets_.api->set_access_policy(
                make_access_policy(::geteuid(), next->allowed_uids, next->allowed_gids,
                                   next->key_access_uids, next->key_access_gids));
        }
        if (plan.one_time_key_target) {
            targets_.engine->set_one_time_key_target(next->one_time_key_target);
        }
        running_ = apply_reload(std::move(running_), *next, plan);
        const bool incomplete = !plan.refused.empty() || !plan.restart.empty();
        log_(incomplete ? sync::log_level::warning : sync::log_level::notice,
             "SIGHUP: reloaded " + config_path_.string() + ": " + describe_reload(plan));
    }
    if (targets_.notifier) targets_.notifier->reloaded();
}

}  // namespace devlist::daemon
