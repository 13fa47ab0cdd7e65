// Issue 6, end to end: the real devlistd as systemd runs it — the notify protocol (READY=1 once
// the socket answers, STATUS= as the engine's phase changes, WATCHDOG=1 at half of
// WATCHDOG_USEC and only for our pid, RELOADING=1 around a reload, STOPPING=1), socket
// activation with systemd-socket-activate, SIGTERM during a long-poll and during a one-time key
// upload (then a restart that loses nothing), SIGHUP, --check-config and its exit statuses, and
// every output of a whole run searched for every secret it used.
//
// The test plays the service manager: it listens on the NOTIFY_SOCKET it hands to devlistd.
// Waits are on devlistd's output, the notify socket and the homeserver's request log, never
// sleeps.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "crypto/base64.hpp"
#include "storage/store.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/notify_listener.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr const char* bot = "@bot:localhost";
constexpr const char* device = "BOTDEVICE";
constexpr auto patience = 15s;
constexpr std::string_view keys_upload = "/_matrix/client/v3/keys/upload";
constexpr std::string_view sync_path = "/_matrix/client/v3/sync";

std::string random_text(std::string_view prefix) {
    std::random_device random;
    std::string out(prefix);
    for (int i = 0; i < 4; ++i) {
        char part[16];
        std::snprintf(part, sizeof part, "%08x", random());
        out += part;
    }
    return out;
}

std::size_t count_of(std::string_view text, std::string_view needle) {
    std::size_t n = 0;
    for (auto at = text.find(needle); at != std::string_view::npos;
         at = text.find(needle, at + needle.size())) {
        ++n;
    }
    return n;
}

bool status_starts_with(const notify_message& m, std::string_view prefix) {
    auto status = m.value("STATUS");
    return status && status->starts_with(prefix);
}

class systemd_test : public ::testing::Test {
  protected:
    using environment = std::map<std::string, std::optional<std::string>>;

    testing::test_homeserver hs;
    temp_dir dir{"devlist-systemd"};
    const std::string password = random_text("pw-");
    std::vector<std::unique_ptr<daemon_process>> runs;

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, password);
        dir.write_file("password", password + "\n");
        write_config("");
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                std::cerr << "---- " << runs[i]->options().executable.filename().string() << " run "
                          << i + 1 << " ----\n"
                          << runs[i]->output();
            }
            dir.keep();
            std::cerr << "---- kept in " << dir.path().string() << "\n";
        }
        runs.clear();
        hs.stop();
    }

    // The account, the database and the socket in the test's folder; `extra` adds keys.
    void write_config(const std::string& extra, bool password_file = true,
                      int sync_timeout_ms = 2000) {
        dir.write_file("devlistd.toml",
                       "homeserver = \"" + hs.base_url() + "\"\n" + "user_id = \"" + bot + "\"\n" +
                           "device_id = \"" + device + "\"\n" +
                           (password_file ? "password_file = \"password\"\n" : "") +
                           "database = \"devlistd.db\"\n"
                           "socket = \"devlistd.sock\"\n"
                           "sync_timeout_ms = " +
                           std::to_string(sync_timeout_ms) + "\n" + extra);
    }

    // Starts a program with none of the service manager's variables but those in `env`.
    daemon_process& spawn(const std::filesystem::path& executable, std::vector<std::string> args,
                          const environment& env = {}) {
        process_options o;
        o.executable = executable;
        o.arguments = std::move(args);
        o.environment = {
            {"NOTIFY_SOCKET", std::nullopt},    {"WATCHDOG_USEC", std::nullopt},
            {"WATCHDOG_PID", std::nullopt},     {"LISTEN_FDS", std::nullopt},
            {"LISTEN_PID", std::nullopt},       {"LISTEN_FDNAMES", std::nullopt},
            {"JOURNAL_STREAM", std::nullopt},   {"CREDENTIALS_DIRECTORY", std::nullopt},
            {"DEVLIST_FAILPOINT", std::nullopt}};
        for (const auto& [name, value] : env)
            o.environment[name] = value;
        o.log_file =
            dir / (executable.filename().string() + "-" + std::to_string(runs.size() + 1) + ".log");
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        return *runs.back();
    }

    std::vector<std::string> config_args(std::vector<std::string> more = {}) {
        std::vector<std::string> args{"--config", (dir / "devlistd.toml").string()};
        args.insert(args.end(), more.begin(), more.end());
        return args;
    }

    daemon_process& start(const environment& env = {}) {
        return spawn(DEVLISTD_PATH, config_args(), env);
    }

    struct finished {
        process_exit exit;
        std::string output;
    };
    // Runs a program to its end.
    finished run_to_end(const std::filesystem::path& executable, std::vector<std::string> args,
                        const environment& env = {}) {
        auto& p = spawn(executable, std::move(args), env);
        auto e = p.wait_exit(clock::now() + patience);
        if (!e) {
            ADD_FAILURE() << executable << " did not end";
            return {p.kill(), p.output()};
        }
        return {*e, p.output()};
    }

    // GET /v1/status over a socket, with curl; the body, or nullopt (a failure) if none.
    std::optional<std::string> status_over(const std::filesystem::path& socket) {
        auto r = run_to_end(CURL_PATH, {"-sS", "--fail", "--max-time", "10", "--unix-socket",
                                        socket.string(), "http://devlistd/v1/status"});
        EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << ": " << r.output;
        if (!r.exit.exited_with(0)) return std::nullopt;
        return r.output;
    }

    static void stop_cleanly(daemon_process& d) {
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e) << "no end after SIGTERM";
        EXPECT_TRUE(e->exited_with(0)) << *e;
    }

    storage::store open_store() {
        auto s = storage::store::open(dir / "devlistd.db");
        EXPECT_TRUE(s) << s.error().message();
        return std::move(*s);
    }
};

