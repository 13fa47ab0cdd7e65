// The socket API's server: HTTP/1.1 over a Unix stream socket, with keep-alive, many clients
// at once on the one io thread, and limits on what a client may send and how slowly. Each
// request goes to socket_api with the peer's credentials (SO_PEERCRED), read once at accept.
//
// Threading: runs on the io thread of the executor given at construction, beside the engine;
// not thread-safe. Cancellation: cancelling run() (a cancellation signal bound to co_spawn)
// stops accepting, cancels every connection (requests waiting for a change end without an
// answer), waits until they are gone, and removes the socket file if bind() created it.
//
// Beast stays out of this header: the connection code lives in socket_server.cpp.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>

#include "daemon/socket_api.hpp"
#include "daemon/socket_file.hpp"
#include "devlist/error.hpp"
#include "sync/log.hpp"

namespace devlist::daemon {

struct socket_server_limits {
    std::size_t max_header_bytes = 8 * 1024;  // request line and fields: 431 beyond
    std::size_t max_body_bytes = 64 * 1024;   // 413 beyond
    // A kept-alive connection without a request for this long is closed.
    std::chrono::milliseconds idle_timeout{60000};
    // From a request's first byte to its last: a client slower than this is closed
    // without an answer.
    std::chrono::milliseconds request_timeout{10000};
    // To write one answer: a client that does not read is closed.
    std::chrono::milliseconds write_timeout{10000};
    // Connections beyond this are closed at once (each costs a coroutine and its buffers).
    std::size_t max_connections = 1024;
};

class socket_server {
  public:
    socket_server(boost::asio::any_io_executor executor, socket_api& api,
                  socket_server_limits limits, sync::log_function log);
    ~socket_server();
    socket_server(const socket_server&) = delete;
    socket_server& operator=(const socket_server&) = delete;

    // Listens on a new socket file (see bind_socket_file for what is refused). Call once,
    // before run(), or adopt() instead.
    result<void> bind(const socket_file_options& options);
    // Listens on an already listening Unix stream socket, e.g. one from systemd socket
    // activation. On success the server owns fd (on failure the caller still does), and
    // leaves its file to whoever made it.
    result<void> adopt(int fd);

    // The socket file created by bind(); nullopt after adopt().
    std::optional<std::filesystem::path> path() const;
    std::size_t connection_count() const noexcept;

    // Accepts and serves until cancelled. Accept errors (out of file descriptors) are logged
    // and retried; it never ends on its own.
    boost::asio::awaitable<void> run();

  private:
    class impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::daemon
