// The answers of the local APIs — the socket API (daemon/socket_api) and the library
// (include/devlist/engine.hpp) — read from the engine and the store as the public types of
// include/devlist/types.hpp. Both APIs answer through these functions and render with
// include/devlist/json.hpp, so the two cannot drift apart.
//
// Threading: the engine's io thread (the store and the engine are not thread-safe).
// Cancellation: the waiting functions end with operation_aborted when the awaiting coroutine is
// cancelled, having changed nothing.
#pragma once

#include <boost/asio/awaitable.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "devlist/error.hpp"
#include "devlist/types.hpp"
#include "storage/store.hpp"
#include "sync/sync_engine.hpp"

namespace devlist::sync {

// Event consumer names go into log lines and listings; they are kept plain: 1 to 64 of
// A-Z a-z 0-9 . _ -
bool is_valid_consumer_name(std::string_view name);

devlist::engine_phase to_public(engine_phase p);
devlist::cross_signing_state to_public(cross_signing_state s);
devlist::device to_public(const storage::device_record& d);
devlist::tracking_reasons to_public(const storage::tracking_reasons& r);
devlist::tracked_user to_public(const storage::tracked_user& u);
devlist::event to_public(const storage::outbox_event& e);
devlist::one_time_key to_public(const private_key_handout& k);
devlist::fallback_key to_public(const fallback_key_handout& k);
devlist::status to_public(const engine_status& s, std::int64_t last_event_cursor,
                          std::string version);

// A user's devices and cross-signing keys as stored now, with the tracking state.
result<devlist::user_devices> read_user_devices(storage::store& store, const std::string& user_id);
// read_user_devices once the user's list is fresh, the user is not tracked (an untracked list
// never becomes fresh), or the deadline has passed.
boost::asio::awaitable<result<devlist::user_devices>> read_fresh_user_devices(
    sync_engine& engine, storage::store& store, std::string user_id,
    std::chrono::steady_clock::time_point deadline);

// The device (deleted ones too) that owns a Curve25519 key.
result<std::optional<devlist::device>> read_device_by_curve25519(storage::store& store,
                                                                 const std::string& key);
result<std::vector<devlist::tracked_user>> read_tracked_users(storage::store& store);

// Up to `limit` events after `after`, waiting until the deadline for the engine to commit one
// when there is none yet.
boost::asio::awaitable<result<devlist::event_batch>> read_events(
    sync_engine& engine, storage::store& store, std::int64_t after, std::size_t limit,
    std::chrono::steady_clock::time_point deadline);

}  // namespace devlist::sync