TEST_F(systemd_test, notifies_ready_status_watchdog_and_stopping) {
    notify_listener notify(dir / "notify");
    auto& d = start({{"NOTIFY_SOCKET", notify.path().string()}, {"WATCHDOG_USEC", "400000"}});

    auto ready =
        notify.wait_for([](const auto& m) { return m.has("READY=1"); }, clock::now() + patience);
    ASSERT_TRUE(ready) << "no READY=1";
    EXPECT_TRUE(ready->value("STATUS")) << ready->text;
    // Ready means serving: the socket answers right away.
    auto status = status_over(dir / "devlistd.sock");
    ASSERT_TRUE(status);
    EXPECT_NE(status->find("\"user_id\":\"@bot:localhost\""), std::string::npos) << *status;

    ASSERT_TRUE(notify.wait_for([](const auto& m) { return status_starts_with(m, "syncing: "); },
                                clock::now() + patience));
    // A failing homeserver shows as backing off, with the reason; then syncing again.
    hs.inject({std::string(sync_path), testing::fault_action::server_error{503}, "GET", 2});
    auto backing =
        notify.wait_for([](const auto& m) { return status_starts_with(m, "backing off: "); },
                        clock::now() + patience);
    ASSERT_TRUE(backing) << "no STATUS=backing off";
    EXPECT_NE(backing->text.find("503"), std::string::npos) << backing->text;
    ASSERT_TRUE(notify.wait_for([](const auto& m) { return status_starts_with(m, "syncing: "); },
                                clock::now() + patience));

    // WATCHDOG=1 every half WATCHDOG_USEC: eleven pings span ten intervals of 200 ms. Only the
    // average is asserted; a busy test machine may read one late.
    std::vector<clock::time_point> pings;
    while (pings.size() < 11) {
        auto m = notify.wait_for([](const auto& x) { return x.has("WATCHDOG=1"); },
                                 clock::now() + patience);
        ASSERT_TRUE(m) << "WATCHDOG=1 stopped after " << pings.size();
        pings.push_back(m->read_at);
    }
    const auto span = pings.back() - pings.front();
    EXPECT_GE(span, 1500ms) << "pinged more often than every 200 ms";
    EXPECT_LE(span, 4000ms) << "pinged less often than every WATCHDOG_USEC (400 ms)";

    const auto before_stop = notify.count();
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(d));
    notify.drain();
    const auto all = notify.received();
    auto stopping = std::find_if(all.begin() + static_cast<std::ptrdiff_t>(before_stop), all.end(),
                                 [](const auto& m) { return m.has("STOPPING=1"); });
    ASSERT_NE(stopping, all.end()) << "no STOPPING=1";
    EXPECT_EQ(stopping->value("STATUS"), "stopping: received SIGTERM");
    EXPECT_EQ(all.back().value("STATUS"), "stopped");
}

