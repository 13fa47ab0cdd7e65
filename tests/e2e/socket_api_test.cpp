// Issue 5, end to end: the real devlistd against the test homeserver, asked over its Unix
// socket with curl --unix-socket, devlistctl and many concurrent clients.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"
#include "sync/url.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/test_homeserver.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

constexpr const char* bot = "@bot:localhost";
constexpr const char* alice = "@alice:localhost";
constexpr const char* alice_path = "%40alice%3Alocalhost";
constexpr auto patience = 15s;

struct http_answer {
    unsigned status = 0;
    std::string body;
    json::value json;  // null unless the body parses
};

class socket_api_e2e_test : public ::testing::Test {
  protected:
    testing::test_homeserver hs;
    temp_dir dir{"dl-sock-e2e"};  // short: a socket path has at most 107 bytes
    std::filesystem::path config;
    std::filesystem::path socket;
    std::vector<std::unique_ptr<daemon_process>> runs;
    std::string extra_settings;
    testing::device_identity alice1;

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, "bot-password");
        hs.add_user(alice, "pw");
        alice1 = hs.add_device(alice, "ALICE1", "Alice's laptop");
        std::string room = hs.create_room(alice, true);
        hs.join(room, bot);
        dir.write_file("password", "bot-password\n");
        socket = dir / "devlistd.sock";
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                std::fprintf(stderr, "---- devlistd run %zu ----\n%s", i + 1,
                             runs[i]->output().c_str());
            }
        }
        runs.clear();
        hs.stop();
    }

    void write_config() {
        config = dir.write_file("devlistd.toml", "homeserver = \"" + hs.base_url() + "\"\n" +
                                                     R"(user_id = "@bot:localhost"
device_id = "BOTDEVICE"
password_file = "password"
database = "devlistd.db"
socket = "devlistd.sock"
sync_timeout_ms = 2000
)" + extra_settings);
    }

    daemon_process& start_devlistd() {
        write_config();
        process_options o =
            devlistd_options(DEVLISTD_PATH, config.string(),
                             dir / ("devlistd-" + std::to_string(runs.size() + 1) + ".log"));
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        auto& d = *runs.back();
        EXPECT_TRUE(d.wait_for_output("socket API on " + socket.string(), clock::now() + patience))
            << d.output();
        return d;
    }

    void stop(daemon_process& d) {
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not stop on SIGTERM";
        EXPECT_TRUE(e->exited_with(0)) << *e << d.output();
    }

    // ---- clients ----

    struct run_result {
        process_exit exit;
        std::string output;
    };
    run_result run(process_options o) {
        daemon_process p(std::move(o));
        auto exit = p.wait_exit(clock::now() + patience);
        EXPECT_TRUE(exit) << o.executable << " did not end";
        if (!exit) p.kill();
        return {exit.value_or(process_exit{true, 9}), p.output()};
    }

    // curl --unix-socket, with the status on the last line.
    http_answer curl(const std::string& method, const std::string& target,
                     const std::string& body = {}, std::vector<std::string> prefix = {}) {
        process_options o;
        o.executable = "/usr/bin/curl";
        std::vector<std::string> args = {"-sS", "--unix-socket", socket.string(), "-X", method,
                                         "-w",  "\n%{http_code}"};
        if (!body.empty()) {
            args.insert(args.end(),
                        {"-H", "Content-Type: application/json", "--data-binary", body});
        }
        args.push_back("http://devlistd" + target);
        if (!prefix.empty()) {
            prefix.push_back(o.executable.string());
            args.insert(args.begin(), prefix.begin(), prefix.end());
            o.executable = "/usr/bin/setpriv";
        }
        o.arguments = std::move(args);
        auto r = run(std::move(o));
        EXPECT_TRUE(r.exit.exited_with(0)) << r.exit << ": " << r.output;
        http_answer a;
        auto nl = r.output.rfind('\n');
        if (nl == std::string::npos) return a;
        a.status = static_cast<unsigned>(std::atoi(r.output.c_str() + nl + 1));
        a.body = r.output.substr(0, nl);
        if (auto v = json::parse(a.body)) a.json = std::move(*v);
        return a;
    }

    run_result devlistctl(std::vector<std::string> args) {
        process_options o;
        o.executable = DEVLISTCTL_PATH;
        args.insert(args.begin(), {"--socket", socket.string()});
        o.arguments = std::move(args);
        return run(std::move(o));
    }

    // Tracks alice and waits until her list is fresh; returns her devices answer.
    http_answer alice_fresh() {
        auto put = curl("PUT", std::string("/v1/tracked/") + alice_path);
        EXPECT_EQ(put.status, 200u) << put.body;
        auto r = curl(
            "GET", std::string("/v1/users/") + alice_path + "/devices?fresh=true&timeout_ms=10000");
        EXPECT_EQ(r.status, 200u) << r.body;
        EXPECT_FALSE(r.json["outdated"].as_bool()) << r.body;
        return r;
    }

    std::vector<std::string> device_ids(const http_answer& a) {
        std::vector<std::string> ids;
        for (const auto& d : a.json.find("devices")->as_array())
            ids.push_back(d.find("device_id")->as_string());
        return ids;
    }
};

