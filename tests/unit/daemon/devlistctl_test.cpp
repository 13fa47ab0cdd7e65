// devlistctl, the real program, against the socket server in this process: its tables, --json,
// the event follower, and the exit codes scripts rely on.
//
// The server runs on its own thread here (devlistctl blocks this one while it runs); the store
// and the engine are touched only on that thread once it runs (through run_on_io()).
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <future>
#include <thread>

#include "tests/e2e/daemon_process.hpp"
#include "tests/unit/daemon/server_fixture.hpp"

namespace devlist::daemon::test {
namespace {

using namespace std::chrono_literals;
using devlist::test::daemon_process;
using devlist::test::process_exit;
using devlist::test::process_options;

const std::string alice = "@alice:example.org";

struct run_result {
    process_exit exit;
    std::string output;  // stdout and stderr, interleaved
};

class devlistctl_test : public server_fixture {
  protected:
    std::thread io_thread;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;

    void TearDown() override {
        stop_io_thread();
        server_fixture::TearDown();
    }

    // Starts the server on the io thread; from here on, touch the store through run_on_io().
    void serve_in_background() {
        start_server();
        work.emplace(io.get_executor());
        io_thread = std::thread([this] {
            io.restart();
            io.run();
        });
    }

    void stop_io_thread() {
        if (!io_thread.joinable()) return;
        asio::post(io, [this] {
            stop_signal.emit(asio::cancellation_type::terminal);
            work.reset();
        });
        io_thread.join();
    }

    template <class F>
    auto run_on_io(F f) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        asio::post(io, [&task] { task(); });
        return result.get();
    }

    process_options ctl(std::vector<std::string> args, bool with_socket = true) {
        process_options o;
        o.executable = DEVLISTCTL_PATH;
        if (with_socket) args.insert(args.begin(), {"--socket", socket_path.string()});
        o.arguments = std::move(args);
        o.environment["DEVLISTD_SOCKET"] = std::nullopt;
        return o;
    }

    run_result run_process(process_options o) {
        daemon_process p(std::move(o));
        auto exit = p.wait_exit(std::chrono::steady_clock::now() + 20s);
        EXPECT_TRUE(exit) << "devlistctl did not end: " << p.output();
        if (!exit) p.kill();
        return {exit.value_or(process_exit{true, 9}), p.output()};
    }
    run_result run(std::vector<std::string> args) { return run_process(ctl(std::move(args))); }

    static bool has(const std::string& text, std::string_view needle) {
        return text.find(needle) != std::string::npos;
    }

