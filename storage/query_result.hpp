// A verified /keys/query answer, as decided by the query scheduler (sync/), and what applying it
// changed.
#pragma once

#include "storage/records.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devlist::storage {

// The digest of a user's part of a /keys/query answer, as received (sync/answer_digest.hpp).
using answer_digest = std::array<std::uint8_t, 32>;

struct user_query_result {
    std::string user_id{};
    // The user's generation when the request was sent: the outdated flag is cleared only if it
    // is still the stored one (otherwise the list changed again while the request was in
    // flight).
    std::int64_t generation_at_send = 0;
    // False keeps the user outdated whatever the generation (e.g. the user was missing from
    // the answer: the devices are applied, the user is asked for again).
    bool clear_outdated = true;
    // The complete set of devices the engine accepted. A stored device missing from it is
    // soft-deleted; to keep a device whose new keys were rejected, pass its stored record.
    // first_seen/last_seen/deleted_at are ignored.
    std::vector<device_record> devices{};
    // When present, replaces the user's cross-signing keys (a usage missing is removed).
    std::optional<std::vector<cross_signing_key>> cross_signing_keys{};
    // Set by the engine when the answer repeats exactly what is stored (the same devices and
    // cross-signing keys, byte for byte, every last_seen within last_seen_resolution_ms): then
    // nothing but the outdated flag is written, and `devices` and `cross_signing_keys` are
    // not read.
    bool unchanged = false;
    // The digest of the user's part of the answer when everything in it was accepted: stored
    // with the user, so that a later answer whose part has the same digest is known to repeat
    // what is stored. nullopt clears the stored digest: the devices and keys are then no longer
    // the verdicts of one wholly accepted part.
    std::optional<answer_digest> digest{};
    // Set by the engine (with `unchanged` and `digest`) when `digest` is the stored one: the
    // part was neither parsed nor verified, and the user's devices and keys were not read.
    // The store checks that the digest is still the stored one (otherwise the user stays
    // outdated and is asked again) and refreshes the last_seen of the user's devices and keys
    // when they were last refreshed last_seen_resolution_ms ago or more.
    bool same_digest = false;
};

struct query_result {
    timestamp_ms at = 0;
    std::vector<user_query_result> users{};
    // Servers listed in `failures`: their new backoff state (the policy is the engine's).
    std::vector<server_backoff> failed_servers{};
    // Servers that answered: their backoff is cleared.
    std::vector<std::string> answered_servers{};
    std::vector<security_event> security_events{};  // id ignored
    std::vector<outbox_event> outbox_events{};      // cursor ignored; after the device events
};

enum class device_change_kind { added, changed, removed };

struct device_change {
    device_change_kind kind = device_change_kind::added;
    std::string user_id{};
    std::string device_id{};
};

struct query_outcome {
    std::vector<std::string> cleared{};         // outdated flag cleared
    std::vector<std::string> still_outdated{};  // generation moved (or clear_outdated false)
    std::vector<std::string> not_tracked{};     // untracked meanwhile: nothing stored for them
    std::vector<device_change> device_changes{};
};

}  // namespace devlist::storage
