#include "daemon/config.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace devlist::daemon {
namespace {

class config_test : public ::testing::Test {
  protected:
    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("devlist-config-" + std::to_string(std::random_device{}()));

    void SetUp() override { std::filesystem::create_directories(dir); }
    void TearDown() override { std::filesystem::remove_all(dir); }

    std::filesystem::path write(const std::string& name, const std::string& text) {
        auto path = dir / name;
        std::ofstream(path, std::ios::binary) << text;
        return path;
    }
    static std::string minimal() {
        return "homeserver = \"https://matrix.example.org\"\n"
               "user_id = \"@bot:example.org\"\n"
               "password_file = \"secret\"\n"
               "database = \"state/devlistd.db\"\n";
    }
    // The error for a configuration, which must be refused.
    std::string refusal(const std::string& text) {
        auto c = load_config(write("devlistd.toml", text));
        EXPECT_FALSE(c) << text;
        return c ? std::string() : c.error().detail;
    }
};

TEST_F(config_test, a_minimal_file_gets_defaults_and_paths_relative_to_itself) {
    auto c = load_config(write("devlistd.toml", minimal()));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->homeserver, "https://matrix.example.org");
    EXPECT_EQ(c->user_id, "@bot:example.org");
    EXPECT_EQ(c->password_file, dir / "secret");
    EXPECT_EQ(c->database, dir / "state/devlistd.db");
    EXPECT_FALSE(c->access_token_file);
    EXPECT_FALSE(c->device_id);
    EXPECT_EQ(c->sync_timeout.count(), 30000);
    EXPECT_EQ(c->log_level, log_level_setting::info);
}

TEST_F(config_test, every_key_is_read) {
    auto c = load_config(write("devlistd.toml", minimal() + "device_id = \"BOT\"\n"
                                                            "access_token_file = \"/etc/token\"\n"
                                                            "ca_file = \"ca.pem\"\n"
                                                            "device_display_name = \"my bot\"\n"
                                                            "sync_timeout_ms = 5000\n"
                                                            "log_level = \"debug\"\n"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->device_id, "BOT");
    EXPECT_EQ(c->access_token_file, std::filesystem::path("/etc/token"));
    EXPECT_EQ(c->ca_file, dir / "ca.pem");
    EXPECT_EQ(c->device_display_name, "my bot");
    EXPECT_EQ(c->sync_timeout.count(), 5000);
    EXPECT_EQ(c->log_level, log_level_setting::debug);
}

TEST_F(config_test, errors_name_the_key_and_the_problem) {
    EXPECT_NE(refusal(minimal() + "homeservr = \"x\"\n").find("'homeservr': unknown key"),
              std::string::npos);
    EXPECT_NE(refusal("user_id = \"@a:b\"\npassword_file = \"p\"\ndatabase = \"d\"\n")
                  .find("'homeserver': is required"),
              std::string::npos);
    EXPECT_NE(refusal("homeserver = \"https://h\"\npassword_file = \"p\"\ndatabase = \"d\"\n")
                  .find("'user_id': is required"),
              std::string::npos);
    EXPECT_NE(refusal("homeserver = \"https://h\"\nuser_id = \"@a:b\"\ndatabase = \"d\"\n")
                  .find("'access_token_file': or password_file is required"),
              std::string::npos);
    EXPECT_NE(refusal("homeserver = \"https://h\"\nuser_id = \"@a:b\"\npassword_file = \"p\"\n")
                  .find("'database': is required"),
              std::string::npos);
    EXPECT_NE(refusal("homeserver = \"ftp://h\"\nuser_id = \"@a:b\"\npassword_file = \"p\"\n"
                      "database = \"d\"\n")
                  .find("'homeserver'"),
              std::string::npos);
    EXPECT_NE(refusal("homeserver = \"https://h\"\nuser_id = \"bot\"\npassword_file = \"p\"\n"
                      "database = \"d\"\n")
                  .find("'user_id': is not a valid Matrix user ID"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "sync_timeout_ms = \"soon\"\n").find("'sync_timeout_ms'"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "sync_timeout_ms = 999999\n").find("0 to 300000"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "log_level = \"loud\"\n").find("'log_level': must be one of"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "device_id = 7\n").find("'device_id': must be a string"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "device_id = \"has space\"\n").find("'device_id'"),
              std::string::npos);
}

TEST_F(config_test, a_syntax_error_says_where) {
    std::string e = refusal(minimal() + "this is not toml\n");
    EXPECT_NE(e.find("line 5"), std::string::npos) << e;
}

TEST_F(config_test, secrets_come_from_files_and_never_appear_in_errors) {
    auto ok = read_secret_file(write("token", "s3cr3t-token\n"), "access token");
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, "s3cr3t-token");
    auto empty = read_secret_file(write("empty", "\n"), "password");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().detail.find("is empty"), std::string::npos);
    auto two = read_secret_file(write("two", "s3cr3t-one\ns3cr3t-two\n"), "password");
    ASSERT_FALSE(two);
    EXPECT_NE(two.error().detail.find("one line"), std::string::npos);
    EXPECT_EQ(two.error().detail.find("s3cr3t"), std::string::npos);
    auto missing = read_secret_file(dir / "nope", "password");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().detail.find("cannot read the password file"), std::string::npos);
}

