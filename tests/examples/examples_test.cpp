// The two example bots, run as a bot's owner would run them, against the test homeserver: each
// must list the devices the homeserver has and see the device added after it started.
#include <chrono>
#include <string>

#include "tests/e2e/daemon_process.hpp"
#include "tests/library/library_fixture.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class examples_test : public library_fixture {
  protected:
    // Runs a bot until it printed "ready", adds Alice's phone, and waits for the bot to see
    // it and end.
    void run_bot(process_options options) {
        options.log_file = dir / "bot.log";
        daemon_process process(std::move(options));
        ASSERT_TRUE(process.wait_for_output("ready\n", clock::now() + 30s)) << process.output();
        EXPECT_NE(process.output().find("@alice:localhost has 1 device(s)\n"), std::string::npos)
            << process.output();
        EXPECT_NE(
            process.output().find("device ALICE1 ed25519=" + served_ed25519(alice, "ALICE1") +
                                  " curve25519=" + alice1.curve25519 + " name=Alice's laptop"),
            std::string::npos)
            << process.output();

        auto phone = hs.add_device(alice, "ALICE2", "Alice's phone");
        auto exit = process.wait_exit(clock::now() + 30s);
        ASSERT_TRUE(exit) << "the bot did not end:\n" << process.output();
        EXPECT_TRUE(exit->exited_with(0)) << *exit << "\n" << process.output();
        EXPECT_NE(process.output().find("new device ALICE2 ed25519=" + phone.ed25519 + "\n"),
                  std::string::npos)
            << process.output();
        EXPECT_EQ(process.output().find("new device ALICE1"), std::string::npos)
            << process.output();
        last_output = process.output();
    }

    std::string last_output;  // of the last run_bot
};

TEST_F(examples_test, the_cpp_bot_lists_the_devices_and_sees_a_new_one) {
    run_bot({CPP_BOT_PATH, {write_config().string(), alice, "--until-new-device"}});
}

TEST_F(examples_test, the_python_bot_lists_the_devices_and_sees_a_new_one_through_the_callback) {
    run_bot(
        {PYTHON3_PATH,
         {PYTHON_BOT_PATH, LIBDEVLIST_PATH, write_config().string(), alice, "--until-new-device"}});
    EXPECT_NE(last_output.find("libdevlist 0.1.0\n"), std::string::npos) << last_output;
    EXPECT_NE(last_output.find("synced as @bot:localhost on BOTDEVICE: "), std::string::npos)
        << last_output;
}

TEST_F(examples_test, the_cpp_bot_goes_on_where_it_stopped) {
    // The first run acknowledges what it printed; the second shows only what came after.
    const auto config = write_config();
    {
        daemon_process first({CPP_BOT_PATH, {config.string(), alice, "--until-new-device"}});
        ASSERT_TRUE(first.wait_for_output("ready\n", clock::now() + 30s)) << first.output();
        hs.add_device(alice, "ALICE2");
        auto exit = first.wait_exit(clock::now() + 30s);
        ASSERT_TRUE(exit && exit->exited_with(0)) << first.output();
    }
    daemon_process second({CPP_BOT_PATH, {config.string(), alice, "--until-new-device"}});
    ASSERT_TRUE(second.wait_for_output("ready\n", clock::now() + 30s)) << second.output();
    EXPECT_NE(second.output().find("has 2 device(s)"), std::string::npos) << second.output();
    hs.add_device(alice, "ALICE3");
    auto exit = second.wait_exit(clock::now() + 30s);
    ASSERT_TRUE(exit && exit->exited_with(0)) << second.output();
    EXPECT_NE(second.output().find("new device ALICE3"), std::string::npos) << second.output();
    EXPECT_NE(second.output().find("device ALICE2 ed25519="), std::string::npos) << second.output();
    // ALICE2's event was acknowledged by the first run: not shown again.
    EXPECT_EQ(second.output().find("\"device_id\":\"ALICE2\""), std::string::npos)
        << second.output();
}

}  // namespace
}  // namespace devlist::test
