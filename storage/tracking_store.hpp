// Reads of the tracked users and of the per-server /keys/query backoff. They are written by
// sync_store::apply_sync_batch (tracking changes) and device_store::apply_query_result
// (outdated flags, backoff), each in the transaction of the change that caused them.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace devlist::storage {

class tracking_store {
  public:
    explicit tracking_store(connection& db) noexcept : stmts_(db) {}

    // Every tracked user, by user ID: the engine's in-memory mirror at start.
    result<std::vector<tracked_user>> load_tracked_users();
    // The same rows passed one by one to `visit` (the views are valid during the call).
    result<void> for_each_tracked_user(const std::function<void(const tracked_user_view&)>& visit);
    result<std::optional<tracked_user>> find(std::string_view user_id);
    // Up to `limit` outdated users, those stamped longest ago first (generation, then user ID).
    // For tests and tools: the engine keeps the outdated set in memory, and since schema
    // version 2 no index serves this (it scans the table).
    result<std::vector<tracked_user>> outdated_users(std::size_t limit);

    result<std::vector<server_backoff>> load_server_backoffs();

  private:
    statement_cache stmts_;
};

}  // namespace devlist::storage
