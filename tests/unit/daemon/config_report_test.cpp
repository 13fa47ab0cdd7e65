// devlistd --check-config: the effective configuration, printed so that it reads back to the
// same values, with secrets named only by their files; and the checks beyond the text.
#include "daemon/config_report.hpp"

#include <gtest/gtest.h>

#include <grp.h>
#include <unistd.h>

#include <string>

#include "tests/e2e/temp_dir.hpp"

namespace devlist::daemon {
namespace {

void expect_same(const config& a, const config& b) {
    EXPECT_EQ(a.homeserver, b.homeserver);
    EXPECT_EQ(a.user_id, b.user_id);
    EXPECT_EQ(a.device_id, b.device_id);
    EXPECT_EQ(a.access_token_file, b.access_token_file);
    EXPECT_EQ(a.password_file, b.password_file);
    EXPECT_EQ(a.database, b.database);
    EXPECT_EQ(a.ca_file, b.ca_file);
    EXPECT_EQ(a.device_display_name, b.device_display_name);
    EXPECT_EQ(a.sync_timeout, b.sync_timeout);
    EXPECT_EQ(a.log_level, b.log_level);
    EXPECT_EQ(a.sealing_key_file, b.sealing_key_file);
    EXPECT_EQ(a.one_time_key_target, b.one_time_key_target);
    EXPECT_EQ(a.one_time_keys_kept, b.one_time_keys_kept);
    EXPECT_EQ(a.bootstrap_cross_signing, b.bootstrap_cross_signing);
    EXPECT_EQ(a.socket, b.socket);
    EXPECT_EQ(a.socket_mode, b.socket_mode);
    EXPECT_EQ(a.socket_group, b.socket_group);
    EXPECT_EQ(a.allowed_uids, b.allowed_uids);
    EXPECT_EQ(a.allowed_gids, b.allowed_gids);
    EXPECT_EQ(a.key_access_uids, b.key_access_uids);
    EXPECT_EQ(a.key_access_gids, b.key_access_gids);
}

class config_report_test : public ::testing::Test {
  protected:
    test::temp_dir dir{"devlist-report"};