TEST_F(config_test, key_maintenance_keys_have_defaults_and_are_checked) {
    auto c = load_config(write("devlistd.toml", minimal()));
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->sealing_key_file);
    EXPECT_EQ(c->one_time_key_target, 50u);
    EXPECT_EQ(c->one_time_keys_kept, 5000u);
    EXPECT_FALSE(c->bootstrap_cross_signing);

    c = load_config(write("devlistd.toml", minimal() + "sealing_key_file = \"keys/seal\"\n"
                                                       "one_time_key_target = 20\n"
                                                       "one_time_keys_kept = 100\n"
                                                       "cross_signing = \"bootstrap\"\n"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->sealing_key_file, dir / "keys/seal");
    EXPECT_EQ(c->one_time_key_target, 20u);
    EXPECT_EQ(c->one_time_keys_kept, 100u);
    EXPECT_TRUE(c->bootstrap_cross_signing);

    EXPECT_NE(refusal(minimal() + "one_time_key_target = 0\n")
                  .find("'one_time_key_target': must be an integer from 1 to 1000"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "one_time_key_target = \"50\"\n").find("'one_time_key_target'"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "one_time_key_target = 60\none_time_keys_kept = 59\n")
                  .find("'one_time_keys_kept': must be at least one_time_key_target"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "cross_signing = \"on\"\n")
                  .find("'cross_signing': must be \"off\" or \"bootstrap\""),
              std::string::npos);
}

TEST_F(config_test, socket_keys_have_defaults_and_are_checked) {
    auto c = load_config(write("devlistd.toml", minimal()));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_FALSE(c->socket);  // devlistd then uses /run/devlistd/devlistd.sock
    EXPECT_EQ(c->socket_mode, 0660u);
    EXPECT_FALSE(c->socket_group);
    EXPECT_TRUE(c->allowed_uids.empty());
    EXPECT_TRUE(c->allowed_gids.empty());
    EXPECT_FALSE(c->key_access_uids);  // absent: the daemon's own uid alone
    EXPECT_FALSE(c->key_access_gids);

    c = load_config(write("devlistd.toml", minimal() + "socket = \"run/api.sock\"\n"
                                                       "socket_mode = \"0600\"\n"
                                                       "socket_group = \"devlist\"\n"
                                                       "allowed_uids = [1000, 0]\n"
                                                       "allowed_gids = [100]\n"
                                                       "key_access_uids = []\n"
                                                       "key_access_gids = [4294967294]\n"));
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->socket, dir / "run/api.sock");
    EXPECT_EQ(c->socket_mode, 0600u);
    EXPECT_EQ(c->socket_group, "devlist");
    EXPECT_EQ(c->allowed_uids, (std::vector<std::uint32_t>{1000, 0}));
    EXPECT_EQ(c->allowed_gids, std::vector<std::uint32_t>{100});
    ASSERT_TRUE(c->key_access_uids);
    EXPECT_TRUE(c->key_access_uids->empty());  // set, empty: nobody takes keys
    EXPECT_EQ(c->key_access_gids, std::vector<std::uint32_t>{4294967294u});

    for (const char* mode : {"660x", "0888", "66", "01777", "0460"}) {
        EXPECT_NE(refusal(minimal() + "socket_mode = \"" + mode + "\"\n").find("'socket_mode'"),
                  std::string::npos)
            << mode;
    }
    EXPECT_NE(refusal(minimal() + "socket_mode = 660\n").find("'socket_mode': must be a string"),
              std::string::npos);
    EXPECT_NE(refusal(minimal() + "allowed_uids = 1000\n").find("'allowed_uids': must be an array"),
              std::string::npos);
    for (const char* ids : {"[-1]", "[4294967295]", "[\"bot\"]", "[1.5]"}) {
        EXPECT_NE(refusal(minimal() + "key_access_uids = " + ids + "\n")
                      .find("'key_access_uids': must hold integers"),
                  std::string::npos)
            << ids;
    }
    EXPECT_NE(refusal(minimal() + "socket = \"\"\n").find("'socket': must not be empty"),
              std::string::npos);
}

}  // namespace
}  // namespace devlist::daemon
