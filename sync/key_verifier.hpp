// Verification of a /keys/query answer: decides what of it may be stored.
//
// The rules (DESIGN.md, "Verification rules"):
// - a device is accepted only if its user_id/device_id match the map keys, its ed25519 and
//   curve25519 keys are well-formed, and its self-signature verifies over the canonical form
//   of the object as received;
// - a known device whose ed25519 key changed is rejected and the stored one kept;
// - self-signing and user-signing keys must carry a valid signature of the master key; a
//   device is cross-signed when the self-signing key's signature on it verifies;
// - a device ID equal to a cross-signing key ID refuses the device;
// - a master key different from the stored one is accepted and recorded as a change.
// Each refusal becomes a security event (permanent log) and an outbox event for local
// consumers. A device whose signed JSON is byte-identical to the stored one was verified
// before and is not verified again.
//
// Pure: no I/O, no clock (the caller passes `now`). Thread-compatible.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "storage/query_result.hpp"
#include "storage/records.hpp"
#include "sync/device_list_tracker.hpp"
#include "sync/keys_query_response.hpp"

namespace devlist::sync {

// What the store already holds for a user.
struct known_keys {
    std::vector<storage::device_record> devices;  // not deleted
    std::vector<storage::cross_signing_key> cross_signing;
};

struct verification_stats {
    std::size_t signatures_checked = 0;
    std::size_t devices_unchanged = 0;  // byte-identical to what was stored: not re-verified
    std::size_t devices_accepted = 0;
    std::size_t devices_rejected = 0;
    std::size_t cross_signing_rejected = 0;
};

// Security event and outbox event kinds written by the verifier.
namespace security_kind {
inline constexpr const char* device_rejected = "device_rejected";
inline constexpr const char* device_key_changed = "device_key_changed";
inline constexpr const char* cross_signing_key_rejected = "cross_signing_key_rejected";
inline constexpr const char* master_key_changed = "master_key_changed";
}  // namespace security_kind

// Builds the query_result for `tickets` from `answer`. Users whose server is listed in
// answer.failures are left out (they stay outdated; the caller handles backoff); users absent
// from the answer are left out too and returned in `absent`.
storage::query_result verify_query_answer(
    const keys_query_response& answer, const std::vector<query_ticket>& tickets,
    const std::function<known_keys(const std::string& user_id)>& known, storage::timestamp_ms now,
    verification_stats& stats, std::vector<std::string>& absent);

}  // namespace devlist::sync
