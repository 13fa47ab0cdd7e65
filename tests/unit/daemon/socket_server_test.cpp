// The socket server on a real Unix socket: HTTP/1.1 framing, keep-alive, limits, slow and
// vanished clients, many clients at once, the socket file's life, and shutdown.
#include <gtest/gtest.h>

#include <grp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>

#include "tests/unit/daemon/server_fixture.hpp"

namespace devlist::daemon::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

class socket_server_test : public server_fixture {};

TEST_F(socket_server_test, answers_several_requests_on_one_kept_alive_connection) {
    start_server();
    auto c = exchange(get("/v1/status") + get("/v1/tracked") + get("/v1/nothing", true), 3, true);
    ASSERT_EQ(c.responses.size(), 3u) << c.ended.message();
    EXPECT_EQ(c.responses[0].result_int(), 200u);
    EXPECT_EQ(c.responses[0][http::field::content_type], "application/json");
    EXPECT_EQ(c.responses[0][http::field::server], "devlistd");
    EXPECT_TRUE(c.responses[0].keep_alive());
    EXPECT_NE(c.responses[1].body().find("\"users\":[]"), std::string::npos);
    EXPECT_EQ(c.responses[2].result_int(), 404u);
    EXPECT_FALSE(c.responses[2].keep_alive());
    EXPECT_EQ(c.ended, asio::error::eof);  // closed after "Connection: close"
}

TEST_F(socket_server_test, an_http_1_0_request_gets_its_answer_and_the_connection_closes) {
    start_server();
    auto c = exchange("GET /v1/status HTTP/1.0\r\n\r\n", 1, true);
    ASSERT_EQ(c.responses.size(), 1u);
    EXPECT_EQ(c.responses[0].result_int(), 200u);
    EXPECT_EQ(c.ended, asio::error::eof);
}

TEST_F(socket_server_test, a_request_body_is_read_and_a_405_names_the_allowed_methods) {
    start_server();
    auto c = exchange(
        post("/v1/events/ack", R"({"cursor":0})") + "DELETE /v1/status HTTP/1.1\r\n\r\n", 2);
    ASSERT_EQ(c.responses.size(), 2u) << c.ended.message();
    EXPECT_EQ(c.responses[0].result_int(), 200u) << c.responses[0].body();
    EXPECT_EQ(c.responses[1].result_int(), 405u);
    EXPECT_EQ(c.responses[1][http::field::allow], "GET");
}

TEST_F(socket_server_test, curl_style_expect_100_continue_gets_a_go_ahead) {
    start_server();
    std::string body = R"({"cursor":0})";
    auto s = connect();
    std::string head =
        "POST /v1/events/ack HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        "Content-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    // The interim answer comes before the body is sent; Beast's reader reports it as a response.
    auto c = start_talk(std::move(s), head, 1);
    ASSERT_TRUE(run_until([&] { return c->done; }));
    ASSERT_EQ(c->responses.size(), 1u) << c->ended.message();
    EXPECT_EQ(c->responses[0].result_int(), 100u);
}

TEST_F(socket_server_test, an_oversized_body_is_413_and_the_connection_closes) {
    limits.max_body_bytes = 1024;
    start_server();
    auto c = exchange(post("/v1/events/ack", std::string(4096, ' ')), 1, true);
    ASSERT_EQ(c.responses.size(), 1u) << c.ended.message();
    EXPECT_EQ(c.responses[0].result_int(), 413u);
    EXPECT_NE(c.responses[0].body().find("M_TOO_LARGE"), std::string::npos);
    EXPECT_FALSE(c.responses[0].keep_alive());
    EXPECT_TRUE(c.ended == asio::error::eof || c.ended == asio::error::connection_reset)
        << c.ended.message();
}

TEST_F(socket_server_test, an_oversized_header_is_431_and_the_connection_closes) {
    limits.max_header_bytes = 1024;
    start_server();
    auto c = exchange("GET /v1/status HTTP/1.1\r\nX-Big: " + std::string(2048, 'a') + "\r\n\r\n", 1,
                      true);
    ASSERT_EQ(c.responses.size(), 1u) << c.ended.message();
    EXPECT_EQ(c.responses[0].result_int(), 431u);
}

