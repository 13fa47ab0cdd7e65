// Key maintenance: keeps the own device a good E2EE citizen. It creates the identity keys once
// and checks them against the server at every start, keeps the one-time keys at their target,
// rotates the fallback key, and (when configured) creates and uploads cross-signing keys with
// User-Interactive Auth and signs the own device with them.
//
// Every private key is committed to the store (durably, as pending) before its public part is
// uploaded, and a retry sends the same bytes: a lost answer never yields a conflict or a
// published key without its private part. Decisions come from key_planner; this class does
// the I/O.
//
// Threading and cancellation: like the engine that owns it — one io thread; cancelling run()
// stops it between two store transactions.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "devlist/error.hpp"
#include "storage/store.hpp"
#include "sync/key_planner.hpp"
#include "sync/log.hpp"
#include "sync/matrix_api.hpp"
#include "sync/own_keys.hpp"
#include "sync/sync_engine.hpp"
#include "sync/wakeup.hpp"

namespace devlist::sync {

class key_maintainer {
  public:
    // All references must outlive the maintainer. `changed` is notified after each commit;
    // `own_keys_changed` is called after the own identity keys, cross-signing keys or the own
    // device's signature were uploaded (the own user's device list must be fetched again: servers
    // do not announce a change a device made itself).
    key_maintainer(storage::store& store, matrix_api& api, const engine_options& options,
                   log_function log, key_status& status, wakeup& changed,
                   std::function<void()> own_keys_changed);

    // At start, after login: loads the identity (or creates it for a device the server has no
    // keys for) and compares it with the server's copy. A mismatch, or a device that has keys
    // on the server but none here, is an error that names what happened and what to do: new
    // identity keys are never uploaded for a device ID that already has some.
    boost::asio::awaitable<result<void>> prepare(std::string device_id);

    // Uploads, tops up and rotates until cancelled. Failures are logged and retried with
    // backoff (at the server's Retry-After at the earliest); nothing here ends the engine.
    boost::asio::awaitable<void> run();

    // What a committed /sync answer said about the own keys; wakes run().
    void note_sync(const key_planner::sync_report& report);
    // A new one-time key target (a reload); wakes run().
    void set_one_time_key_target(std::size_t target);

  private:
    using clock_point = std::chrono::steady_clock::time_point;

    boost::asio::awaitable<result<clock_point>> step();
    boost::asio::awaitable<result<void>> upload_identity();
    boost::asio::awaitable<result<void>> maintain_fallback_key(clock_point& next);
    boost::asio::awaitable<result<void>> maintain_one_time_keys();
    boost::asio::awaitable<result<void>> upload_one_time_keys(
        std::vector<storage::one_time_key> keys);
    boost::asio::awaitable<result<void>> maintain_cross_signing();
    boost::asio::awaitable<api_result<void>> upload_cross_signing(const std::string& body);
    boost::asio::awaitable<void> sleep(std::chrono::milliseconds d);
    result<void> refresh_status();
    error upload_failed(const api_failure& f);
    void record_conflict(const std::string& key_id, const std::string& message);
    void log(log_level level, const std::string& line) const {
        if (log_) log_(level, line);
    }

    storage::store& store_;
    matrix_api& api_;
    const engine_options& options_;
    log_function log_;
    key_status& status_;
    wakeup& changed_;
    std::function<void()> own_keys_changed_;
    wakeup wake_;
    // Set by every notification: one that arrives while step() runs (an upload in flight) finds
    // no parked waiter, and would otherwise wait for the next /sync to be acted on.
    bool woken_ = false;
    key_planner planner_;
    std::mt19937_64 random_;
    std::optional<device_identity_keys> identity_;
    std::string signed_device_keys_;
    bool identity_uploaded_ = false;
    bool device_signature_uploaded_ = false;
    // The master key the server had for the own user at start (or after our upload).
    std::optional<std::string> server_master_key_;
    bool cross_signing_given_up_ = false;  // refused for good: no retry until restart
    std::string cross_signing_failure_;    // why, for status
    std::optional<std::chrono::milliseconds> retry_after_;
};

}  // namespace devlist::sync
