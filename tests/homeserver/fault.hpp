// Faults the test homeserver can inject, and the queue that decides which request gets one.
//
// A fault matches requests by path prefix (and optionally method) and affects the next `count`
// matching requests, in the order faults were injected. What it does is one of the actions
// below; every action is what a real server or network can do to a client.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace devlist::testing {

namespace fault_action {

// Wait, then answer normally.
struct delay {
    std::chrono::milliseconds duration;
};

// 429 M_LIMIT_EXCEEDED with a Retry-After header (whole seconds, rounded up) and retry_after_ms.
struct rate_limit {
    std::chrono::milliseconds retry_after{1000};
};

// A 5xx (or any) status with a Matrix error body {errcode: M_UNKNOWN, error}.
struct server_error {
    unsigned status = 500;
};

// Close the connection without answering.
struct drop_connection {};

// Answer normally, but the Content-Length announces the whole body and only half follows before
// the connection is closed.
struct truncate_body {};

// Answer with exactly this status and body: malformed JSON, huge or deeply nested bodies,
// invalid UTF-8, wrong types — anything.
struct raw_response {
    unsigned status = 200;
    std::string body{};
    std::string content_type = "application/json";
};

// Never answer; the connection stays open until the client closes it or the server stops.
struct hang {};

// Do what the request asks, then close the connection without answering: the change is made
// but the client never learns it (a lost answer; a retry must be safe).
struct lose_answer {};

// Answer a /sync that has a `since` token as if the token were unknown: 400 M_UNKNOWN
// "Invalid stream token" (what Synapse answers for a token it cannot parse). A client recovers
// with an initial sync and /keys/changes from its old token.
struct reject_sync_token {};

// Revoke the access token the request carries, then answer 401 M_UNKNOWN_TOKEN (as will every
// later request with that token).
struct revoke_access_token {};

}  // namespace fault_action

using fault_kind =
    std::variant<fault_action::delay, fault_action::rate_limit, fault_action::server_error,
                 fault_action::drop_connection, fault_action::truncate_body,
                 fault_action::raw_response, fault_action::hang, fault_action::lose_answer,
                 fault_action::reject_sync_token, fault_action::revoke_access_token>;

struct fault {
    std::string path_prefix{};  // e.g. "/_matrix/client/v3/keys/query"; the query is ignored
    fault_kind action{};
    std::string method{};  // "GET", "POST", ...; empty matches every method
    int count = 1;         // how many matching requests it affects
};

// Not thread-safe; the test homeserver guards it with its model's mutex.
class fault_queue {
  public:
    void add(fault f) { faults_.push_back(std::move(f)); }
    void clear() { faults_.clear(); }
    // Uses left, over every fault.
    std::size_t pending() const {
        std::size_t uses = 0;
        for (const auto& f : faults_)
            uses += static_cast<std::size_t>(f.count);
        return uses;
    }

    // The action for a request, consuming one use of the first matching fault.
    std::optional<fault_kind> take(std::string_view method, std::string_view path);

  private:
    std::deque<fault> faults_;
};

}  // namespace devlist::testing