TEST_F(socket_server_test, malformed_requests_are_400_and_the_connection_closes) {
    start_server();
    for (std::string raw :
         {std::string("NONSENSE\r\n\r\n"), std::string("GET /v1/status HTTP/9\r\n\r\n"),
          std::string("GET /v1/status HTTP/1.1\r\nBad Header\r\n\r\n"),
          std::string("POST /v1/events/ack HTTP/1.1\r\nContent-Length: x\r\n\r\n")}) {
        auto c = exchange(raw, 1, true);
        ASSERT_EQ(c.responses.size(), 1u) << raw << ": " << c.ended.message();
        EXPECT_EQ(c.responses[0].result_int(), 400u) << raw;
        EXPECT_NE(c.responses[0].body().find("M_UNRECOGNIZED"), std::string::npos) << raw;
    }
    EXPECT_EQ(api->counters().responses.at(400), 4u);
}

TEST_F(socket_server_test, a_slow_client_is_closed_after_the_request_timeout) {
    limits.request_timeout = 200ms;
    start_server();
    auto started = clock::now();
    // Half a request, then nothing.
    auto c = exchange("GET /v1/status HTTP/1.1\r\nHo", 1);
    EXPECT_TRUE(c.responses.empty());
    EXPECT_EQ(c.ended, http::error::end_of_stream) << c.ended.message();
    EXPECT_GE(clock::now() - started, 200ms);
    EXPECT_TRUE(run_until([&] { return server->connection_count() == 0; }));
}

TEST_F(socket_server_test, an_idle_kept_alive_connection_is_closed_after_the_idle_timeout) {
    limits.idle_timeout = 200ms;
    limits.request_timeout = 5000ms;
    start_server();
    auto started = clock::now();
    auto c = exchange(get("/v1/status"), 1, true);
    ASSERT_EQ(c.responses.size(), 1u);
    EXPECT_EQ(c.ended, asio::error::eof);
    EXPECT_GE(clock::now() - started, 200ms);
}

TEST_F(socket_server_test, pipelined_requests_are_answered_in_order) {
    start_server();
    track("@alice:example.org");
    std::string raw =
        get("/v1/users/%40alice%3Aexample.org/devices") + get("/v1/tracked") + get("/v1/status");
    auto c = exchange(raw, 3);
    ASSERT_EQ(c.responses.size(), 3u) << c.ended.message();
    EXPECT_NE(c.responses[0].body().find("\"devices\":[]"), std::string::npos);
    EXPECT_NE(c.responses[1].body().find("\"users\":["), std::string::npos);
    EXPECT_NE(c.responses[2].body().find("\"phase\":"), std::string::npos);
}

// Requests that may wait (an event long-poll, a fresh device list) take another way through the
// server than those answered at once; in one pipelined batch, the answers still come in order.
TEST_F(socket_server_test,
       a_pipelined_batch_of_waiting_and_immediate_requests_is_answered_in_order) {
    start_server();
    track("@alice:example.org");
    std::string raw = get("/v1/status") + get("/v1/events?after=0&timeout_ms=0") +
                      get("/v1/users/%40alice%3Aexample.org/devices") +
                      get("/v1/users/%40alice%3Aexample.org/devices?fresh=true&timeout_ms=0") +
                      get("/v1/tracked") + get("/v1/nothing");
    auto c = exchange(raw, 6);
    ASSERT_EQ(c.responses.size(), 6u) << c.ended.message();
    EXPECT_NE(c.responses[0].body().find("\"phase\":"), std::string::npos);
    EXPECT_NE(c.responses[1].body().find("\"events\":["), std::string::npos);
    EXPECT_NE(c.responses[2].body().find("\"devices\":[]"), std::string::npos);
    EXPECT_NE(c.responses[3].body().find("\"devices\":[]"), std::string::npos);
    EXPECT_NE(c.responses[4].body().find("\"users\":["), std::string::npos);
    EXPECT_EQ(c.responses[5].result_int(), 404u);
    for (std::size_t i = 0; i < 5; ++i)
        EXPECT_EQ(c.responses[i].result_int(), 200u) << i;
}

