// The own cross-signing keys (master, self-signing, user-signing). Whether the own device's
// signature by the self-signing key was uploaded is a flag of the identity (account_store).
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <span>
#include <vector>

namespace devlist::storage {

class own_cross_signing_store {
  public:
    explicit own_cross_signing_store(connection& db) noexcept : stmts_(db) {}

    // Replaces the own cross-signing keys with `keys` (at most one per usage), all pending, and
    // clears the device-signature flag (the device must be signed by the new self-signing key).
    // Durability full: the keys are uploaded next. Each key's state is ignored.
    result<void> store_pending(std::span<const own_cross_signing_key> keys, timestamp_ms now);

    // Marks every pending key uploaded. Durability normal: a lost mark means the same keys are
    // uploaded again.
    result<void> mark_uploaded(timestamp_ms at);

    // The keys, ordered master, self_signing, user_signing.
    result<std::vector<own_cross_signing_key>> load();

  private:
    statement_cache stmts_;
};

}  // namespace devlist::storage
