// The test homeserver's HTTP/1.1 transport: Beast, C++20 coroutines, plain TCP or TLS.
//
// The server knows nothing about Matrix. It reads requests and asks an http_handler what to do
// with each; besides ordinary answers, a handler may ask it to hold a long-poll until something
// changes, to delay, or to misbehave on the wire (drop the connection, truncate the body, hang),
// which is how faults reach clients exactly as a broken network would deliver them.
//
// Thread-safety: listen() and start() are called before the io_context runs; stop() and
// wake_long_polls() on the thread that runs it, where the handler is called too. Shutdown is
// cancellation: stop() closes the listener and cancels every connection, after which
// io_context::run returns.
#pragma once

#include <devlist/error.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace devlist::testing {

using time_point = std::chrono::steady_clock::time_point;

struct tls_files {
    std::filesystem::path certificate_chain;  // PEM
    std::filesystem::path private_key;        // PEM
};

struct http_request {
    std::string method{};         // "GET", "POST", ...
    std::string target{};         // as sent: path and query, percent-encoded
    std::string authorization{};  // the Authorization header, empty if absent
    std::string body{};
    time_point received{};
};

// The ways to answer a request.
namespace reply {

struct answer {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> extra_headers{};
};

// Ask again (first_attempt = false) after `until`, without reading anything meanwhile.
struct delay {
    time_point until;
};

// A long-poll with nothing to say yet: ask again when wake_long_polls() is called or when the
// deadline passes, whichever comes first.
struct wait_for_change {
    time_point deadline;
};

// Send the header of `full` (with its true Content-Length) and only part of its body, then close.
struct truncated {
    answer full;
};

// Close the connection without answering.
struct drop {};

// Never answer; hold the connection until the client closes it or the server stops.
struct hang {};

}  // namespace reply

using http_reply = std::variant<reply::answer, reply::delay, reply::wait_for_change,
                                reply::truncated, reply::drop, reply::hang>;

class http_handler {
  public:
    virtual ~http_handler() = default;

    // What to do with a request. Called again with first_attempt = false after a delay or a
    // long-poll wake-up; faults are matched on the first attempt only.
    virtual http_reply handle(const http_request& request, bool first_attempt) = 0;

    // Called once per request when its outcome is settled: `status` and `body` are what was
    // sent (or, for reply::truncated, announced); status 0 means no answer (dropped, hung, or
    // the server stopped first).
    virtual void record(const http_request& request, unsigned status, std::string_view body) = 0;
};

struct http_server_limits {
    std::size_t max_request_body_bytes = 1024 * 1024;
    std::chrono::seconds idle_timeout{120};  // reading one request, keep-alive wait included
    std::chrono::seconds write_timeout{30};  // writing one response
};

class http_server {
  public:
    http_server(boost::asio::io_context& io, http_handler& handler, http_server_limits limits);
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // Binds and listens (port 0: the system picks one). May be called before the io_context
    // runs, from any thread. Returns the bound port.
    result<std::uint16_t> listen(const std::string& address, std::uint16_t port,
                                 const std::optional<tls_files>& tls);

    // Starts accepting connections (once the io_context runs).
    void start();

    // Closes the listener and cancels every connection.
    void stop();

    // Re-asks the handler about every request waiting in reply::wait_for_change.
    void wake_long_polls();

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::testing