TEST_F(socket_server_test, answers_before_a_waiting_request_are_not_held_back_by_its_wait) {
    start_server();
    track("@alice:example.org");
    auto c = start_client(
        get("/v1/status") + get("/v1/events?after=0&timeout_ms=60000") + get("/v1/tracked"), 3);
    ASSERT_TRUE(run_until([&] { return c->responses.size() == 1; }));
    EXPECT_NE(c->responses[0].body().find("\"phase\":"), std::string::npos);
    // The long-poll waits, and the request after it waits its turn.
    EXPECT_FALSE(run_until([&] { return c->responses.size() > 1; }, 100ms));
    ASSERT_TRUE(engine->untrack_user("@alice:example.org"));
    ASSERT_TRUE(run_until([&] { return c->done; }));
    ASSERT_EQ(c->responses.size(), 3u) << c->ended.message();
    EXPECT_NE(c->responses[1].body().find("user_untracked"), std::string::npos);
    EXPECT_NE(c->responses[2].body().find("\"users\":["), std::string::npos);
}

TEST_F(socket_server_test, a_batch_larger_than_one_write_is_answered_whole_and_in_order) {
    start_server();
    track("@alice:example.org");
    constexpr std::size_t requests = 300;  // far beyond one write's worth of answers
    std::string raw;
    for (std::size_t i = 0; i < requests; ++i)
        raw += get(i % 2 ? "/v1/status" : "/v1/users/%40alice%3Aexample.org/devices");
    raw += get("/v1/tracked", true);
    auto c = exchange(raw, requests + 1, true);
    ASSERT_EQ(c.responses.size(), requests + 1) << c.ended.message();
    for (std::size_t i = 0; i < requests; ++i) {
        ASSERT_EQ(c.responses[i].result_int(), 200u) << i;
        ASSERT_NE(c.responses[i].body().find(i % 2 ? "\"phase\":" : "\"devices\":"),
                  std::string::npos)
            << i;
    }
    EXPECT_NE(c.responses[requests].body().find("\"users\":["), std::string::npos);
    EXPECT_EQ(c.ended, asio::error::eof);
    EXPECT_EQ(api->counters().responses.at(200), requests + 1);
}

TEST_F(socket_server_test, nothing_after_connection_close_or_a_malformed_request_is_answered) {
    start_server();
    auto closed =
        exchange(get("/v1/status") + get("/v1/tracked", true) + get("/v1/status"), 3, true);
    ASSERT_EQ(closed.responses.size(), 2u);
    EXPECT_TRUE(closed.responses[0].keep_alive());
    EXPECT_FALSE(closed.responses[1].keep_alive());
    EXPECT_NE(closed.responses[1].body().find("\"users\":["), std::string::npos);
    EXPECT_EQ(closed.ended, http::error::end_of_stream);  // closed instead of a third

    auto malformed = exchange(get("/v1/status") + "NONSENSE\r\n\r\n" + get("/v1/status"), 3, true);
    ASSERT_EQ(malformed.responses.size(), 2u);
    EXPECT_EQ(malformed.responses[0].result_int(), 200u);
    EXPECT_EQ(malformed.responses[1].result_int(), 400u);
    EXPECT_FALSE(malformed.responses[1].keep_alive());
    EXPECT_EQ(malformed.ended, http::error::end_of_stream);
}

