// The sync engine: logs in if needed, long-polls /sync and commits each response with its
// next_batch in one transaction, and fetches and verifies outdated device lists with
// /keys/query — the heart of devlistd, used by the daemon and by bots that embed it.
//
// Threading: everything runs on the one executor given at construction (one io thread); the
// engine is not thread-safe. Only the signature checks of a /keys/query answer may run on a
// small pool of the engine's own (engine_options::verify_threads). Cancellation: cancelling
// the coroutine returned by run() (e.g. with a cancellation signal bound to co_spawn) stops all
// loops; nothing half-applied is committed because every change is one SQLite transaction.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/seal.hpp"
#include "devlist/error.hpp"
#include "storage/store.hpp"
#include "sync/backoff.hpp"
#include "sync/http_client.hpp"
#include "sync/log.hpp"

namespace devlist::sync {

// One /sync response as the sync hook (engine_options::on_sync_response) sees it. The views
// are valid during the call only.
struct sync_delivery {
    std::string_view since;  // the token the request was sent with; empty for an initial sync
    std::string_view next_batch;
    std::string_view body;  // the response body as received (JSON)
};

// One verification thread per core, up to four; one on a one-core machine.
std::size_t default_verify_threads();

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
    // A /keys/query answer is verified and stored in slices of about this much work; the io
    // thread serves the sync loop and local clients between slices.
    std::chrono::microseconds query_slice_budget{1000};
    // Threads that verify signatures beside the io thread (0: verify on the io thread, in
    // slices). By default one per core, up to four, and one on a one-core machine: there the
    // thread's lower priority (below) is what keeps the io thread answering at once.
    std::size_t verify_threads = default_verify_threads();
    // How much the verification threads lower their own priority (nice), so that the sync loop
    // and local clients come first when they compete for a core; verification gets the rest.
    int verify_threads_nice = 5;
    backoff_policy sync_backoff{std::chrono::milliseconds(1000), std::chrono::milliseconds(60000)};
    backoff_policy query_backoff{std::chrono::milliseconds(2000), std::chrono::milliseconds(60000)};
    // Per server listed in /keys/query `failures`, and per user missing from an answer.
    backoff_policy server_backoff{std::chrono::milliseconds(15000),
                                  std::chrono::milliseconds(15 * 60000)};
    // Milliseconds since the epoch; tests inject their own.
    std::function<std::int64_t()> clock;

    // ---- key maintenance ----
    // Seals the private keys at rest. Required: the engine creates and keeps private keys.
    std::shared_ptr<const crypto::sealing_key> sealing_key;
    // One-time keys kept on the server, and published private keys kept locally at most.
    std::size_t one_time_key_target = 50;
    std::size_t one_time_keys_kept = 5000;
    // The fallback key is rotated when used and at least this often; a replaced key's private
    // part is kept this long after its successor was published.
    std::chrono::milliseconds fallback_rotation{7LL * 24 * 3600 * 1000};
    std::chrono::milliseconds fallback_keep_previous{3600 * 1000};
    // Create and upload cross-signing keys when the account has none.
    bool bootstrap_cross_signing = false;
    backoff_policy upload_backoff{std::chrono::milliseconds(2000),
                                  std::chrono::milliseconds(300000)};

    // ---- for a bot that embeds the engine (include/devlist/engine.hpp) ----
    // Called on the io thread after each successful /sync and before its batch is applied, so
    // the bot sees every response (rooms, to-device events) before next_batch is committed.
    // An error leaves the batch uncommitted: the same request is sent again after the sync
    // backoff and the hook sees the batch again. It holds up the sync loop while it runs and
    // must not throw (an exception ends run()).
    std::function<result<void>(const sync_delivery&)> on_sync_response;
    // The /sync filter (JSON) in place of the built-in one, which lets only member and
    // encryption events through: a hook may want whole timelines. It must let m.room.member
    // and m.room.encryption through and not lazy-load members, or tracking misses users.
    // Created at every start and never stored, so a later run without it is unaffected.
    std::optional<std::string> sync_filter;
};