TEST_F(systemd_test, the_watchdog_is_fed_only_when_it_is_meant_for_devlistd) {
    notify_listener notify(dir / "notify");
    // WATCHDOG_PID names the test process: a watchdog of another process, never to be fed.
    auto& other = start({{"NOTIFY_SOCKET", notify.path().string()},
                         {"WATCHDOG_USEC", "100000"},
                         {"WATCHDOG_PID", std::to_string(::getpid())}});
    ASSERT_TRUE(
        notify.wait_for([](const auto& m) { return m.has("READY=1"); }, clock::now() + patience));
    // Twenty intervals of 50 ms: a ping would have come.
    EXPECT_FALSE(
        notify.wait_for([](const auto& m) { return m.has("WATCHDOG=1"); }, clock::now() + 1s))
        << "fed the watchdog of pid " << ::getpid();
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(other));

    // WATCHDOG_PID set to devlistd's own pid (sh execs it, keeping the pid): fed.
    notify_listener mine(dir / "notify-2");
    auto& own = spawn("/bin/sh",
                      {"-c", "WATCHDOG_PID=$$ exec \"$0\" \"$@\"", DEVLISTD_PATH, "--config",
                       (dir / "devlistd.toml").string()},
                      {{"NOTIFY_SOCKET", mine.path().string()}, {"WATCHDOG_USEC", "100000"}});
    EXPECT_TRUE(
        mine.wait_for([](const auto& m) { return m.has("WATCHDOG=1"); }, clock::now() + patience))
        << "no WATCHDOG=1 for our own pid";
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(own));
}

TEST_F(systemd_test, socket_activation_serves_on_the_inherited_socket_and_leaves_it_alone) {
    // A mode devlistd would give a socket of its own; the activated one must keep systemd's.
    write_config("socket_mode = \"0600\"\n");
    const auto activated = dir / "activated.sock";
    // Like systemd, systemd-socket-activate listens first and starts devlistd (same pid) when
    // the first client connects.
    auto& d = spawn(SYSTEMD_SOCKET_ACTIVATE_PATH, {"-l", activated.string(), DEVLISTD_PATH,
                                                   "--config", (dir / "devlistd.toml").string()});
    ASSERT_TRUE(d.wait_for_output("Listening on " + activated.string(), clock::now() + patience));
    struct stat before {};
    ASSERT_EQ(::stat(activated.c_str(), &before), 0);
    ASSERT_NE(before.st_mode & 07777, 0600u) << "choose another mode for the test";

    // The first client waits in the backlog while devlistd starts, then gets its answer.
    auto status = status_over(activated);
    ASSERT_TRUE(status);
    EXPECT_NE(status->find("\"user_id\":\"@bot:localhost\""), std::string::npos) << *status;
    const auto out = d.output();
    EXPECT_NE(out.find("socket API on " + activated.string() + ", handed over by systemd"),
              std::string::npos);
    EXPECT_NE(out.find("socket = " + (dir / "devlistd.sock").string() + " is not used"),
              std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "devlistd.sock"));  // no socket of its own

    ASSERT_NO_FATAL_FAILURE(stop_cleanly(d));
    // The file is systemd's: still there, unchanged.
    struct stat after {};
    ASSERT_EQ(::stat(activated.c_str(), &after), 0) << "devlistd removed the activated socket";
    EXPECT_TRUE(S_ISSOCK(after.st_mode));
    EXPECT_EQ(after.st_ino, before.st_ino);
    EXPECT_EQ(after.st_mode, before.st_mode) << "devlistd changed the socket's mode";
}

TEST_F(systemd_test, more_than_one_activated_socket_is_a_configuration_error) {
    const auto first = dir / "a.sock";
    auto& d = spawn(SYSTEMD_SOCKET_ACTIVATE_PATH,
                    {"-l", first.string(), "-l", (dir / "b.sock").string(), DEVLISTD_PATH,
                     "--config", (dir / "devlistd.toml").string()});
    ASSERT_TRUE(d.wait_for_output("as 4.", clock::now() + patience));
    // A client starts devlistd, which refuses to run; the client's answer does not matter.
    run_to_end(CURL_PATH, {"-sS", "--max-time", "10", "--unix-socket", first.string(),
                           "http://devlistd/v1/status"});
    auto e = d.wait_exit(clock::now() + patience);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->exited_with(78)) << *e;
    EXPECT_NE(d.output().find("handed over 2 sockets"), std::string::npos);
}