TEST_F(socket_server_test, a_request_that_arrives_in_pieces_is_answered_once_whole) {
    start_server();
    auto s = connect();
    const std::string raw = get("/v1/status") + post("/v1/events/ack", R"({"cursor":0})");
    auto answered = [&] {
        auto it = api->counters().responses.find(200);
        return it == api->counters().responses.end() ? std::uint64_t{0} : it->second;
    };
    // The first request whole and the second cut in its header...
    const auto cut_header = get("/v1/status").size() + 10;
    asio::write(s, asio::buffer(raw.substr(0, cut_header)));
    ASSERT_TRUE(run_until([&] { return answered() == 1; }));
    // ... then the rest of its header and part of its body ...
    const auto cut_body = raw.size() - 4;
    asio::write(s, asio::buffer(raw.substr(cut_header, cut_body - cut_header)));
    EXPECT_FALSE(run_until([&] { return answered() > 1; }, 50ms));
    // ... then the rest.
    asio::write(s, asio::buffer(raw.substr(cut_body)));
    auto c = start_talk(std::move(s), {}, 2);
    ASSERT_TRUE(run_until([&] { return c->done; }));
    ASSERT_EQ(c->responses.size(), 2u) << c->ended.message();
    EXPECT_EQ(c->responses[0].result_int(), 200u);
    EXPECT_EQ(c->responses[1].result_int(), 200u) << c->responses[1].body();
    EXPECT_NE(c->responses[1].body().find("\"acknowledged\":0"), std::string::npos);
}

TEST_F(socket_server_test, a_peer_that_goes_away_during_a_batch_ends_only_its_connection) {
    start_server();
    track("@alice:example.org");
    std::string raw;
    for (int i = 0; i < 200; ++i)
        raw += get("/v1/users/%40alice%3Aexample.org/devices") +
               get("/v1/events?after=0&timeout_ms=0");
    {
        auto s = connect();
        asio::write(s, asio::buffer(raw));
    }  // closed before reading a single answer
    ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }));
    auto c = exchange(get("/v1/status"), 1);
    ASSERT_EQ(c.responses.size(), 1u) << c.ended.message();
    EXPECT_EQ(c.responses[0].result_int(), 200u);
}

TEST_F(socket_server_test,
       a_client_that_does_not_read_its_answers_is_closed_after_the_write_timeout) {
    limits.write_timeout = 200ms;
    start_server();
    // More answers than the socket's buffers hold, and a client that never reads them.
    std::string raw;
    for (int i = 0; i < 4000; ++i)
        raw += get("/v1/status");
    auto s = connect();
    bool written = false;
    asio::async_write(s, asio::buffer(raw),
                      [&](boost::system::error_code, std::size_t) { written = true; });
    // The server stops reading once it cannot write; the client holds its socket open all along.
    ASSERT_TRUE(run_until([&] { return server->connection_count() == 1; }));
    ASSERT_TRUE(run_until([&] { return server->connection_count() == 0; }, 5000ms));
    EXPECT_TRUE(run_until([&] { return written; }));
}

TEST_F(socket_server_test, a_long_poll_ends_when_its_client_goes_away) {
    start_server();
    auto s = connect();
    auto raw = get("/v1/events?after=0&timeout_ms=60000");
    asio::write(s, asio::buffer(raw));
    ASSERT_TRUE(run_until([&] { return server->connection_count() == 1; }));
    // The request is parked in its wait; closing the client ends it long before 60 s.
    EXPECT_FALSE(run_until([&] { return server->connection_count() == 0; }, 100ms));
    s.close();
    EXPECT_TRUE(run_until([&] { return server->connection_count() == 0; }, 2000ms));
}

TEST_F(socket_server_test, a_half_closed_client_still_gets_its_long_poll_answer) {
    start_server();
    track("@alice:example.org");
    auto s = connect();
    auto raw = get("/v1/events?after=0&timeout_ms=60000");
    asio::write(s, asio::buffer(raw));
    s.shutdown(local::socket::shutdown_send);  // "no more requests", not "gone"
    auto c = start_talk(std::move(s), {}, 1);
    EXPECT_FALSE(run_until([&] { return c->done; }, 100ms));
    ASSERT_TRUE(engine->untrack_user("@alice:example.org"));
    ASSERT_TRUE(run_until([&] { return c->done; }));
    ASSERT_EQ(c->responses.size(), 1u) << c->ended.message();
    EXPECT_NE(c->responses[0].body().find("user_untracked"), std::string::npos);
}

