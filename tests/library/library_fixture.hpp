// A bot's setting for the library tests: the in-process test homeserver with the bot's account
// and Alice (one device) in an encrypted room with it, and a private folder for the bot's
// database. The tests link libdevlist.so and see only its public headers, as a bot does.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>

#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace devlist::test {

class library_fixture : public ::testing::Test {
  protected:
    static constexpr const char* bot = "@bot:localhost";
    static constexpr const char* bot_password = "bot-password";
    static constexpr const char* alice = "@alice:localhost";

    testing::test_homeserver hs;
    temp_dir dir{"dl-lib"};
    testing::device_identity alice1;
    std::string room;

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, bot_password);
        hs.add_user(alice, "pw");
        alice1 = hs.add_device(alice, "ALICE1", "Alice's laptop");
        room = hs.create_room(alice, true);
        hs.join(room, bot);
        dir.write_file("password", std::string(bot_password) + "\n");
    }

    void TearDown() override {
        if (HasFailure()) dir.keep();
    }

    // The bot's configuration file, as a bot would write it: secrets in files, paths relative
    // to the file's folder.
    std::string config_toml(const std::string& extra = {}) const {
        return "homeserver = \"" + hs.base_url() + "\"\n" + "user_id = \"" + bot + "\"\n" +
               "device_id = \"BOTDEVICE\"\n"
               "password_file = \"password\"\n"
               "database = \"bot.db\"\n"
               "sync_timeout_ms = 2000\n"
               "log_level = \"warning\"\n" +
               extra;
    }

    std::filesystem::path write_config(const std::string& extra = {}) const {
        return dir.write_file("bot.toml", config_toml(extra));
    }

    std::string served_ed25519(const std::string& user, const std::string& device) const {
        auto keys = hs.served_device_keys(user, device);
        if (!keys) return {};
        return (*keys)["keys"]["ed25519:" + device].as_string();
    }
};

}  // namespace devlist::test
