// The permanent security log: changed device or master keys, conflicts, mismatches — what a
// person may need to know about later. Never pruned by the store.
//
// Appends join the caller's transaction when one is open on the connection, and commit on their
// own (durability normal) otherwise.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace devlist::storage {

class security_log {
  public:
    explicit security_log(connection& db) noexcept : stmts_(db) {}

    // Returns the event's id. detail_json must be JSON (errc::storage_error otherwise).
    result<std::int64_t> append(const security_event& event);

    // The newest `limit` events, newest first.
    result<std::vector<security_event>> recent(std::size_t limit);
    // The newest `limit` events about `user_id`, newest first.
    result<std::vector<security_event>> recent_of_user(std::string_view user_id, std::size_t limit);

  private:
    statement_cache stmts_;
};

}  // namespace devlist::storage