TEST_F(socket_api_e2e_test, every_endpoint_answers_curl_over_the_unix_socket) {
    auto& d = start_devlistd();
    auto devices = alice_fresh();
    EXPECT_EQ(device_ids(devices), std::vector<std::string>{"ALICE1"});
    EXPECT_EQ(devices.json["devices"].as_array()[0].find("curve25519")->as_string(),
              alice1.curve25519);

    auto status = curl("GET", "/v1/status");
    ASSERT_EQ(status.status, 200u) << status.body;
    EXPECT_EQ(status.json["user_id"].as_string(), bot);
    EXPECT_EQ(status.json["device_id"].as_string(), "BOTDEVICE");

    auto who = curl(
        "GET", "/v1/devices/by-curve25519/" + sync::percent_encode_path_segment(alice1.curve25519));
    ASSERT_EQ(who.status, 200u) << who.body;
    EXPECT_EQ(who.json["device_id"].as_string(), "ALICE1");

    auto tracked = curl("GET", "/v1/tracked");
    ASSERT_EQ(tracked.status, 200u);
    EXPECT_EQ(tracked.json["users"].as_array().size(), 2u) << tracked.body;  // bot and alice

    EXPECT_EQ(curl("POST", std::string("/v1/users/") + alice_path + "/refresh").status, 202u);
    auto untrack = curl("DELETE", std::string("/v1/tracked/") + alice_path);
    EXPECT_EQ(untrack.status, 200u);
    EXPECT_TRUE(untrack.json["tracked"].as_bool()) << "alice still shares an encrypted room";

    auto events = curl("GET", "/v1/events?after=0");
    ASSERT_EQ(events.status, 200u) << events.body;
    EXPECT_NE(events.body.find("\"type\":\"device_added\""), std::string::npos) << events.body;
    auto ack = curl("POST", "/v1/events/ack",
                    json::to_canonical(json::object{{"cursor", events.json["next"]}}));
    EXPECT_EQ(ack.status, 200u) << ack.body;

    // A one-time key a peer claimed from the homeserver: its private key, taken once, is the
    // secret of exactly that public key.
    ASSERT_TRUE(d.wait_for_output(" one-time keys; the server has ", clock::now() + patience));
    auto claimed = hs.claim_one_time_key(bot, "BOTDEVICE");
    ASSERT_TRUE(claimed);
    const auto& [algorithm_and_id, key_object] = *claimed->as_object().begin();
    std::string key_id = algorithm_and_id.substr(algorithm_and_id.find(':') + 1);
    auto take = curl("POST", "/v1/keys/one-time/take",
                     json::to_canonical(json::object{{"key_id", key_id}}));
    ASSERT_EQ(take.status, 200u) << take.body;
    EXPECT_EQ(take.json["public_key"].as_string(), key_object.find("key")->as_string());
    auto secret = crypto::base64_decode(take.json["private_key"].as_string());
    ASSERT_TRUE(secret);
    auto pair = crypto::curve25519_key_pair::from_secret(*secret);
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->public_key().to_base64(), key_object.find("key")->as_string());
    EXPECT_EQ(
        curl("POST", "/v1/keys/one-time/take", json::to_canonical(json::object{{"key_id", key_id}}))
            .status,
        404u);

    auto fallback = curl("GET", "/v1/keys/fallback");
    EXPECT_EQ(fallback.status, 200u) << fallback.body;
    EXPECT_TRUE(fallback.json["keys"].is_array());

    auto metrics = curl("GET", "/metrics");
    ASSERT_EQ(metrics.status, 200u);
    EXPECT_NE(metrics.body.find("devlistd_syncs_total "), std::string::npos);
    // The one-time key and each fallback key listed (whether key maintenance has made one yet
    // depends on timing).
    const auto handed_out = 1 + fallback.json["keys"].as_array().size();
    EXPECT_NE(metrics.body.find("devlistd_private_keys_handed_out_total " +
                                std::to_string(handed_out) + "\n"),
              std::string::npos)
        << metrics.body;
    EXPECT_NE(metrics.body.find("devlistd_socket_responses_total{code=\"404\"} 1"),
              std::string::npos);

    auto big = curl("POST", "/v1/events/ack", std::string(100000, ' '));
    EXPECT_EQ(big.status, 413u) << big.body;
    auto bad = curl("POST", "/v1/events/ack", "{\"cursor\":");
    EXPECT_EQ(bad.status, 400u) << bad.body;
    stop(d);
}