// The own device's keys as key maintenance sees them.
enum class cross_signing_state {
    off,                // not configured, and the account has no cross-signing keys we know of
    pending,            // created, upload not yet confirmed
    uploaded,           // ours, on the server, own device signed
    managed_elsewhere,  // the server has a master key devlistd did not create
    failed,             // the upload was refused (see last_key_error)
};

// "off", "pending", "uploaded", "managed_elsewhere", "failed".
std::string_view to_string(cross_signing_state s);

struct key_status {
    bool identity_uploaded = false;
    std::string ed25519;  // the own device's identity keys (public)
    std::string curve25519;
    std::int64_t one_time_keys_on_server = 0;  // signed_curve25519, as last reported
    std::size_t one_time_key_target = 0;
    std::int64_t one_time_keys_pending = 0;      // generated, upload not confirmed
    std::uint64_t one_time_keys_uploaded = 0;    // since start
    std::uint64_t one_time_key_conflicts = 0;    // 400 "already exists" since start
    bool fallback_supported = false;             // the server reports unused fallback key types
    std::optional<std::string> fallback_key_id;  // the current fallback key
    bool fallback_published = false;
    cross_signing_state cross_signing = cross_signing_state::off;
    std::uint64_t uploads = 0;          // successful key uploads of any kind since start
    std::uint64_t upload_failures = 0;  // failed key uploads since start
    std::string last_key_error;         // empty when the last key upload succeeded
};

// Upper bounds (ms) of the sync latency histogram buckets; a last bucket counts the rest.
inline constexpr std::int64_t sync_latency_bounds_ms[] = {100,  250,   500,   1000, 2500,
                                                          5000, 10000, 30000, 60000};

enum class engine_phase { starting, syncing, backing_off, stopped };
// "starting", "syncing", "backing_off", "stopped".
std::string_view to_string(engine_phase p);

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
    std::uint64_t sync_failures = 0;
    std::uint64_t query_failures = 0;
    // Servers named in /keys/query `failures`, with how often, since start.
    std::map<std::string, std::uint64_t> query_failures_by_server;
    // /sync request durations (long-polls included): counts per bucket of
    // sync_latency_bounds_ms plus one for longer ones, and their sum.
    std::array<std::uint64_t, std::size(sync_latency_bounds_ms) + 1> sync_latency_buckets{};
    std::int64_t sync_latency_sum_ms = 0;
    key_status keys;
    std::string last_error;  // empty when the last attempt succeeded
};

// A private key handed to the device's owner (its Olm implementation needs it to open a
// session from a pre-key message). Keys are unpadded base64; private_key is the 32-byte
// Curve25519 secret.
struct private_key_handout {
    std::string key_id;  // without the "signed_curve25519:" prefix
    std::string public_key;
    std::string private_key;
};

struct fallback_key_handout {
    private_key_handout key;
    bool current = false;  // false: a previous key kept until erase_after
    bool published = false;
    std::optional<std::int64_t> used_at;
    std::optional<std::int64_t> erase_after;
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

    // Returns at `deadline`, or as soon as the engine committed a change to the store (a sync
    // batch, a /keys/query answer, a local request, a key upload); callers re-check what they
    // wait for. Cancellable.
    boost::asio::awaitable<void> wait_for_change(std::chrono::steady_clock::time_point deadline);

    // The private half of an own one-time key, by key ID or by public key; it is erased from
    // the store when handed out (an Olm session now owns it). nullopt if there is no such key.
    result<std::optional<private_key_handout>> take_one_time_key(const std::string& key_id);
    result<std::optional<private_key_handout>> take_one_time_key_by_public_key(
        const std::string& public_key);
    // The current fallback key and the previous ones still kept, current first.
    result<std::vector<fallback_key_handout>> fallback_keys();

    // Changes the one-time key target while running (a configuration reload); key
    // maintenance tops up to it, or lets claims bring the server down to it.
    void set_one_time_key_target(std::size_t target);

  private:
    class impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::sync
