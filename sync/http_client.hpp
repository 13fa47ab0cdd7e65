// HTTP/1.1 client for the homeserver: keep-alive connections (plain or TLS), per-request
// timeouts, size limits, cancellation. Beast stays inside the implementation.
#pragma once

#include "devlist/error.hpp"
#include "sync/url.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace devlist::sync {

struct http_client_options {
    // Bounds resolve + TCP connect + TLS handshake of a new connection (within the request's own
    // timeout).
    std::chrono::milliseconds connect_timeout{10000};
    std::size_t max_response_bytes = 64u << 20;  // body; more is an error
    std::size_t max_header_bytes = 64u << 10;
    std::string user_agent = "devlistd";
    // Trusted in addition to the system's CA store (a private CA; tests use a self-signed one).
    std::optional<std::filesystem::path> extra_ca_file{};
    // Only for an explicit opt-out; certificate and host name are verified by default.
    bool verify_tls = true;
    // Idle keep-alive connections kept for reuse; more are closed after their response.
    std::size_t max_idle_connections = 4;
};

enum class http_method { get, post, put, delete_ };

struct http_request {
    http_method method = http_method::get;
    // Path and query, already percent-encoded, starting with '/'; the base path is prefixed. A
    // target with spaces or controls, or a header value with controls, is refused
    // (errc::invalid_argument) before anything is sent.
    std::string target{};
    std::string body{};
    std::string content_type = "application/json";  // sent only with a non-empty body
    std::optional<std::string> bearer_token{};
    std::chrono::milliseconds timeout{30000};  // the whole request: connect, write and read
    // Whether sending the request twice is harmless. Unset: GET, PUT and DELETE are (RFC 9110),
    // POST is not. Set it for a POST that is safe to repeat, such as /keys/query.
    std::optional<bool> idempotent{};
};

struct http_response {
    unsigned status = 0;
    // capacity() >= size() + 64, so a JSON parser can use the spare bytes as padding in place.
    // Move the response along: a copy of the string drops the spare capacity.
    std::string body{};
    // From a Retry-After header (delay-seconds or HTTP-date), if the server sent a valid one.
    std::optional<std::chrono::milliseconds> retry_after{};
};

// The client. Any HTTP status is a response; only transport failures are errors (refused, reset,
// timeout, TLS failure, truncated or oversized response), each with a detail naming the peer
// and the step that failed.
//
// Connections: a request takes an idle keep-alive connection or opens a new one, so a long-poll
// and parallel requests run side by side. A pooled connection the server has closed is replaced;
// an idempotent request that fails on a reused connection before any byte of the response
// arrived is sent once more on a new connection.
//
// Threading: not thread-safe. Construct, call and destroy it on the thread that runs the
// executor (the project runs one io_context on one thread).
//
// Cancellation: request() honours terminal cancellation from the awaiting coroutine (e.g. the
// loser of `co_await (a || b)`); close() aborts every request in flight. Either way the request
// completes with boost::asio::error::operation_aborted and its connection is closed. The
// destructor calls close(); requests still in flight then complete safely.
class http_client {
  public:
    // Throws boost::system::system_error on a start-up configuration error: TLS setup failed
    // (e.g. an unreadable extra_ca_file), or user_agent holds a control character.
    http_client(boost::asio::any_io_executor executor, url base, http_client_options options);
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    boost::asio::awaitable<result<http_response>> request(http_request req);

    // Aborts requests in flight and closes idle connections. Later requests fail with
    // operation_aborted.
    void close() noexcept;

  private:
    class impl;
    // Shared with the requests in flight, so that destroying the client never leaves them
    // pointing at freed state.
    std::shared_ptr<impl> impl_;
};

}  // namespace devlist::sync