TEST_F(socket_api_e2e_test, refresh_then_wait_for_fresh_returns_the_new_device) {
    start_devlistd();
    alice_fresh();
    hs.add_device(alice, "ALICE2", "Alice's phone");
    EXPECT_EQ(curl("POST", std::string("/v1/users/") + alice_path + "/refresh").status, 202u);
    auto r = curl("GET",
                  std::string("/v1/users/") + alice_path + "/devices?fresh=true&timeout_ms=10000");
    EXPECT_FALSE(r.json["outdated"].as_bool()) << r.body;
    EXPECT_EQ(device_ids(r), (std::vector<std::string>{"ALICE1", "ALICE2"}));
}

TEST_F(socket_api_e2e_test, events_survive_daemon_and_consumer_restarts) {
    auto* d = &start_devlistd();
    alice_fresh();
    // Register the consumer now; it starts after everything so far.
    auto first = curl("GET", "/v1/events?consumer=bot1");
    ASSERT_EQ(first.status, 200u) << first.body;
    ASSERT_TRUE(first.json["events"].as_array().empty());
    stop(*d);

    // A change while the daemon is down arrives after the restart.
    hs.add_device(alice, "ALICE2");
    d = &start_devlistd();
    auto seen = curl("GET", "/v1/events?consumer=bot1&timeout_ms=10000");
    ASSERT_EQ(seen.status, 200u) << seen.body;
    EXPECT_NE(seen.body.find("\"device_id\":\"ALICE2\""), std::string::npos) << seen.body;
    EXPECT_NE(seen.body.find("\"type\":\"device_added\""), std::string::npos) << seen.body;

    // The consumer restarts without acknowledging: it sees the same events again.
    auto again = curl("GET", "/v1/events?consumer=bot1");
    EXPECT_EQ(again.body, seen.body);

    auto ack =
        curl("POST", "/v1/events/ack",
             json::to_canonical(json::object{{"cursor", seen.json["next"]}, {"consumer", "bot1"}}));
    ASSERT_EQ(ack.status, 200u) << ack.body;
    stop(*d);

    // After a daemon restart, nothing acknowledged comes back; new events do.
    hs.add_device(alice, "ALICE3");
    d = &start_devlistd();
    auto after = curl("GET", "/v1/events?consumer=bot1&timeout_ms=10000");
    EXPECT_EQ(after.body.find("ALICE2"), std::string::npos) << after.body;
    EXPECT_NE(after.body.find("\"device_id\":\"ALICE3\""), std::string::npos) << after.body;
    stop(*d);
}