    // Alice with two devices, fresh; an event in the outbox.
    void standard_data() {
        track(alice);
        laptop = device(alice, "LAPTOP", "Alice's laptop", true);
        store_devices(alice, {laptop, device(alice, "PHONE")});
    }
    storage::device_record laptop;
};

TEST_F(devlistctl_test, status_is_a_readable_summary_and_json_is_the_daemons_answer) {
    serve_in_background();
    auto r = run({"status"});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << r.output;
    EXPECT_TRUE(has(r.output, "account            @bot:example.org\n")) << r.output;
    EXPECT_TRUE(has(r.output, "phase              starting\n")) << r.output;
    EXPECT_TRUE(has(r.output, "cross-signing      off\n")) << r.output;

    auto j = run({"--json", "status"});
    EXPECT_TRUE(j.exit.exited_with(0));
    auto v = json::parse(j.output);
    ASSERT_TRUE(v) << j.output;
    EXPECT_EQ((*v)["user_id"].as_string(), bot);
}

TEST_F(devlistctl_test, devices_lists_a_users_devices_in_a_table) {
    standard_data();
    serve_in_background();
    auto r = run({"devices", alice});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.output;
    EXPECT_TRUE(has(r.output, "@alice:example.org: tracked, up to date\n")) << r.output;
    EXPECT_TRUE(has(r.output, "DEVICE  NAME            CROSS-SIGNED  ED25519")) << r.output;
    EXPECT_TRUE(has(r.output, "LAPTOP  Alice's laptop  yes           " + laptop.ed25519 + "  " +
                                  laptop.curve25519))
        << r.output;
    EXPECT_TRUE(has(r.output, "PHONE   -               no")) << r.output;

    auto fresh = run({"devices", alice, "--fresh", "--timeout", "100"});
    EXPECT_TRUE(fresh.exit.exited_with(0)) << fresh.output;
    auto j = run({"devices", "--json", alice});
    auto v = json::parse(j.output);
    ASSERT_TRUE(v) << j.output;
    EXPECT_EQ((*v)["devices"].as_array().size(), 2u);
}

TEST_F(devlistctl_test, whois_key_names_the_device_or_exits_5) {
    standard_data();
    serve_in_background();
    auto r = run({"whois-key", laptop.curve25519});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.output;
    EXPECT_TRUE(has(r.output, "@alice:example.org LAPTOP (Alice's laptop)\n")) << r.output;

    auto unknown = run({"whois-key", new_curve_key()});
    EXPECT_TRUE(unknown.exit.exited_with(5)) << unknown.exit << unknown.output;
    EXPECT_TRUE(has(unknown.output, "devlistd answered 404 M_NOT_FOUND")) << unknown.output;

    auto garbage = run({"whois-key", "nonsense"});
    EXPECT_TRUE(garbage.exit.exited_with(1)) << garbage.exit << garbage.output;
    EXPECT_TRUE(has(garbage.output, "400 M_INVALID_PARAM")) << garbage.output;
}

TEST_F(devlistctl_test, track_untrack_refresh_and_tracked) {
    serve_in_background();
    auto t = run({"track", alice});
    EXPECT_TRUE(t.exit.exited_with(0)) << t.output;
    EXPECT_EQ(t.output, "track @alice:example.org: tracked (explicit)\n");

    auto list = run({"tracked"});
    EXPECT_TRUE(list.exit.exited_with(0));
    EXPECT_TRUE(has(list.output, "USER                STATE     REASONS   LAST REFRESH\n"))
        << list.output;
    EXPECT_TRUE(has(list.output, "@alice:example.org  outdated  explicit  -\n")) << list.output;

    auto refresh = run({"refresh", alice});
    EXPECT_TRUE(refresh.exit.exited_with(0)) << refresh.output;

    auto u = run({"untrack", alice});
    EXPECT_TRUE(u.exit.exited_with(0)) << u.output;
    EXPECT_EQ(u.output, "untrack @alice:example.org: not tracked (-)\n");

    auto again = run({"refresh", alice});
    EXPECT_TRUE(again.exit.exited_with(5)) << again.exit << again.output;
    auto bad = run({"track", "alice"});
    EXPECT_TRUE(bad.exit.exited_with(1)) << bad.exit << bad.output;
}

TEST_F(devlistctl_test, events_shows_kept_events_and_follow_acknowledges_what_it_printed) {
    for (const char* u : {"@alice:example.org", "@bob:example.org", "@carol:example.org"})
        track(u);
    ASSERT_TRUE(engine->untrack_user(alice));  // a user_untracked event
    // The follower's consumer, registered now: it starts after alice's event, whenever the
    // follower's first request comes.
    ASSERT_TRUE(store->outbox().add_consumer("devlistctl"));
    serve_in_background();

    auto all = run({"events"});
    EXPECT_TRUE(all.exit.exited_with(0)) << all.output;
    EXPECT_TRUE(has(all.output, "  user_untracked user_id=@alice:example.org\n")) << all.output;

    {
        daemon_process follower(ctl({"events", "--follow", "--timeout", "60000"}));
        ASSERT_TRUE(run_on_io([this] { return engine->untrack_user("@bob:example.org"); }));
        EXPECT_TRUE(follower.wait_for_output("user_untracked user_id=@bob:example.org\n",
                                             std::chrono::steady_clock::now() + 10s))
            << follower.output();
        // The follower acknowledges a batch before it asks for the next, so once it prints
        // carol's event, bob's is acknowledged.
        ASSERT_TRUE(run_on_io([this] { return engine->untrack_user("@carol:example.org"); }));
        EXPECT_TRUE(follower.wait_for_output("user_untracked user_id=@carol:example.org\n",
                                             std::chrono::steady_clock::now() + 10s))
            << follower.output();
        EXPECT_FALSE(has(follower.output(), "@alice")) << follower.output();
        follower.kill();
    }
    // What a restarted follower would see: nothing acknowledged (bob), at most carol's.
    auto peek = run({"events", "--consumer", "devlistctl"});
    EXPECT_TRUE(peek.exit.exited_with(0));
    EXPECT_FALSE(has(peek.output, "@bob")) << peek.output;
    EXPECT_FALSE(has(peek.output, "@alice")) << peek.output;
}

TEST_F(devlistctl_test, a_daemon_that_is_not_running_is_exit_3_with_a_clear_message) {
    // No socket file at all.
    auto missing = run({"status"});
    EXPECT_TRUE(missing.exit.exited_with(3)) << missing.exit << missing.output;
    EXPECT_TRUE(
        has(missing.output, "devlistd is not running: there is no socket " + socket_path.string()))
        << missing.output;

    // A socket file left behind by a dead daemon.
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, socket_path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ::close(fd);
    auto stale = run({"tracked"});
    EXPECT_TRUE(stale.exit.exited_with(3)) << stale.exit << stale.output;
    EXPECT_TRUE(has(stale.output, "nothing listens on")) << stale.output;
}

TEST_F(devlistctl_test, the_socket_comes_from_the_environment_without_socket_option) {
    serve_in_background();
    auto o = ctl({"status"}, false);
    o.environment["DEVLISTD_SOCKET"] = socket_path.string();
    auto r = run_process(std::move(o));
    EXPECT_TRUE(r.exit.exited_with(0)) << r.output;
    // And the default path otherwise, which does not exist here.
    auto d = run_process(ctl({"status"}, false));
    EXPECT_TRUE(d.exit.exited_with(3)) << d.output;
    EXPECT_TRUE(has(d.output, "/run/devlistd/devlistd.sock")) << d.output;
}

TEST_F(devlistctl_test, usage_errors_are_exit_2) {
    for (std::vector<std::string> args : {std::vector<std::string>{},
                                          {"frobnicate"},
                                          {"devices"},
                                          {"devices", "a", "b"},
                                          {"status", "--bogus"},
                                          {"devices", alice, "--timeout", "soon"},
                                          {"events", "--follow", "--after", "3"},
                                          {"events", "--consumer", "x", "--after", "3"}}) {
        auto r = run(args);
        EXPECT_TRUE(r.exit.exited_with(2)) << r.exit << " for " << ::testing::PrintToString(args);
        EXPECT_TRUE(has(r.output, "usage: devlistctl") || has(r.output, "devlistctl: "))
            << r.output;
    }
    auto help = run({"--help"});
    EXPECT_TRUE(help.exit.exited_with(0));
    EXPECT_TRUE(has(help.output, "exit status: 0 ok;"));
}

// Denials need a second user: as root, the test runs devlistctl as nobody (setpriv).
class devlistctl_denial_test : public devlistctl_test {
  protected:
    static constexpr std::uint32_t nobody = 65534;

