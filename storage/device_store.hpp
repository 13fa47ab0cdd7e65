// Other users' device lists: their devices and cross-signing keys, written from verified
// /keys/query answers.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/event_outbox.hpp"
#include "storage/query_result.hpp"
#include "storage/records.hpp"
#include "storage/security_log.hpp"
#include "storage/statement_cache.hpp"

#include <optional>
#include <string_view>
#include <vector>

namespace devlist::storage {

class device_store {
  public:
    device_store(connection& db, event_outbox& outbox, security_log& log) noexcept
        : stmts_(db), outbox_(&outbox), log_(&log) {}

    // Applies a /keys/query answer in ONE transaction, durability normal (after a power cut the
    // users are simply still outdated and queried again). Per user still tracked: inserts new
    // devices, updates changed ones, soft-deletes missing ones (each with an outbox event
    // device_added / device_changed / device_removed), replaces the cross-signing keys if
    // given, and clears the outdated flag only where the stored generation still equals
    // generation_at_send. Then the servers' backoff, the security events and the outbox events.
    result<query_outcome> apply_query_result(const query_result& answer);

    // The user's devices that are not deleted, by device ID.
    result<std::vector<device_record>> devices_of(std::string_view user_id);
    // One device, deleted or not.
    result<std::optional<device_record>> find(std::string_view user_id, std::string_view device_id);
    // The device with this curve25519 key (the sender_key check of Olm messages). A live device
    // is preferred; a deleted one is returned with deleted_at set.
    result<std::optional<device_record>> device_by_curve25519(std::string_view curve25519);

    // The user's cross-signing keys, by usage (master, self_signing, user_signing).
    result<std::vector<cross_signing_key>> cross_signing_keys_of(std::string_view user_id);

    // The digest of the user's part of the last answer that was accepted whole and is what the
    // user's devices and keys are now (see user_query_result::digest), or nullopt.
    result<std::optional<answer_digest>> answer_digest_of(std::string_view user_id);

  private:
    result<void> apply_user(const user_query_result& user, timestamp_ms at, query_outcome& outcome);
    result<void> apply_same_digest(const user_query_result& user, timestamp_ms at,
                                   query_outcome& outcome);
    result<void> write_digest(const user_query_result& user, timestamp_ms at);
    result<void> clear_outdated(const user_query_result& user, timestamp_ms at,
                                query_outcome& outcome);
    result<void> apply_devices(const user_query_result& user, timestamp_ms at,
                               query_outcome& outcome);
    result<void> apply_cross_signing_keys(const user_query_result& user, timestamp_ms at);
    result<void> apply_backoff(const query_result& answer);

    statement_cache stmts_;
    event_outbox* outbox_;
    security_log* log_;
};

}  // namespace devlist::storage