    config load(const std::string& text, const config_overrides& overrides = {}) {
        auto c = load_config(dir.write_file("devlistd.toml", text), overrides);
        EXPECT_TRUE(c) << c.error().detail;
        return c ? *c : config{};
    }
    // The report, read back as a configuration file.
    config read_back(const config& c, const config_overrides& overrides = {}) {
        const auto text = describe_config(c, overrides, dir / "devlistd.toml");
        auto again = load_config(dir.write_file("report.toml", text));
        EXPECT_TRUE(again) << again.error().detail << "\n" << text;
        return again ? *again : config{};
    }
    // The test's own primary group, which exists on any machine.
    static std::string group_name() {
        const group* g = ::getgrgid(::getgid());
        return g ? g->gr_name : "root";
    }
    static std::string minimal() {
        return "homeserver = \"https://matrix.example.org\"\n"
               "user_id = \"@bot:example.org\"\n"
               "password_file = \"password\"\n"
               "database = \"devlistd.db\"\n";
    }
};

TEST_F(config_report_test, a_minimal_file_reads_back_with_its_defaults) {
    auto c = load(minimal());
    auto text = describe_config(c, {}, dir / "devlistd.toml");
    expect_same(c, read_back(c));
    // Every key is there, set or as a comment saying what its absence means.
    for (const char* key :
         {"homeserver",         "user_id",       "device_id",        "access_token_file",
          "password_file",      "database",      "ca_file",          "device_display_name",
          "sync_timeout_ms",    "log_level",     "sealing_key_file", "one_time_key_target",
          "one_time_keys_kept", "cross_signing", "socket",           "socket_mode",
          "socket_group",       "allowed_uids",  "allowed_gids",     "key_access_uids",
          "key_access_gids"}) {
        EXPECT_NE(text.find(key), std::string::npos) << key << " is not in\n" << text;
    }
    EXPECT_NE(text.find("sync_timeout_ms = 30000\n"), std::string::npos) << text;
    EXPECT_NE(text.find("socket_mode = \"0660\"\n"), std::string::npos) << text;
    EXPECT_NE(text.find("# device_id is not set"), std::string::npos) << text;
    EXPECT_NE(text.find((dir / "devlistd.db.key").string()), std::string::npos) << text;
}

TEST_F(config_report_test, every_key_set_reads_back_the_same) {
    auto c = load(minimal() +
                  "device_id = \"BOT\"\n"
                  "access_token_file = \"token\"\n"
                  "ca_file = \"ca \\\"quoted\\\".pem\"\n"
                  "device_display_name = \"my bot\\\\1\"\n"
                  "sync_timeout_ms = 5000\n"
                  "log_level = \"warning\"\n"
                  "sealing_key_file = \"seal.key\"\n"
                  "one_time_key_target = 20\n"
                  "one_time_keys_kept = 40\n"
                  "cross_signing = \"bootstrap\"\n"
                  "socket = \"api.sock\"\n"
                  "socket_mode = \"0600\"\n"
                  "socket_group = \"bots\"\n"
                  "allowed_uids = [1000, 1001]\n"
                  "allowed_gids = [100]\n"
                  "key_access_uids = []\n");
    expect_same(c, read_back(c));
}

TEST_F(config_report_test, secrets_are_named_by_their_file_and_their_source) {
    std::filesystem::create_directory(dir / "credentials");
    dir.write_file("credentials/password", "hunter2-in-a-credential\n");
    dir.write_file("token", "syt_never_printed\n");
    config_overrides overrides;
    overrides.credentials_directory = dir / "credentials";
    overrides.log_level = log_level_setting::debug;
    auto c = load(
        "homeserver = \"https://matrix.example.org\"\n"
        "user_id = \"@bot:example.org\"\n"
        "access_token_file = \"token\"\n"
        "database = \"devlistd.db\"\n",
        overrides);
    const auto text = describe_config(c, overrides, dir / "devlistd.toml");
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
    EXPECT_EQ(text.find("syt_never_printed"), std::string::npos) << text;
    EXPECT_NE(text.find("password_file = \"" + (dir / "credentials/password").string() +
                        "\"  # systemd credential password ($CREDENTIALS_DIRECTORY)"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("access_token_file = \"" + (dir / "token").string() +
                        "\"  # the secret is not shown"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("log_level = \"debug\"  # --log-level"), std::string::npos) << text;
    expect_same(c, read_back(c, overrides));
}

TEST_F(config_report_test, the_checks_pass_when_every_file_is_usable) {
    dir.write_file("password", "hunter2\n");
    dir.write_file("ca.pem", "not parsed here\n");
    dir.write_file("seal.key", std::string(32, 's'));
    auto c = load(minimal() + "ca_file = \"ca.pem\"\nsealing_key_file = \"seal.key\"\n" +
                  "socket_group = \"" + group_name() + "\"\n");
    auto r = check_config_files(c);
    EXPECT_TRUE(r) << r.error().detail;
}

TEST_F(config_report_test, the_checks_name_the_key_and_never_the_secret) {
    const auto refusal = [&](const std::string& extra) {
        auto c = load(minimal() + extra);
        auto r = check_config_files(c);
        EXPECT_FALSE(r) << extra;
        if (r) return std::string();
        EXPECT_EQ(r.error(), errc::invalid_argument);
        return r.error().detail;
    };
    auto missing = refusal("");
    EXPECT_NE(missing.find("'password_file'"), std::string::npos) << missing;
    EXPECT_NE(missing.find((dir / "password").string()), std::string::npos) << missing;

    dir.write_file("password", "hunter2-first-line\nsecond-line\n");
    auto two_lines = refusal("");
    EXPECT_NE(two_lines.find("one line"), std::string::npos) << two_lines;
    EXPECT_EQ(two_lines.find("hunter2"), std::string::npos) << two_lines;
    EXPECT_EQ(two_lines.find("second-line"), std::string::npos) << two_lines;

    dir.write_file("password", "hunter2\n");
    auto no_key = refusal("sealing_key_file = \"nope.key\"\n");
    EXPECT_NE(no_key.find("'sealing_key_file'"), std::string::npos) << no_key;
    EXPECT_NE(no_key.find("does not exist"), std::string::npos) << no_key;

    dir.write_file("short.key", "not-a-key-but-secret\n");
    auto bad_key = refusal("sealing_key_file = \"short.key\"\n");
    EXPECT_NE(bad_key.find("'sealing_key_file'"), std::string::npos) << bad_key;
    EXPECT_EQ(bad_key.find("not-a-key-but-secret"), std::string::npos) << bad_key;

    dir.write_file("devlistd.db.key", "broken default key\n");
    auto bad_default = refusal("");
    EXPECT_NE(bad_default.find("'sealing_key_file'"), std::string::npos) << bad_default;
    std::filesystem::remove(dir / "devlistd.db.key");

    auto ca = refusal("ca_file = \"missing-ca.pem\"\n");
    EXPECT_NE(ca.find("'ca_file'"), std::string::npos) << ca;

    auto group = refusal("socket_group = \"no-such-group-devlist\"\n");
    EXPECT_NE(group.find("'socket_group'"), std::string::npos) << group;
}

}  // namespace
}  // namespace devlist::daemon
