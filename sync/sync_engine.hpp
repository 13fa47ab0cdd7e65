// The sync engine: logs in if needed, long-polls /sync and commits each response with its
// next_batch in one transaction, and fetches and verifies outdated device lists with
// /keys/query — the heart of devlistd, used by the daemon and by bots that embed it.
//
// Threading: everything runs on the one executor given at construction (one io thread); the
// engine is not thread-safe. Cancellation: cancelling the coroutine returned by run() (e.g.
// with a cancellation signal bound to co_spawn) stops all loops; nothing half-applied is
// committed because every change is one SQLite transaction.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "devlist/error.hpp"
#include "storage/store.hpp"
#include "sync/backoff.hpp"
#include "sync/http_client.hpp"
#include "sync/log.hpp"

namespace devlist::sync {

struct engine_options {
    std::string user_id;
    // The device to log in as (password login) or to expect (access token). Without one, the
    // device ID from the first login is stored and reused.
    std::optional<std::string> device_id;
    // One of the two credentials is required; the password also allows re-login when the
    // server revokes the token.
    std::optional<std::string> access_token;
    std::optional<std::string> password;
    std::string device_display_name = "devlistd";

    std::chrono::milliseconds sync_timeout{30000};  // long-poll time asked of the server
    std::size_t query_batch_size = 250;
    std::size_t queries_in_flight = 2;
    std::chrono::milliseconds query_server_timeout{10000};
    backoff_policy sync_backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000)};
    backoff_policy query_backoff{std::chrono::milliseconds(2000), std::chrono::milliseconds(60000)};
    // Per server listed in /keys/query `failures`, and per user missing from an answer.
    backoff_policy server_backoff{std::chrono::milliseconds(15000),
                                  std::chrono::milliseconds(15 * 60000)};
    // Milliseconds since the epoch; tests inject their own.
    std::function<std::int64_t()> clock;
};

enum class engine_phase { starting, syncing, backing_off, stopped };

struct engine_status {
    engine_phase phase = engine_phase::starting;
    std::string user_id;
    std::string device_id;
    std::optional<std::string> next_batch;
    std::uint64_t syncs = 0;
    std::optional<std::int64_t> last_sync_at;  // ms since the epoch
    std::uint64_t queries = 0;
    std::size_t users_in_flight = 0;  // users in /keys/query requests awaiting an answer
    std::size_t tracked = 0;
    std::size_t outdated = 0;
    std::uint64_t devices_rejected = 0;
    std::string last_error;  // empty when the last attempt succeeded
};

class sync_engine {
  public:
    sync_engine(boost::asio::any_io_executor executor, storage::store& store, http_client& http,
                engine_options options, log_function log);
    ~sync_engine();
    sync_engine(const sync_engine&) = delete;
    sync_engine& operator=(const sync_engine&) = delete;

    // Runs until cancelled (then returns success) or until the engine cannot go on: the
    // credential was refused, the store failed. The error says what happened and what to do.
    boost::asio::awaitable<result<void>> run();

    engine_status status() const;

    // Local requests (from the socket API or an embedding bot); each is committed before it
    // returns, and wakes the query workers.
    result<void> track_user(const std::string& user_id);
    result<bool> untrack_user(const std::string& user_id);
    result<void> refresh_user(const std::string& user_id);

  private:
    class impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::sync
