// The own one-time keys. Private parts are committed, as `pending`, before their upload, so an
// upload whose answer was lost is retried with the same IDs and bytes and a published key never
// lacks its private part.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::storage {

class one_time_key_store {
  public:
    explicit one_time_key_store(connection& db) noexcept : stmts_(db) {}

    // Takes one key ID per key from the monotonic counter (via `format`) and stores the keys as
    // pending, in ONE transaction with durability full: once this returns the keys may be
    // uploaded, so their private parts must survive a power cut. Returns them in upload order.
    result<std::vector<one_time_key>> add_pending(std::span<const new_key> keys, timestamp_ms now,
                                                  const key_id_formatter& format);
    // Pending keys in creation (= upload) order.
    result<std::vector<one_time_key>> pending();
    // Every key, pending or published, in creation order (checkers and diagnostics).
    result<std::vector<one_time_key>> all();

    // Marks keys published; returns how many were pending. Durability normal: the pending rows
    // are already durable, and a lost mark means the same bytes are uploaded again.
    result<std::int64_t> mark_published(std::span<const std::string> key_ids, timestamp_ms at);

    result<std::optional<one_time_key>> find(std::string_view key_id);
    result<std::optional<one_time_key>> find_by_public_key(std::string_view public_key);
    // Removes and returns a key (an Olm session was made from it). Durability normal.
    result<std::optional<one_time_key>> take(std::string_view key_id);

    // Deletes a pending key the server refused (its ID is taken there by another key); returns
    // whether there was one. The ID is never handed out again (the counter only grows).
    // Durability normal: if the delete is lost, the upload is refused again and it is redone.
    result<bool> discard_pending(std::string_view key_id);

    // Keeps the newest `keep` published keys and deletes older ones (claims hand keys out
    // oldest first, so the oldest are the likeliest used or lost); returns how many went.
    // Durability normal: a prune lost to a power cut is simply done again.
    result<std::int64_t> prune_published(std::size_t keep);

    result<std::int64_t> count(key_state state);

  private:
    statement_cache stmts_;
};

}  // namespace devlist::storage