TEST_F(systemd_test, sigterm_during_a_long_poll_stops_within_seconds_and_the_restart_goes_on) {
    write_config("", true, 30000);
    auto& d = start();
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + patience)) << "no long-poll";
    const auto sent = clock::now();
    auto e = d.terminate(sent + 5s);
    ASSERT_TRUE(e) << "still running 5 s after SIGTERM in a 30 s long-poll";
    EXPECT_TRUE(e->exited_with(0)) << *e;
    EXPECT_NE(d.output().find("stopped cleanly"), std::string::npos);

    auto& again = start();
    ASSERT_TRUE(again.wait_for_output("from sync token s", clock::now() + patience))
        << "the restart did not go on from the stored sync token";
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(again));
}

TEST_F(systemd_test, sigterm_during_a_one_time_key_upload_stops_and_loses_nothing) {
    auto& d = start();
    ASSERT_TRUE(d.wait_for_output("published 50 one-time keys", clock::now() + patience));
    // The next upload hangs: it is the one a higher target asks for.
    const auto from = hs.request_count();
    hs.inject({std::string(keys_upload), testing::fault_action::hang{}, "POST", 1});
    write_config("one_time_key_target = 60\n");
    d.send_signal(SIGHUP);
    auto hung = hs.wait_for_request(
        [](const testing::request_record& r) { return r.path == keys_upload && r.status == 0; },
        clock::now() + patience, from);
    ASSERT_TRUE(hung) << "no hanging key upload";
    EXPECT_NE(hung->request_body.find("\"one_time_keys\""), std::string::npos)
        << hung->request_body;

    const auto sent = clock::now();
    auto e = d.terminate(sent + 5s);
    ASSERT_TRUE(e) << "still running 5 s after SIGTERM during a key upload";
    EXPECT_TRUE(e->exited_with(0)) << *e;
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);
    std::vector<std::string> pending_public;
    {
        // The ten keys were committed before their upload, and stay.
        auto store = open_store();
        auto pending = store.one_time_keys().pending();
        ASSERT_TRUE(pending);
        ASSERT_EQ(pending->size(), 10u);
        for (const auto& k : *pending)
            pending_public.push_back(k.public_key);
    }

    hs.clear_faults();
    auto& again = start();
    ASSERT_TRUE(again.wait_for_output("the server has 60", clock::now() + patience));
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(again));
    EXPECT_EQ(hs.one_time_key_count(bot, device), 60u);
    auto store = open_store();
    EXPECT_EQ(*store.one_time_keys().count(storage::key_state::pending), 0);
    for (const auto& pub : pending_public) {
        auto k = store.one_time_keys().find_by_public_key(pub);
        ASSERT_TRUE(k && *k) << pub;
        EXPECT_EQ((*k)->state, storage::key_state::published) << "not the same keys";
    }
}

TEST_F(systemd_test, sighup_applies_level_and_key_target_and_names_what_needs_a_restart) {
    notify_listener notify(dir / "notify");
    write_config("log_level = \"warning\"\n");
    auto& d = start({{"NOTIFY_SOCKET", notify.path().string()}});
    ASSERT_TRUE(
        notify.wait_for([](const auto& m) { return m.has("READY=1"); }, clock::now() + patience));
    // Keys published and a sync done, and no info line at level warning.
    ASSERT_TRUE(hs.wait_for_request(
        [](const testing::request_record& r) {
            return r.path == keys_upload &&
                   r.response_body.find("\"signed_curve25519\":50") != std::string::npos;
        },
        clock::now() + patience));
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + patience));
    EXPECT_EQ(d.output().find(" info: "), std::string::npos) << d.output();

    write_config("log_level = \"info\"\none_time_key_target = 60\n", true, 3000);
    d.send_signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_output("SIGHUP: reloaded", clock::now() + patience));
    EXPECT_NE(d.output().find("applied log_level warning -> info, one_time_key_target 50 -> 60; "
                              "needs a restart to change sync_timeout_ms"),
              std::string::npos)
        << d.output();
    // Both applied: an info line, about the ten new keys.
    ASSERT_TRUE(d.wait_for_output("published 10 one-time keys; the server has 60",
                                  clock::now() + patience));
    EXPECT_EQ(hs.one_time_key_count(bot, device), 60u);
    // The service manager saw the reload begin and end.
    auto reloading = notify.wait_for([](const auto& m) { return m.has("RELOADING=1"); },
                                     clock::now() + patience);
    ASSERT_TRUE(reloading);
    EXPECT_TRUE(
        notify.wait_for([](const auto& m) { return m.has("READY=1"); }, clock::now() + patience));

    // A file that no longer loads changes nothing and stops nothing.
    dir.write_file("devlistd.toml", "homeserver = [broken\n");
    d.send_signal(SIGHUP);
    ASSERT_TRUE(d.wait_for_output("did not load, nothing changed", clock::now() + patience));
    const auto from = hs.request_count();
    EXPECT_TRUE(hs.wait_for_request(
        [](const testing::request_record& r) { return r.path == sync_path && r.status == 200; },
        clock::now() + patience, from))
        << "stopped syncing after a failed reload";
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(d));
}

