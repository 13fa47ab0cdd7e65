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
// before and is not verified again. A user's part with no refusal and no event carries its
// digest to the store (user_query_result::digest); any other part clears the stored one.
//
// Pure: no I/O, no clock (the caller passes `now`). Thread-compatible.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
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
    // Users whose part was byte-identical to the one whose verdicts are stored (the same
    // digest): neither parsed nor verified, nor their stored keys read.
    std::size_t users_repeated = 0;
};

// Security event and outbox event kinds written by the verifier.
namespace security_kind {
inline constexpr const char* device_rejected = "device_rejected";
inline constexpr const char* device_key_changed = "device_key_changed";
inline constexpr const char* cross_signing_key_rejected = "cross_signing_key_rejected";
inline constexpr const char* master_key_changed = "master_key_changed";
}  // namespace security_kind

// The parts of an answer filed by user, built once per answer (it points into the answer).
struct user_answer {
    std::vector<const queried_device*> devices;
    const queried_cross_signing_key* master = nullptr;
    const queried_cross_signing_key* self_signing = nullptr;
    const queried_cross_signing_key* user_signing = nullptr;
    // The digest the part is stored with if all of it is accepted.
    std::optional<storage::answer_digest> digest;
};

class query_answer_index {
  public:
    explicit query_answer_index(const keys_query_response& answer);
    // Whether the answer names the user's server in `failures`.
    bool server_failed(const std::string& user_id) const;
    // The user's part, or nullptr when the answer does not cover the user.
    const user_answer* find(const std::string& user_id) const;

  private:
    const keys_query_response& answer_;
    std::unordered_map<std::string_view, user_answer> by_user_;
};

// Verifies the parts of `tickets` (users the answer covers, of servers that answered) and
// appends them, with their security and outbox events, to `result`. Thread-compatible: it
// touches nothing but its arguments, so slices of one answer may be verified on several
// threads at once, each into its own result.
void verify_query_users(const query_answer_index& index, std::span<const query_ticket> tickets,
                        const std::function<known_keys(const std::string& user_id)>& known,
                        storage::timestamp_ms now, verification_stats& stats,
                        storage::query_result& result);

// Builds the query_result for `tickets` from `answer`. Users whose server is listed in
// answer.failures are left out (they stay outdated; the caller handles backoff); users absent
// from the answer are left out too and returned in `absent`.
storage::query_result verify_query_answer(
    const keys_query_response& answer, const std::vector<query_ticket>& tickets,
    const std::function<known_keys(const std::string& user_id)>& known, storage::timestamp_ms now,
    verification_stats& stats, std::vector<std::string>& absent);

}  // namespace devlist::sync