// Many clients on the one io thread: 200 connections at once, each with several kept-alive
// requests, while 50 more park in event long-polls that must not hold anybody up.
TEST_F(socket_server_test, two_hundred_concurrent_clients_and_parked_long_polls) {
    start_server();
    track("@alice:example.org");
    constexpr std::size_t clients = 200;
    constexpr std::size_t requests_each = 5;
    constexpr std::size_t pollers = 50;
    std::vector<std::shared_ptr<conversation>> polls;
    for (std::size_t i = 0; i < pollers; ++i)
        polls.push_back(start_client(get("/v1/events?after=0&timeout_ms=60000"), 1));
    ASSERT_TRUE(run_until([&] { return server->connection_count() == pollers; }));
    std::string raw;
    for (std::size_t r = 0; r < requests_each; ++r)
        raw += get(r % 2 ? "/v1/status" : "/v1/users/%40alice%3Aexample.org/devices");
    std::vector<std::shared_ptr<conversation>> talks;
    auto started = clock::now();
    for (std::size_t i = 0; i < clients; ++i)
        talks.push_back(start_client(raw, requests_each));
    ASSERT_TRUE(run_until(
        [&] { return std::all_of(talks.begin(), talks.end(), [](auto& c) { return c->done; }); },
        20000ms));
    auto took = clock::now() - started;
    for (const auto& c : talks) {
        ASSERT_EQ(c->responses.size(), requests_each) << c->ended.message();
        for (const auto& r : c->responses)
            EXPECT_EQ(r.result_int(), 200u);
    }
    // The pollers are still parked, and all get their event when one is committed.
    EXPECT_TRUE(std::none_of(polls.begin(), polls.end(), [](auto& c) { return c->done; }));
    EXPECT_GE(server->connection_count(), pollers);
    ASSERT_TRUE(engine->untrack_user("@alice:example.org"));
    ASSERT_TRUE(run_until(
        [&] { return std::all_of(polls.begin(), polls.end(), [](auto& c) { return c->done; }); }));
    for (const auto& c : polls) {
        ASSERT_EQ(c->responses.size(), 1u);
        EXPECT_NE(c->responses[0].body().find("user_untracked"), std::string::npos);
    }
    std::printf("%zu requests from %zu clients (and their server) on one thread: %.0f ms\n",
                clients * requests_each, clients,
                std::chrono::duration<double, std::milli>(took).count());
}

TEST_F(socket_server_test, connections_beyond_the_limit_are_closed_at_once) {
    limits.max_connections = 2;
    start_server();
    auto a = start_talk(connect(), get("/v1/events?after=0&timeout_ms=60000"), 1);
    auto b = start_talk(connect(), get("/v1/events?after=0&timeout_ms=60000"), 1);
    ASSERT_TRUE(run_until([&] { return server->connection_count() == 2; }));
    auto c = exchange(get("/v1/status"), 1);
    EXPECT_TRUE(c.responses.empty());
    EXPECT_TRUE(logged("too many connections (2)"));
}

TEST_F(socket_server_test, shutdown_cancels_waiting_and_idle_connections_and_removes_the_file) {
    start_server();
    auto waiting = start_talk(connect(), get("/v1/events?after=0&timeout_ms=60000"), 1);
    auto idle = start_talk(connect(), get("/v1/status"), 2);
    ASSERT_TRUE(
        run_until([&] { return server->connection_count() == 2 && !idle->responses.empty(); }));
    ASSERT_TRUE(std::filesystem::exists(socket_path));
    stop_server();
    EXPECT_EQ(server->connection_count(), 0u);
    EXPECT_FALSE(std::filesystem::exists(socket_path));
    ASSERT_TRUE(run_until([&] { return waiting->done && idle->done; }));
    EXPECT_TRUE(waiting->responses.empty());  // ended without an answer
}

// ---- the socket file ----

TEST_F(socket_server_test, the_socket_gets_its_mode_and_group) {
    start_server(socket_file_options{socket_path, 0640, ::getegid()});
    struct stat st {};
    ASSERT_EQ(::lstat(socket_path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0640u);
    EXPECT_EQ(st.st_gid, ::getegid());
    EXPECT_EQ(server->path(), socket_path);
    // No temporary name is left behind.
    std::size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        (void)e;
        ++files;
    }
    EXPECT_EQ(files, 1u);
}