TEST_F(systemd_test, journald_gets_priorities_only_when_standard_error_is_the_journal) {
    // systemd sets JOURNAL_STREAM to the device and inode of the stream it connected; sh sets it
    // to those of devlistd's standard error before exec.
    auto& journal =
        spawn("/bin/sh", {"-c", "JOURNAL_STREAM=$(stat -L -c %d:%i /dev/stderr) exec \"$0\" \"$@\"",
                          DEVLISTD_PATH, "--config", (dir / "devlistd.toml").string()});
    ASSERT_TRUE(journal.wait_for_output("tracking device lists", clock::now() + patience));
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(journal));
    EXPECT_NE(journal.output().find("\n<5>tracking device lists for @bot:localhost"),
              std::string::npos)
        << journal.output();
    EXPECT_NE(journal.output().find("\n<6>socket API on "), std::string::npos);

    // A JOURNAL_STREAM inherited by a process whose standard error goes elsewhere.
    auto& inherited = start({{"JOURNAL_STREAM", "1:1"}});
    ASSERT_TRUE(inherited.wait_for_output("tracking device lists", clock::now() + patience));
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(inherited));
    EXPECT_EQ(inherited.output().find("<5>"), std::string::npos) << inherited.output();
    EXPECT_NE(inherited.output().find("Z notice: tracking device lists"), std::string::npos)
        << inherited.output();
}

TEST_F(systemd_test, check_config_prints_the_effective_configuration_or_exits_78) {
    auto good = run_to_end(DEVLISTD_PATH, config_args({"--check-config", "--log-level", "debug"}));
    EXPECT_TRUE(good.exit.exited_with(0)) << good.exit << "\n" << good.output;
    EXPECT_NE(good.output.find("log_level = \"debug\"  # --log-level"), std::string::npos)
        << good.output;
    EXPECT_NE(good.output.find("password_file = \"" + (dir / "password").string() +
                               "\"  # the secret is not shown"),
              std::string::npos)
        << good.output;
    EXPECT_NE(good.output.find("one_time_key_target = 50"), std::string::npos) << good.output;
    EXPECT_EQ(good.output.find(password), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "devlistd.db")) << "--check-config made a database";

    // The password as a systemd credential; the file names no secret.
    std::filesystem::create_directory(dir / "credentials");
    dir.write_file("credentials/password", password + "\n");
    write_config("", false);
    const environment credentials{{"CREDENTIALS_DIRECTORY", (dir / "credentials").string()}};
    auto from_credential = run_to_end(DEVLISTD_PATH, config_args({"--check-config"}), credentials);
    EXPECT_TRUE(from_credential.exit.exited_with(0)) << from_credential.output;
    EXPECT_NE(from_credential.output.find("# systemd credential password ($CREDENTIALS_DIRECTORY)"),
              std::string::npos)
        << from_credential.output;
    EXPECT_EQ(from_credential.output.find(password), std::string::npos);

    const auto refused = [&](const std::string& why, const std::vector<std::string>& args,
                             const std::string& expected, const environment& env = {}) {
        auto r = run_to_end(DEVLISTD_PATH, args, env);
        EXPECT_TRUE(r.exit.exited_with(78)) << why << ": " << r.exit << "\n" << r.output;
        EXPECT_NE(r.output.find(expected), std::string::npos) << why << ":\n" << r.output;
        EXPECT_EQ(r.output.find(password), std::string::npos) << why;
    };
    refused("no secret at all", config_args({"--check-config"}), "'access_token_file'");
    write_config("sync_timeout_msec = 5\n");
    refused("an unknown key", config_args({"--check-config"}), "'sync_timeout_msec': unknown key");
    write_config("one_time_key_target = 0\n");
    refused("a bad value", config_args({"--check-config"}), "'one_time_key_target'");
    // The daemon itself refuses the same with the same status.
    refused("a bad value, at start", config_args(), "'one_time_key_target'");
    write_config("");
    dir.write_file("password", password + "\nsecond line\n");
    refused("a secret file of two lines", config_args({"--check-config"}), "'password_file'");
    std::filesystem::remove(dir / "password");
    refused("a missing secret file", config_args({"--check-config"}), (dir / "password").string());

    // Usage errors are 64, help is 0.
    auto no_config = run_to_end(DEVLISTD_PATH, {"--check-config"});
    EXPECT_TRUE(no_config.exit.exited_with(64)) << no_config.exit;
    auto bad_level = run_to_end(DEVLISTD_PATH, config_args({"--log-level", "loud"}));
    EXPECT_TRUE(bad_level.exit.exited_with(64)) << bad_level.exit;
    auto help = run_to_end(DEVLISTD_PATH, {"--help"});
    EXPECT_TRUE(help.exit.exited_with(0)) << help.exit;
    EXPECT_NE(help.output.find("--check-config"), std::string::npos);
}

