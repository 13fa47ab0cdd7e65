// The /sync position and everything a /sync response changes: rooms, memberships, the tracked
// set, the server's view of the own keys, and events for local consumers.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/event_outbox.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"
#include "storage/sync_batch.hpp"

#include <functional>
#include <string_view>
#include <vector>

namespace devlist::storage {

class sync_store {
  public:
    sync_store(connection& db, event_outbox& outbox) noexcept : stmts_(db), outbox_(&outbox) {}

    // Writes all of `batch` and its next_batch in ONE transaction, durability normal: after a
    // power cut the batch may be lost, but then so is its next_batch, and the server sends it
    // again from the older token. Replaying a batch is harmless (every write is an upsert,
    // a removal, or an append of the same events again).
    result<void> apply_sync_batch(const sync_batch& batch);

    result<sync_state> load_sync_state();
    // Records the device the database belongs to. Durability normal: a lost ID is recorded
    // again at the next login. Whether a different device may replace a stored one is the
    // caller's decision.
    result<void> set_device_id(std::string_view device_id);
    // Durability normal: a lost filter ID is created again.
    result<void> set_filter_id(std::string_view filter_id);

    // Every known room, by room ID.
    result<std::vector<room>> load_rooms();
    // Every joined or invited member, by room then user.
    result<std::vector<room_member>> load_memberships();
    // The same rows passed one by one to `visit` (the views are valid during the call), so
    // that a caller building its own structure needs no copy of every row first.
    result<void> for_each_membership(const std::function<void(const room_member_view&)>& visit);
    result<server_key_state> load_server_key_state();

  private:
    result<void> write_batch(const sync_batch& batch);
    result<void> write_memberships(const sync_batch& batch);
    result<void> write_tracking(const sync_batch& batch);
    result<void> mark_outdated(const outdated_mark& mark);
    result<void> write_server_key_state(const sync_batch& batch);

    statement_cache stmts_;
    event_outbox* outbox_;
};

}  // namespace devlist::storage
