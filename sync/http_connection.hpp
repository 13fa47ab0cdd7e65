// One keep-alive connection to the homeserver, plain or TLS. Internal to devlist_http: the
// client pools these; Beast stays in http_connection.cpp.
#pragma once

#include "devlist/error.hpp"
#include "sync/http_client.hpp"
#include "sync/url.hpp"

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace devlist::sync::detail {

// What all connections of one client share. Owned by the client; outlives its connections.
struct connection_settings {
    url base;
    std::string peer;                          // "host:port", for error details
    std::string host_header;                   // the Host header's value
    boost::asio::ssl::context* tls = nullptr;  // set for https
    std::chrono::milliseconds connect_timeout{};
    std::size_t max_header_bytes = 0;
    std::size_t max_body_bytes = 0;
    std::string user_agent;
};

// One request's time budget, spent across all its steps (and both attempts).
struct request_deadline {
    std::chrono::steady_clock::time_point at;
    std::chrono::milliseconds budget;  // for details: "timed out after <budget> ms ..."
};

struct exchange_result {
    result<http_response> response;
    // The request failed before any byte of a response arrived, and not by timeout or
    // cancellation: on a reused connection this means the server had already closed it.
    bool failed_before_response = false;
    bool reusable = false;  // the connection can take another request
};

class http_connection {
  public:
    virtual ~http_connection() = default;

    // Sends `req` and reads the whole response. After an error the connection must be dropped.
    virtual boost::asio::awaitable<exchange_result> exchange(http_request req,
                                                             request_deadline deadline) = 0;

    // Whether an idle connection can take a request: the socket is open and the server has sent
    // nothing since the last response (a FIN, a TLS close_notify or stray bytes all end it).
    virtual bool ready_for_reuse() = 0;
};

// Resolves the host, connects, and for https performs the TLS handshake with SNI, certificate
// and host-name verification. `settings` must outlive the connection.
boost::asio::awaitable<result<std::unique_ptr<http_connection>>> open_connection(
    const connection_settings* settings, request_deadline deadline);

}  // namespace devlist::sync::detail