TEST_F(socket_api_e2e_test, the_socket_file_outlives_no_daemon_and_is_never_taken_over) {
    auto* d = &start_devlistd();
    ASSERT_TRUE(std::filesystem::exists(socket));
    struct stat st {};
    ASSERT_EQ(::stat(socket.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u);

    // A second daemon (its own database) on the same socket refuses to start.
    {
        auto second_config =
            dir.write_file("second.toml", "homeserver = \"" + hs.base_url() + "\"\n" +
                                              R"(user_id = "@bot:localhost"
password_file = "password"
database = "second.db"
socket = "devlistd.sock"
)");
        process_options o;
        o.executable = DEVLISTD_PATH;
        o.arguments = {"--config", second_config.string()};
        auto r = run(std::move(o));
        EXPECT_TRUE(r.exit.exited_with(1)) << r.exit << r.output;
        EXPECT_NE(r.output.find("is listening on " + socket.string()), std::string::npos)
            << r.output;
    }
    EXPECT_EQ(curl("GET", "/v1/status").status, 200u);

    // SIGTERM removes the file; devlistctl then says the daemon is not running.
    stop(*d);
    EXPECT_FALSE(std::filesystem::exists(socket));
    auto down = devlistctl({"status"});
    EXPECT_TRUE(down.exit.exited_with(3)) << down.output;

    // SIGKILL leaves it behind; the next start replaces it.
    d = &start_devlistd();
    d->kill();
    EXPECT_TRUE(std::filesystem::exists(socket));
    auto stale = devlistctl({"status"});
    EXPECT_TRUE(stale.exit.exited_with(3)) << stale.output;
    EXPECT_NE(stale.output.find("nothing listens on"), std::string::npos) << stale.output;
    d = &start_devlistd();
    EXPECT_EQ(curl("GET", "/v1/status").status, 200u);
    stop(*d);
}

TEST_F(socket_api_e2e_test, devlistctl_reads_the_real_daemon) {
    start_devlistd();
    alice_fresh();
    auto devices = devlistctl({"devices", alice});
    EXPECT_TRUE(devices.exit.exited_with(0)) << devices.output;
    EXPECT_NE(devices.output.find("@alice:localhost: tracked, up to date\n"), std::string::npos)
        << devices.output;
    EXPECT_NE(devices.output.find("ALICE1  Alice's laptop  no            " + alice1.ed25519),
              std::string::npos)
        << devices.output;
    auto who = devlistctl({"whois-key", alice1.curve25519});
    EXPECT_TRUE(who.exit.exited_with(0)) << who.output;
    EXPECT_NE(who.output.find("@alice:localhost ALICE1 (Alice's laptop)"), std::string::npos);
    auto unknown =
        devlistctl({"whois-key", crypto::curve25519_key_pair::generate().public_key().to_base64()});
    EXPECT_TRUE(unknown.exit.exited_with(5)) << unknown.output;
    auto status = devlistctl({"status"});
    EXPECT_TRUE(status.exit.exited_with(0));
    EXPECT_NE(status.output.find("device             BOTDEVICE\n"), std::string::npos)
        << status.output;
}

TEST_F(socket_api_e2e_test, peers_off_the_allow_list_are_refused_and_logged) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to run a client as another user";
    ASSERT_EQ(::chmod(dir.path().c_str(), 0755), 0);
    extra_settings = "socket_mode = \"0666\"\n";
    auto& d = start_devlistd();
    const std::vector<std::string> as_nobody = {"--reuid=65534", "--regid=65534", "--clear-groups",
                                                "--"};
    auto r = curl("GET", "/v1/status", {}, as_nobody);
    EXPECT_EQ(r.status, 403u) << r.body;
    EXPECT_EQ(r.json["errcode"].as_string(), "M_FORBIDDEN");
    EXPECT_TRUE(d.wait_for_output("denied uid 65534 gid 65534 pid ", clock::now() + patience));
    stop(d);

    extra_settings += "allowed_uids = [65534]\n";
    auto& allowed = start_devlistd();
    EXPECT_EQ(curl("GET", "/v1/status", {}, as_nobody).status, 200u);
    // Keys stay with the daemon's own uid.
    EXPECT_EQ(curl("GET", "/v1/keys/fallback", {}, as_nobody).status, 403u);
    stop(allowed);
}

// ---- many clients at once ----

struct client_stats {
    std::vector<double> latencies_ms;
    std::size_t failures = 0;
};

asio::awaitable<void> client(std::string path, std::size_t requests, std::string target,
                             client_stats* stats) {
    constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
    local::socket s(co_await asio::this_coro::executor);
    auto [cec] = co_await s.async_connect(local::endpoint(path), tuple);
    if (cec) {
        stats->failures += requests;
        co_return;
    }
    beast::flat_buffer buffer;
    http::request<http::empty_body> req{http::verb::get, target, 11};
    req.set(http::field::host, "devlistd");
    for (std::size_t i = 0; i < requests; ++i) {
        auto started = clock::now();
        auto [wec, wn] = co_await http::async_write(s, req, tuple);
        http::response<http::string_body> res;
        auto [rec, rn] = co_await http::async_read(s, buffer, res, tuple);
        if (wec || rec || res.result_int() != 200) {
            ++stats->failures;
            co_return;
        }
        stats->latencies_ms.push_back(
            std::chrono::duration<double, std::milli>(clock::now() - started).count());
    }
}

TEST_F(socket_api_e2e_test, two_hundred_concurrent_clients) {
    auto& d = start_devlistd();
    alice_fresh();
    constexpr std::size_t clients = 200;
    constexpr std::size_t requests = 50;
    asio::io_context io(1);
    std::vector<client_stats> stats(clients);
    for (std::size_t i = 0; i < clients; ++i) {
        asio::co_spawn(
            io,
            client(socket.string(), requests,
                   i % 2 ? "/v1/status" : "/v1/users/%40alice%3Alocalhost/devices", &stats[i]),
            [](std::exception_ptr e) {
                if (e) ADD_FAILURE() << "a client threw";
            });
    }
    auto started = clock::now();
    io.run_for(60s);
    double seconds = std::chrono::duration<double>(clock::now() - started).count();
    std::vector<double> all;
    std::size_t failures = 0;
    for (const auto& s : stats) {
        all.insert(all.end(), s.latencies_ms.begin(), s.latencies_ms.end());
        failures += s.failures;
    }
    EXPECT_EQ(failures, 0u);
    ASSERT_EQ(all.size(), clients * requests);
    std::sort(all.begin(), all.end());
    std::printf(
        "%zu clients x %zu requests: %.0f requests/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
        clients, requests, static_cast<double>(all.size()) / seconds, all[all.size() / 2],
        all[all.size() * 99 / 100], all.back());
    stop(d);
}

}  // namespace
}  // namespace devlist::test
