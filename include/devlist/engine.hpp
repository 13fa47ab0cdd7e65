// devlist::engine — devlistd's engine for a bot that embeds it: the /sync loop of one Matrix
// account and device, verified device lists of the users it shares encrypted rooms with (and of
// any user it asks for), its own one-time and fallback keys kept published, an event stream, and
// a hook that shows the bot every /sync response before its batch is committed. Link with
// libdevlist (pkg-config devlist, or CMake find_package(devlist) and devlist::devlist).
//
//   boost::asio::io_context io;
//   auto config = devlist::load_engine_config("bot.toml");          // or fill engine_config
//   auto engine = devlist::engine::create(io.get_executor(), std::move(*config));
//   engine->async_run([](std::exception_ptr, devlist::result<void> r) { ... });
//   io.run();
//
// Threading: the engine runs on the executor given to create(), which must be one thread's
// (an io_context run by one thread); it is not thread-safe. Call every member
// function from that thread — from a coroutine or handler on the executor — and nothing else
// from other threads (post to the executor). Callbacks and hooks run on that thread too. The
// engine verifies the signatures of /keys/query answers on a small pool of its own (one thread
// per core, at most four; none on a single core), which touches nothing of the caller's.
//
// Cancellation: run() stops when the coroutine that awaits it is cancelled (e.g. a
// cancellation slot bound to async_run's token, or the loser of `co_await (a || b)`), and then
// returns success. Nothing half-done is committed: each change is one SQLite transaction, and a
// sync batch is committed only after the sync hook took it. The waiting calls (fresh_devices,
// wait_for_events) are cancellable the same way and change nothing when cancelled.
//
// Build a bot with the Boost that libdevlist was built with (1.81 on Debian 12): the engine runs
// on the bot's io_context, so the two share Asio's per-thread state (README, "Library").
//
// Errors are values (devlist::result, include/devlist/error.hpp): errc::invalid_argument for bad
// input (a malformed user ID, an unknown consumer), storage_* for the database, io_error for
// files. Nothing throws, except that an exception thrown by a bot's callback ends run() with it.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devlist/error.hpp"
#include "devlist/export.h"
#include "devlist/types.hpp"

namespace devlist {

// "0.1.0": the library's version.
DEVLIST_API const char* library_version() noexcept;

enum class log_level { debug, info, notice, warning, error };
// Lines never hold secrets.
using log_function = std::function<void(log_level, std::string_view)>;

// A secret, given as a value by the program or read from a file (its one line) by create().
struct secret {
    std::optional<std::string> value;
    std::optional<std::filesystem::path> file;
};

// The settings of devlistd's configuration file (README, "Configuration") that the engine uses.
struct engine_config {
    std::string homeserver;  // base URL, http:// or https://
    std::string user_id;
    // The device to log in as (password) or to expect (access token); without one, the device
    // of the first login is stored and reused.
    std::optional<std::string> device_id;
    // One of the two is required; the password also allows logging in again when the server
    // revokes the token.
    secret access_token;
    secret password;
    std::filesystem::path database;  // SQLite; one process at a time
    // Seals the private keys at rest. Default "<database>.key", created at the first start only.
    std::optional<std::filesystem::path> sealing_key_file;
    std::optional<std::filesystem::path> ca_file;  // trusted besides the system's CAs
    std::string device_display_name = "devlist";
    std::chrono::milliseconds sync_timeout{30000};
    std::size_t one_time_key_target = 50;
    std::size_t one_time_keys_kept = 5000;
    bool bootstrap_cross_signing = false;  // cross_signing = "bootstrap"
    // Lines below this level are not handed to the log function.
    log_level min_log_level = log_level::notice;
    // The /sync filter (JSON) in place of the built-in one, which lets only member and
    // encryption events through: a sync hook that wants whole timelines sets one. It must let
    // m.room.member and m.room.encryption through and not lazy-load members.
    std::optional<std::string> sync_filter;
};

// Reads devlistd's TOML configuration: the same keys and checks, so one format serves both
// (keys of the daemon alone, such as socket and the allow-lists, are accepted and ignored;
// unknown keys are errors), plus sync_filter (the filter's JSON as a string) for bots. Relative
// paths are taken relative to `base_dir` (the file's folder for load_engine_config). Secrets come
// from access_token_file and password_file, never from the file itself; they are read by
// engine::create(). Errors (errc::invalid_argument) name the key and the problem.
DEVLIST_API result<engine_config> parse_engine_config(std::string_view toml,
                                                      const std::filesystem::path& base_dir);
DEVLIST_API result<engine_config> load_engine_config(const std::filesystem::path& file);

// One /sync response as the sync hook sees it; the views are valid during the call only.
struct sync_response_view {
    std::string_view since;  // the token the request was sent with; empty for an initial sync
    std::string_view next_batch;
    std::string_view body;  // the whole response body as received (JSON): rooms, to_device, ...
};

// Called after each successful /sync, before the engine applies and commits the batch. Return
// an error when the bot could not take the batch: nothing is committed, and the same request is
// sent again after a backoff, so the hook sees the batch again. A bot therefore misses nothing,
// but may see a batch twice after a crash (between its own commit and the engine's): make
// handling idempotent by next_batch. It holds up the sync loop while it runs.
using sync_hook = std::function<result<void>(const sync_response_view&)>;

struct engine_hooks {
    log_function log;   // none: lines are dropped
    sync_hook on_sync;  // none: the engine commits every batch at once
};

struct fresh_wait {
    std::chrono::milliseconds timeout{10000};
};

class DEVLIST_API engine {
  public:
    using subscription_id = std::uint64_t;
    // One call per batch of events committed together, in cursor order, never the same event
    // twice within a run. Runs on the engine's thread; must not throw.
    using event_callback = std::function<void(const event_batch&)>;

