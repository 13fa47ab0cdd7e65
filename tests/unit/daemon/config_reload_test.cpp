// What a SIGHUP applies: the plan over two configurations, and the line that reports it.
#include "daemon/config_reload.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devlist::daemon {
namespace {

config running_config() {
    config c;
    c.homeserver = "https://matrix.example.org";
    c.user_id = "@bot:example.org";
    c.password_file = "/etc/devlistd/password";
    c.database = "/var/lib/devlistd/devlistd.db";
    return c;
}

TEST(config_reload_test, the_same_file_changes_nothing) {
    auto plan = plan_reload(running_config(), running_config());
    EXPECT_FALSE(plan.log_level);
    EXPECT_FALSE(plan.access);
    EXPECT_FALSE(plan.one_time_key_target);
    EXPECT_TRUE(plan.restart.empty());
    EXPECT_EQ(describe_reload(plan), "nothing changed");
}

TEST(config_reload_test, level_allow_lists_and_target_are_applied) {
    auto next = running_config();
    next.log_level = log_level_setting::debug;
    next.allowed_uids = {1000};
    next.key_access_gids = std::vector<std::uint32_t>{};
    next.one_time_key_target = 60;
    auto plan = plan_reload(running_config(), next);
    EXPECT_TRUE(plan.log_level);
    EXPECT_TRUE(plan.access);
    EXPECT_TRUE(plan.one_time_key_target);
    EXPECT_TRUE(plan.restart.empty());
    EXPECT_EQ(describe_reload(plan),
              "applied log_level info -> debug, allowed_uids [] -> [1000], key_access_gids (not "
              "set) -> [], one_time_key_target 50 -> 60");

    auto after = apply_reload(running_config(), next, plan);
    EXPECT_EQ(after.log_level, log_level_setting::debug);
    EXPECT_EQ(after.allowed_uids, std::vector<std::uint32_t>{1000});
    EXPECT_EQ(after.key_access_gids, std::vector<std::uint32_t>{});
    EXPECT_EQ(after.one_time_key_target, 60u);
    EXPECT_EQ(describe_reload(plan_reload(after, next)), "nothing changed");
}

TEST(config_reload_test, keys_that_need_a_restart_are_named_and_not_taken) {
    auto next = running_config();
    next.homeserver = "https://other.example.org";
    next.database = "/var/lib/devlistd/other.db";
    next.socket = "/run/devlistd/other.sock";
    next.sync_timeout = std::chrono::milliseconds(1000);
    next.one_time_keys_kept = 100;
    next.password_file = "/etc/devlistd/other-password";
    next.log_level = log_level_setting::warning;
    auto plan = plan_reload(running_config(), next);
    EXPECT_EQ(plan.restart,
              (std::vector<std::string>{"homeserver", "password_file", "database",
                                        "sync_timeout_ms", "one_time_keys_kept", "socket"}));
    EXPECT_EQ(describe_reload(plan),
              "applied log_level info -> warning; needs a restart to change homeserver, "
              "password_file, database, sync_timeout_ms, one_time_keys_kept, socket");

    // Still different after the reload, so the next reload names them again.
    auto after = apply_reload(running_config(), next, plan);
    EXPECT_EQ(after.homeserver, "https://matrix.example.org");
    EXPECT_EQ(after.database, "/var/lib/devlistd/devlistd.db");
    EXPECT_EQ(plan_reload(after, next).restart, plan.restart);
}

TEST(config_reload_test, every_other_key_needs_a_restart) {
    const auto restart_of = [](auto change) {
        auto next = running_config();
        change(next);
        return plan_reload(running_config(), next).restart;
    };
    using keys = std::vector<std::string>;
    EXPECT_EQ(restart_of([](config& c) { c.user_id = "@other:example.org"; }), keys{"user_id"});
    EXPECT_EQ(restart_of([](config& c) { c.device_id = "DEV"; }), keys{"device_id"});
    EXPECT_EQ(restart_of([](config& c) { c.access_token_file = "/t"; }), keys{"access_token_file"});
    EXPECT_EQ(restart_of([](config& c) { c.ca_file = "/ca.pem"; }), keys{"ca_file"});
    EXPECT_EQ(restart_of([](config& c) { c.device_display_name = "x"; }),
              keys{"device_display_name"});
    EXPECT_EQ(restart_of([](config& c) { c.sealing_key_file = "/k"; }), keys{"sealing_key_file"});
    EXPECT_EQ(restart_of([](config& c) { c.bootstrap_cross_signing = true; }),
              keys{"cross_signing"});
    EXPECT_EQ(restart_of([](config& c) { c.socket_mode = 0600; }), keys{"socket_mode"});
    EXPECT_EQ(restart_of([](config& c) { c.socket_group = "bots"; }), keys{"socket_group"});
}

TEST(config_reload_test, a_target_above_the_running_cap_is_refused) {
    auto running = running_config();
    running.one_time_keys_kept = 100;
    auto next = running;
    next.one_time_key_target = 200;
    next.one_time_keys_kept = 400;  // takes effect only at a restart
    auto plan = plan_reload(running, next);
    EXPECT_FALSE(plan.one_time_key_target);
    ASSERT_EQ(plan.refused.size(), 1u);
    EXPECT_EQ(describe_reload(plan),
              "not applied one_time_key_target 50 -> 200 (above the running one_time_keys_kept "
              "100; restart to change both); needs a restart to change one_time_keys_kept");
    EXPECT_EQ(apply_reload(running, next, plan).one_time_key_target, 50u);
}

}  // namespace
}  // namespace devlist::daemon
