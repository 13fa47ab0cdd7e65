// The socket API: HTTP/1.1 + JSON requests of local clients (devlistctl, bots, scripts) turned
// into answers from the store and the sync engine. Only routing and handlers live here; the
// socket I/O is socket_server's. Requests and answers are plain objects, so tests and fuzzers
// drive the API without sockets.
//
// The endpoints, their JSON and their errors are an interface that scripts rely on; README.md,
// "Socket API", documents each. Errors are JSON {"errcode", "error"} with the HTTP status that
// fits (Matrix error codes where one fits).
//
// Threading: runs on the engine's io thread and reads the store directly (one thread, no
// locks). Cancellation: handle() is cancellable; a cancelled request that was waiting (fresh
// device list, event long-poll) ends with operation_aborted and changes nothing. Requests that
// change state (track, acknowledge, take a key) never suspend before their change is committed.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/metrics_text.hpp"
#include "daemon/peer_access.hpp"
#include "storage/store.hpp"
#include "sync/log.hpp"
#include "sync/sync_engine.hpp"

namespace devlist::daemon {

struct api_request {
    std::string method;  // "GET", "PUT", ... as received
    std::string target;  // origin-form: path and query, percent-encoded
    std::string body;
    peer_credentials peer;
};

struct api_response {
    unsigned status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::string allow;  // 405 answers: the methods the resource takes ("GET, PUT")
};

struct socket_api_options {
    access_policy access;
    // Waits asked with timeout_ms are cut to this, so one request cannot hold a connection
    // forever.
    std::chrono::milliseconds max_wait{60000};
    // timeout_ms of GET /v1/users/{user_id}/devices?fresh=true when none is given.
    std::chrono::milliseconds default_fresh_wait{10000};
    std::size_t default_event_limit = 100;
    std::size_t max_event_limit = 1000;
    std::size_t max_security_events = 1000;
    std::string version;  // in GET /v1/status
};

class socket_api {
  public:
    socket_api(sync::sync_engine& engine, storage::store& store, socket_api_options options,
               sync::log_function log);

    // The answer to one request. Never throws for bad input; a store failure is a 500 answer.
    boost::asio::awaitable<api_response> handle(api_request request);

    // The answer to a request that never waits, at once, counted and logged as handle() would.
    // nullopt for one that may wait (GET /v1/events, GET /v1/users/{user_id}/devices?fresh=true),
    // and then nothing was done or counted: handle() answers it. Lets the server answer most
    // requests without a coroutine of their own.
    std::optional<api_response> answer_now(const api_request& request);

    // An error answer in the API's format: {"errcode": ..., "error": ...}.
    static api_response error_response(unsigned status, std::string_view errcode,
                                       std::string_view message);

    // Counts an answer that the server made itself (a malformed or oversized request), for
    // GET /metrics; handle() counts its own.
    void count_response(unsigned status);
    const api_counters& counters() const noexcept { return counters_; }

    // Replaces the allow-lists (a configuration reload, SIGHUP): every request from now on is
    // checked against the new policy; one already admitted and waiting goes on.
    void set_access_policy(access_policy access) { options_.access = std::move(access); }

  private:
    friend struct api_handlers;

    // Everything but the waiting: nullopt for a request that route_waiting must answer.
    std::optional<api_response> route_now(const api_request& request);
    boost::asio::awaitable<api_response> route_waiting(api_request request);
    // Counts an answer of handle()'s and logs it if it is a failure of ours.
    void finish(const api_request& request, const api_response& response);

    sync::sync_engine& engine_;
    storage::store& store_;
    socket_api_options options_;
    sync::log_function log_;
    api_counters counters_;
};

}  // namespace devlist::daemon