    // Reads the secret files, opens (and migrates) the database, loads or creates the sealing
    // key and prepares TLS; nothing touches the network before run(). Fails with
    // storage_locked when another process (devlistd, another bot) holds the database.
    static result<engine> create(boost::asio::any_io_executor executor, engine_config config,
                                 engine_hooks hooks = {});

    engine(engine&&) noexcept;
    engine& operator=(engine&&) noexcept;
    // Must not be destroyed while run() runs: cancel it and wait for its end first.
    ~engine();

    boost::asio::any_io_executor get_executor() const noexcept;

    // Logs in if needed, then syncs, fetches device lists and keeps keys published until
    // cancelled (success) or until it cannot go on: the credential was refused, the database
    // failed, the server's copy of the own device keys differs (the error says what to do).
    // One run at a time.
    boost::asio::awaitable<result<void>> run();

    // run() for any completion token: a callback void(std::exception_ptr, result<void>),
    // boost::asio::use_future, use_awaitable... The exception_ptr is set only if a callback of
    // the bot threw.
    template <class CompletionToken>
    auto async_run(CompletionToken&& token) {
        return boost::asio::co_spawn(get_executor(), run(), std::forward<CompletionToken>(token));
    }

    // ---- queries (each reads the database; none waits unless it says so) ----

    devlist::status status() const;  // never fails: the cursor is 0 if the database cannot say
    // The status once this run committed its first /sync batch, or at the timeout, or when run()
    // ended; `syncs` and `phase` say which. Until then the engine knows only what the database
    // held (a new database: not even which users share encrypted rooms). On a database that
    // synced before, the first sync is a long-poll: it comes when something happened, or after
    // sync_timeout.
    boost::asio::awaitable<devlist::status> wait_for_sync(std::chrono::milliseconds timeout);

    // A user's devices as stored now; for a user who is not tracked (or not yet fetched) the
    // answer says so (tracked, outdated) rather than failing.
    result<user_devices> devices(const std::string& user_id) const;
    // Waits until the user's list is fresh (fetched since the last change the server
    // announced), the user is not tracked, or the timeout passes; `outdated` says which.
    boost::asio::awaitable<result<user_devices>> fresh_devices(std::string user_id,
                                                               fresh_wait wait = {});
    // The device that owns a Curve25519 key (the sender_key check of an Olm message), also one
    // deleted since (deleted_at is set); nullopt if no known device has it.
    result<std::optional<device>> device_by_curve25519(const std::string& key) const;

    // ---- tracking (each committed before it returns; the engine fetches in the background) ----

    result<void> track(const std::string& user_id);
    // Drops the explicit reason; true if there was one. The user stays tracked while they share
    // an encrypted room.
    result<bool> untrack(const std::string& user_id);
    // Marks a tracked user outdated so that the list is fetched again (invalid_argument if the
    // user is not tracked).
    result<void> refresh(const std::string& user_id);
    result<std::vector<tracked_user>> tracked_users() const;

    // ---- the event stream (kept in the database until every consumer acknowledged) ----

    // Up to `limit` events after `cursor` (1 to 1000).
    result<event_batch> events_after(std::int64_t cursor, std::size_t limit = 100) const;
    // Like events_after, but waits up to `timeout` for an event when there is none yet.
    boost::asio::awaitable<result<event_batch>> wait_for_events(std::int64_t cursor,
                                                                std::chrono::milliseconds timeout,
                                                                std::size_t limit = 100);
    // A consumer's acknowledged cursor: read events after it. Registers the consumer if new; a
    // new one starts after the last event so far. Names: 1 to 64 of A-Z a-z 0-9 . _ -
    result<std::int64_t> consumer_cursor(const std::string& consumer);
    // The consumer handled every event up to `cursor`; returns its cursor afterwards (it never
    // moves back). Events every consumer acknowledged are deleted.
    result<std::int64_t> acknowledge(const std::string& consumer, std::int64_t cursor);

    // Calls `callback` with each batch of events after `after` as they are committed, while
    // run() runs (from the first turn of run() on, for events already there too). Delivery is
    // in memory: acknowledge through a consumer to survive restarts.
    subscription_id subscribe(std::int64_t after, event_callback callback);
    void unsubscribe(subscription_id id);

    // ---- the own device's private keys ----

    // The private half of an own one-time key, by key ID (with or without the
    // "signed_curve25519:" prefix) or public key, erased from the database as it is handed out;
    // nullopt if there is no such key (taken already, or never ours).
    result<std::optional<one_time_key>> take_one_time_key(const std::string& key_id);
    result<std::optional<one_time_key>> take_one_time_key_by_public_key(
        const std::string& public_key);
    // The current fallback key and the previous ones still kept, current first.
    result<std::vector<fallback_key>> fallback_keys() const;

  private:
    class DEVLIST_LOCAL impl;
    DEVLIST_LOCAL explicit engine(std::unique_ptr<impl> impl) noexcept;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist
