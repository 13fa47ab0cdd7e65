// The own fallback keys: per algorithm one `current` key (the one uploaded last) and `previous`
// keys kept until an hour (or whatever the caller says) after their successor was published,
// because peers may have claimed them just before the rotation.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace devlist::storage {

class fallback_key_store {
  public:
    explicit fallback_key_store(connection& db) noexcept : stmts_(db) {}

    // Stores `key` as the pending current key of its algorithm, with an ID from the monotonic
    // counter; the old current key (if any) becomes previous. ONE transaction, durability full
    // (the key is uploaded next, so its private part must survive a power cut).
    result<fallback_key> add_pending_current(const new_key& key, timestamp_ms now,
                                             const key_id_formatter& format);

    // Marks the key published. If it is its algorithm's current key, previous keys without a
    // deadline get erase_after = at + keep_previous. Durability normal (a lost mark means the
    // same bytes are uploaded again). errc::invalid_argument for an unknown key.
    result<void> mark_published(std::string_view key_id, timestamp_ms at,
                                std::chrono::milliseconds keep_previous);

    // Records that the server reported the key used. Returns false if it was already marked
    // (a replayed /sync must not rotate twice). Durability normal.
    result<bool> mark_used(std::string_view key_id, timestamp_ms at);

    // Deletes previous keys whose erase_after is at or before `now`; returns how many.
    // Durability normal: an erase lost to a power cut is done again.
    result<std::int64_t> erase_expired(timestamp_ms now);

    result<std::optional<fallback_key>> current(std::string_view algorithm = "signed_curve25519");
    // Previous keys, newest first.
    result<std::vector<fallback_key>> previous(std::string_view algorithm = "signed_curve25519");
    // Current or previous key with this public key (an Olm pre-key message may use either).
    result<std::optional<fallback_key>> find_by_public_key(std::string_view public_key);

  private:
    statement_cache stmts_;
};

}  // namespace devlist::storage