TEST_F(socket_server_test, a_stale_socket_file_is_replaced) {
    {
        // A socket bound and abandoned, as by a killed devlistd.
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, socket_path.c_str());
        ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        ::close(fd);
    }
    ASSERT_TRUE(std::filesystem::exists(socket_path));
    start_server();
    EXPECT_EQ(exchange(get("/v1/status"), 1).responses.size(), 1u);
}

TEST_F(socket_server_test, a_live_socket_is_never_taken_over) {
    start_server();
    socket_server second(io.get_executor(), *api, limits, {});
    auto r = second.bind(socket_file_options{socket_path});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("another process (a second devlistd?) is listening"),
              std::string::npos)
        << r.error().detail;
    // The first still serves.
    EXPECT_EQ(exchange(get("/v1/status"), 1).responses.size(), 1u);
}

TEST_F(socket_server_test, a_file_that_is_no_socket_is_never_replaced) {
    std::ofstream(socket_path) << "precious";
    make_server();
    auto r = server->bind(socket_file_options{socket_path});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("exists and is not a socket"), std::string::npos);
    std::ifstream in(socket_path);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "precious");
}

TEST_F(socket_server_test, a_missing_folder_or_a_too_long_path_is_a_clear_error) {
    make_server();
    auto missing = server->bind(socket_file_options{dir / "no" / "such.sock"});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().detail.find("does not exist"), std::string::npos)
        << missing.error().detail;
    auto too_long = server->bind(socket_file_options{dir / std::string(120, 'x')});
    ASSERT_FALSE(too_long);
    EXPECT_NE(too_long.error().detail.find("too long"), std::string::npos);
}

TEST_F(socket_server_test, the_file_is_left_alone_if_someone_else_replaced_it) {
    start_server();
    std::filesystem::remove(socket_path);
    std::ofstream(socket_path) << "not ours";
    stop_server();
    EXPECT_TRUE(std::filesystem::exists(socket_path));
}

TEST_F(socket_server_test, an_adopted_listening_socket_is_served_and_its_file_left_alone) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strcpy(a.sun_path, socket_path.c_str());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(::listen(fd, 16), 0);
    make_server();
    ASSERT_TRUE(server->adopt(fd));
    EXPECT_FALSE(server->path());
    run_server();
    auto c = exchange(get("/v1/status"), 1);
    ASSERT_EQ(c.responses.size(), 1u);
    EXPECT_EQ(c.responses[0].result_int(), 200u);
    stop_server();
    EXPECT_TRUE(std::filesystem::exists(socket_path));  // systemd's, not ours
}

TEST_F(socket_server_test, adopting_anything_but_a_listening_unix_stream_socket_is_refused) {
    make_server();
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    auto pipe_result = server->adopt(pipe_fds[0]);
    EXPECT_FALSE(pipe_result);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    int unbound = ::socket(AF_UNIX, SOCK_STREAM, 0);
    auto not_listening = server->adopt(unbound);
    ASSERT_FALSE(not_listening);
    EXPECT_NE(not_listening.error().detail.find("not listening"), std::string::npos);
    ::close(unbound);
    int datagram = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    auto wrong_type = server->adopt(datagram);
    ASSERT_FALSE(wrong_type);
    EXPECT_NE(wrong_type.error().detail.find("not a Unix stream socket"), std::string::npos);
    ::close(datagram);
}

TEST_F(socket_server_test, groups_are_found_by_name) {
    group* own = ::getgrgid(::getegid());
    ASSERT_NE(own, nullptr);
    auto found = find_group(own->gr_name);
    ASSERT_TRUE(found) << found.error().message();
    EXPECT_EQ(*found, ::getegid());
    auto missing = find_group("no-such-group-devlist");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error(), errc::invalid_argument);
    EXPECT_NE(missing.error().detail.find("socket_group"), std::string::npos);
}

}  // namespace
}  // namespace devlist::daemon::test
