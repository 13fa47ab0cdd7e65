// systemd credentials: found where the configuration names no file, blank ones ignored, and the
// file's own keys and the command-line flags taking precedence as documented.
#include "daemon/credentials.hpp"

#include <gtest/gtest.h>

#include <string>

#include "daemon/config.hpp"
#include "tests/e2e/temp_dir.hpp"

namespace devlist::daemon {
namespace {

class credentials_test : public ::testing::Test {
  protected:
    test::temp_dir dir{"devlist-credentials"};
    std::filesystem::path credentials = dir / "credentials";

    void SetUp() override { std::filesystem::create_directory(credentials); }

    void credential(const std::string& name, const std::string& content) {
        dir.write_file("credentials/" + name, content);
    }
    result<config> load(const std::string& text, config_overrides overrides = {}) {
        overrides.credentials_directory = credentials;
        return load_config(dir.write_file("devlistd.toml", text), overrides);
    }
    static std::string account() {
        return "homeserver = \"https://matrix.example.org\"\n"
               "user_id = \"@bot:example.org\"\n"
               "database = \"devlistd.db\"\n";
    }
};

TEST_F(credentials_test, a_credential_is_found_only_when_it_holds_something) {
    EXPECT_FALSE(find_credential(credentials, "password"));  // absent
    credential("password", "");
    EXPECT_FALSE(find_credential(credentials, "password"));
    credential("password", "\n");  // the units' SetCredential= default
    EXPECT_FALSE(find_credential(credentials, "password"));
    credential("password", "\r\n");
    EXPECT_FALSE(find_credential(credentials, "password"));
    credential("password", "x\n");
    EXPECT_EQ(find_credential(credentials, "password"), credentials / "password");
    credential("sealing_key", std::string(32, '\n'));  // raw key bytes may be anything
    EXPECT_EQ(find_credential(credentials, "sealing_key"), credentials / "sealing_key");
    EXPECT_FALSE(find_credential(dir / "no-such-folder", "password"));
}

TEST_F(credentials_test, credentials_fill_the_secrets_the_file_leaves_out) {
    credential("password", "hunter2\n");
    credential("access_token", "syt_token\n");
    credential("sealing_key", std::string(32, 'k'));
    auto c = load(account());
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->password_file, credentials / "password");
    EXPECT_EQ(c->access_token_file, credentials / "access_token");
    EXPECT_EQ(c->sealing_key_file, credentials / "sealing_key");
}

TEST_F(credentials_test, a_file_key_wins_over_its_credential_alone) {
    credential("password", "hunter2\n");
    credential("access_token", "syt_token\n");
    auto c = load(account() +
                  "password_file = \"my-password\"\n"
                  "sealing_key_file = \"my.key\"\n");
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->password_file, dir / "my-password");
    EXPECT_EQ(c->access_token_file, credentials / "access_token");  // not set in the file
    EXPECT_EQ(c->sealing_key_file, dir / "my.key");
}

TEST_F(credentials_test, blank_credentials_are_no_secret) {
    credential("password", "\n");
    credential("access_token", "\n");
    credential("sealing_key", "\n");
    auto refused = load(account());
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().detail.find("systemd credential"), std::string::npos)
        << refused.error().detail;

    credential("password", "hunter2\n");
    auto c = load(account());
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_FALSE(c->access_token_file);
    EXPECT_FALSE(c->sealing_key_file);  // DATABASE.key, made at the first start
}

TEST_F(credentials_test, without_a_credentials_folder_none_is_looked_for) {
    credential("password", "hunter2\n");
    auto c = load_config(dir.write_file("devlistd.toml", account()));
    EXPECT_FALSE(c);
}

TEST_F(credentials_test, command_line_flags_win_over_the_file) {
    credential("password", "hunter2\n");
    config_overrides flags;
    flags.log_level = log_level_setting::debug;
    flags.database = "/var/lib/devlistd/other.db";
    flags.socket = "/run/devlistd/other.sock";
    auto c = load(account() + "log_level = \"error\"\nsocket = \"mine.sock\"\n", flags);
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->log_level, log_level_setting::debug);
    EXPECT_EQ(c->database, "/var/lib/devlistd/other.db");
    EXPECT_EQ(c->socket, std::filesystem::path("/run/devlistd/other.sock"));
}

TEST_F(credentials_test, a_database_flag_makes_the_key_optional) {
    credential("password", "hunter2\n");
    const std::string no_database =
        "homeserver = \"https://matrix.example.org\"\n"
        "user_id = \"@bot:example.org\"\n";
    EXPECT_FALSE(load(no_database));
    config_overrides flags;
    flags.database = "/var/lib/devlistd/x/devlistd.db";
    auto c = load(no_database, flags);
    ASSERT_TRUE(c) << c.error().detail;
    EXPECT_EQ(c->database, "/var/lib/devlistd/x/devlistd.db");
}

}  // namespace
}  // namespace devlist::daemon