    void SetUp() override {
        devlistctl_test::SetUp();
        if (::geteuid() != 0) GTEST_SKIP() << "needs root to run devlistctl as another user";
    }

    run_result run_as_nobody(std::vector<std::string> args) {
        auto o = ctl(std::move(args));
        o.arguments.insert(o.arguments.begin(), {"--reuid=65534", "--regid=65534", "--clear-groups",
                                                 "--", o.executable.string()});
        o.executable = "/usr/bin/setpriv";
        return run_process(std::move(o));
    }
};

TEST_F(devlistctl_denial_test, the_sockets_permissions_refuse_other_users_with_exit_4) {
    serve_in_background();  // mode 0660 in a 0700 folder: nobody cannot reach it
    auto r = run_as_nobody({"status"});
    EXPECT_TRUE(r.exit.exited_with(4)) << r.exit << r.output;
    EXPECT_TRUE(has(r.output, "permission denied on " + socket_path.string())) << r.output;
}

TEST_F(devlistctl_denial_test, the_daemon_refuses_peers_off_the_allow_list_with_403) {
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    start_server(socket_file_options{socket_path, 0666});
    work.emplace(io.get_executor());
    io_thread = std::thread([this] { io.run(); });
    auto r = run_as_nobody({"status"});
    EXPECT_TRUE(r.exit.exited_with(4)) << r.exit << r.output;
    EXPECT_TRUE(has(r.output, "devlistd answered 403 M_FORBIDDEN")) << r.output;
    stop_io_thread();
    EXPECT_TRUE(logged("denied uid 65534 gid 65534 pid ")) << "no log line";
    EXPECT_TRUE(logged(": GET /v1/status"));
}

TEST_F(devlistctl_denial_test, an_allowed_uid_gets_in) {
    ASSERT_EQ(::chmod(dir.c_str(), 0755), 0);
    api_options.access.allowed_uids = {nobody};
    make_api();
    start_server(socket_file_options{socket_path, 0666});
    work.emplace(io.get_executor());
    io_thread = std::thread([this] { io.run(); });
    auto r = run_as_nobody({"tracked"});
    EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << r.output;
}

}  // namespace
}  // namespace devlist::daemon::test
