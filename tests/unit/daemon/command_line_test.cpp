#include "daemon/command_line.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

namespace devlist::daemon {
namespace {

result<command_line> parse(std::initializer_list<const char*> args) {
    std::vector<const char*> v(args);
    return parse_command_line(v);
}

std::string refusal(std::initializer_list<const char*> args) {
    auto r = parse(args);
    EXPECT_FALSE(r);
    if (r) return {};
    EXPECT_EQ(r.error(), errc::invalid_argument);
    return r.error().detail;
}

TEST(command_line_test, config_alone_runs_without_overrides) {
    auto c = parse({"--config", "/etc/devlistd/devlistd.toml"});
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->action, command_action::run);
    EXPECT_EQ(c->config_path, "/etc/devlistd/devlistd.toml");
    EXPECT_FALSE(c->overrides.log_level);
    EXPECT_FALSE(c->overrides.database);
    EXPECT_FALSE(c->overrides.socket);
    EXPECT_FALSE(c->overrides.credentials_directory);
}

TEST(command_line_test, flags_take_a_separate_or_an_attached_value) {
    auto c = parse({"--config=/a.toml", "--log-level", "debug", "--database=/var/lib/x.db",
                    "--socket", "/run/x.sock", "--check-config"});
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->action, command_action::check_config);
    EXPECT_EQ(c->config_path, "/a.toml");
    EXPECT_EQ(c->overrides.log_level, log_level_setting::debug);
    EXPECT_EQ(c->overrides.database, std::filesystem::path("/var/lib/x.db"));
    EXPECT_EQ(c->overrides.socket, std::filesystem::path("/run/x.sock"));
}

TEST(command_line_test, relative_paths_are_taken_from_the_working_folder) {
    auto c = parse({"--config", "devlistd.toml", "--database", "state/x.db", "--socket", "x.sock"});
    ASSERT_TRUE(c) << c.error().detail;
    // The file's own relative paths are relative to the file; the command line's to the shell.
    EXPECT_EQ(c->overrides.database, std::filesystem::current_path() / "state/x.db");
    EXPECT_EQ(c->overrides.socket, std::filesystem::current_path() / "x.sock");
    EXPECT_EQ(c->config_path, "devlistd.toml");
}

TEST(command_line_test, help_and_version_need_no_configuration) {
    auto h = parse({"--help"});
    ASSERT_TRUE(h);
    EXPECT_EQ(h->action, command_action::help);
    auto short_help = parse({"-h", "--config", "x"});
    ASSERT_TRUE(short_help);
    EXPECT_EQ(short_help->action, command_action::help);
    auto v = parse({"--version"});
    ASSERT_TRUE(v);
    EXPECT_EQ(v->action, command_action::version);
}

TEST(command_line_test, usage_errors_say_what_is_wrong) {
    EXPECT_NE(refusal({}).find("--config FILE is required"), std::string::npos);
    EXPECT_NE(refusal({"--check-config"}).find("--config FILE is required"), std::string::npos);
    EXPECT_NE(refusal({"--config"}).find("--config needs a value"), std::string::npos);
    EXPECT_NE(refusal({"--config="}).find("--config needs a file"), std::string::npos);
    EXPECT_NE(refusal({"--config", "x", "--verbose"}).find("unknown argument '--verbose'"),
              std::string::npos);
    EXPECT_NE(refusal({"--config", "x", "stray"}).find("unknown argument 'stray'"),
              std::string::npos);
    auto level = refusal({"--config", "x", "--log-level", "loud"});
    EXPECT_NE(level.find("not 'loud'"), std::string::npos) << level;
    EXPECT_NE(refusal({"--config", "x", "--database="}).find("--database needs a path"),
              std::string::npos);
    EXPECT_NE(refusal({"--config", "x", "--socket"}).find("--socket needs a value"),
              std::string::npos);
}

TEST(command_line_test, every_level_name_parses) {
    for (auto level : {log_level_setting::debug, log_level_setting::info, log_level_setting::notice,
                       log_level_setting::warning, log_level_setting::error}) {
        auto c = parse({"--config", "x", "--log-level", log_level_name(level)});
        ASSERT_TRUE(c) << log_level_name(level);
        EXPECT_EQ(c->overrides.log_level, level);
    }
}

TEST(command_line_test, the_help_names_every_flag_and_the_credentials) {
    const std::string help = usage_text();
    for (const char* flag : {"--config", "--check-config", "--log-level", "--database", "--socket",
                             "--help", "--version", "$CREDENTIALS_DIRECTORY", "access_token",
                             "password", "sealing_key", "SIGHUP", "78"}) {
        EXPECT_NE(help.find(flag), std::string::npos) << flag;
    }
}

}  // namespace
}  // namespace devlist::daemon