TEST_F(systemd_test, no_secret_appears_in_any_output_of_a_whole_run) {
    // Secrets the systemd way: credentials, with a sealing key made by the test.
    std::filesystem::create_directory(dir / "credentials");
    dir.write_file("credentials/password", password + "\n");
    std::vector<std::uint8_t> seal(32);
    std::random_device random;
    for (auto& b : seal)
        b = static_cast<std::uint8_t>(random());
    dir.write_file("credentials/sealing_key", crypto::base64_encode(seal) + "\n");
    write_config("log_level = \"debug\"\n", false);
    notify_listener notify(dir / "notify");
    const environment env{{"CREDENTIALS_DIRECTORY", (dir / "credentials").string()},
                          {"NOTIFY_SOCKET", notify.path().string()}};
    std::string everything;

    everything += run_to_end(DEVLISTD_PATH, config_args({"--check-config"}), env).output;
    auto& first = start(env);
    ASSERT_TRUE(first.wait_for_output("published 50 one-time keys", clock::now() + patience));
    auto status = status_over(dir / "devlistd.sock");
    ASSERT_TRUE(status);
    everything += *status;
    // A revoked token: devlistd logs in again with the password.
    hs.inject({std::string(sync_path), testing::fault_action::revoke_access_token{}, "GET", 1});
    ASSERT_TRUE(first.wait_for_output(
        [](std::string_view out) { return count_of(out, "logged in as") >= 2; },
        clock::now() + patience))
        << "no second login";
    first.send_signal(SIGHUP);
    ASSERT_TRUE(first.wait_for_output("SIGHUP: reloaded", clock::now() + patience));
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(first));

    // Then with an access token credential for the same device.
    const auto session = hs.login(bot, device);
    dir.write_file("credentials/access_token", session.access_token + "\n");
    auto& second = start(env);
    ASSERT_TRUE(second.wait_for_output("tracking device lists", clock::now() + patience));
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + patience));
    ASSERT_NO_FATAL_FAILURE(stop_cleanly(second));

    for (const auto& run : runs)
        everything += run->output();
    notify.drain();
    for (const auto& m : notify.received())
        everything += m.text + "\n";
    // The search covers real output: logins, syncs, key uploads, STATUS lines.
    ASSERT_GE(count_of(everything, "logged in as"), 2u);
    ASSERT_NE(everything.find("STATUS=syncing"), std::string::npos);

    std::map<std::string, std::string> secrets{
        {"password", password},
        {"access token credential", session.access_token},
        {"sealing key (base64)", crypto::base64_encode(seal)},
        {"sealing key (raw)", std::string(seal.begin(), seal.end())}};
    // Every token the homeserver handed devlistd at a login.
    int logins = 0;
    for (const auto& r : hs.requests()) {
        if (r.path != "/_matrix/client/v3/login" || r.status != 200) continue;
        const std::string field = "\"access_token\":\"";
        auto at = r.response_body.find(field);
        ASSERT_NE(at, std::string::npos) << r.response_body;
        at += field.size();
        secrets["access token of login " + std::to_string(++logins)] =
            r.response_body.substr(at, r.response_body.find('"', at) - at);
    }
    ASSERT_GE(logins, 2);
    for (const auto& [what, secret] : secrets) {
        ASSERT_GE(secret.size(), 8u) << what;
        EXPECT_EQ(everything.find(secret), std::string::npos) << "the " << what << " was logged";
    }
}

}  // namespace
}  // namespace devlist::test
