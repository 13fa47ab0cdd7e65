// The socket server on a real Unix socket in a private temporary folder, serving the API of
// api_fixture, with clients that are coroutines on the same io_context (the one io thread of
// devlistd, seen from both ends): no threads, no sleeps.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <stdlib.h>

#include <filesystem>

#include "daemon/socket_server.hpp"
#include "tests/unit/daemon/api_fixture.hpp"

namespace devlist::daemon::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using local = asio::local::stream_protocol;

// What a client saw: the answers in order, and how the connection ended.
struct conversation {
    std::vector<http::response<http::string_body>> responses;
    boost::system::error_code ended;  // the error that ended reading (eof: the server closed)
    bool done = false;
};

class server_fixture : public api_fixture {
  protected:
    std::filesystem::path dir;
    std::filesystem::path socket_path;
    socket_server_limits limits;
    std::optional<socket_server> server;
    asio::cancellation_signal stop_signal;
    bool server_running = false;
    bool server_ended = false;
    std::exception_ptr server_error;

    void SetUp() override {
        api_fixture::SetUp();
        // Short: a Unix socket path has at most 107 bytes.
        std::string pattern = "/tmp/dl-sock-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        dir = pattern;
        socket_path = dir / "devlistd.sock";
    }

    void TearDown() override {
        stop_server();
        server.reset();
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
        api_fixture::TearDown();
    }

    void make_server() {
        server.emplace(io.get_executor(), *api, limits,
                       [this](sync::log_level, std::string_view l) { log_lines.emplace_back(l); });
    }

    // Binds with the default options and runs the server.
    void start_server(std::optional<socket_file_options> options = std::nullopt) {
        make_server();
        auto r = server->bind(options.value_or(socket_file_options{socket_path}));
        ASSERT_TRUE(r) << r.error().message();
        run_server();
    }

    void run_server() {
        server_ended = false;
        server_running = true;
        asio::co_spawn(
            io, server->run(),
            asio::bind_cancellation_slot(stop_signal.slot(), [this](std::exception_ptr e) {
                server_ended = true;
                server_error = e;
            }));
    }

    void stop_server() {
        if (!server || !server_running || server_ended) return;
        stop_signal.emit(asio::cancellation_type::terminal);
        EXPECT_TRUE(run_until([&] { return server_ended; })) << "the server did not stop";
        EXPECT_FALSE(server_error) << "the server ended with an exception";
    }

    local::socket connect() {
        local::socket s(io);
        boost::system::error_code ec;
        s.connect(local::endpoint(socket_path.string()), ec);
        EXPECT_FALSE(ec) << "connect: " << ec.message();
        return s;
    }

    static std::string get(const std::string& target, bool close = false) {
        return "GET " + target + " HTTP/1.1\r\nHost: devlistd\r\n" +
               (close ? "Connection: close\r\n" : "") + "\r\n";
    }
    static std::string post(const std::string& target, const std::string& body) {
        return "POST " + target +
               " HTTP/1.1\r\nHost: devlistd\r\nContent-Type: application/json\r\n"
               "Content-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    }

    // Writes `raw`, reads `answers` responses, then (if `until_closed`) reads on until the
    // server closes the connection. `out` is shared with the coroutine: a test may end while
    // its clients still run.
    static asio::awaitable<void> talk(local::socket s, std::string raw, std::size_t answers,
                                      bool until_closed, std::shared_ptr<conversation> out,
                                      std::optional<local::endpoint> connect_to = std::nullopt) {
        constexpr auto tuple = asio::as_tuple(asio::use_awaitable);
        if (connect_to) {
            auto [cec] = co_await s.async_connect(*connect_to, tuple);
            if (cec) {
                out->ended = cec;
                out->done = true;
                co_return;
            }
        }
        if (!raw.empty()) {
            auto [wec, wn] = co_await asio::async_write(s, asio::buffer(raw), tuple);
            if (wec) {
                out->ended = wec;
                out->done = true;
                co_return;
            }
        }
        beast::flat_buffer buffer;
        for (std::size_t i = 0; i < answers; ++i) {
            http::response<http::string_body> res;
            auto [ec, n] = co_await http::async_read(s, buffer, res, tuple);
            if (ec) {
                out->ended = ec;
                out->done = true;
                co_return;
            }
            out->responses.push_back(std::move(res));
        }
        if (until_closed) {
            char byte;
            auto [ec, n] = co_await s.async_read_some(asio::buffer(&byte, 1), tuple);
            out->ended = ec ? ec : asio::error::no_recovery;  // data: not what was expected
        }
        out->done = true;
    }

    // A client that connects without blocking this thread (which also runs the server).
    std::shared_ptr<conversation> start_client(std::string raw, std::size_t answers,
                                               bool until_closed = false) {
        return start_talk(local::socket(io), std::move(raw), answers, until_closed,
                          local::endpoint(socket_path.string()));
    }

    std::shared_ptr<conversation> start_talk(local::socket s, std::string raw, std::size_t answers,
                                             bool until_closed = false,
                                             std::optional<local::endpoint> connect_to = {}) {
        auto c = std::make_shared<conversation>();
        asio::co_spawn(
            io, talk(std::move(s), std::move(raw), answers, until_closed, c, std::move(connect_to)),
            [c](std::exception_ptr e) {
                if (e) ADD_FAILURE() << "a test client threw";
                c->done = true;
            });
        return c;
    }

    conversation exchange(std::string raw, std::size_t answers, bool until_closed = false) {
        auto c = start_talk(connect(), std::move(raw), answers, until_closed);
        EXPECT_TRUE(run_until([&] { return c->done; })) << "the conversation did not end";
        return std::move(*c);
    }
};

}  // namespace devlist::daemon::test
