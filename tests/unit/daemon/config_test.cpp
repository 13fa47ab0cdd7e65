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

}  // namespace
}  // namespace devlist::daemon
