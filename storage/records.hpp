// The plain records the stores read and write.
//
// Conventions: timestamps are milliseconds since the Unix epoch (callers pass them in, so tests
// control the clock); public keys are unpadded base64 text as received or generated; private
// keys are sealed by crypto/ before they reach the store and are opaque bytes here; signed JSON
// is kept byte for byte as received (or as built for upload), never rebuilt.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::storage {

using timestamp_ms = std::int64_t;
using sealed_bytes = std::vector<std::uint8_t>;

// ---- own account/device ----

struct account_identity {
    std::string user_id{};
    std::string device_id{};
    std::string ed25519_public{};
    std::string curve25519_public{};
    sealed_bytes ed25519_sealed{};
    sealed_bytes curve25519_sealed{};
    bool device_keys_uploaded = false;
    // The own device's signature by the own self-signing key has been uploaded.
    bool device_signature_uploaded = false;
    timestamp_ms created_at = 0;
};

// ---- sync ----

struct sync_state {
    // The device the database belongs to (tokens and to-device events are per device);
    // nullopt until the first login recorded it.
    std::optional<std::string> device_id{};
    std::optional<std::string> next_batch{};  // nullopt before the first sync
    std::optional<std::string> filter_id{};
    // The counter the engine stamps outdated users with (see tracked_user::generation).
    std::int64_t generation = 0;
};

// What the server last said about the own keys in /sync.
struct server_key_state {
    // device_one_time_keys_count by algorithm (as last reported; a missing algorithm is 0).
    std::map<std::string, std::int64_t> one_time_key_counts{};
    // device_unused_fallback_key_types; nullopt while the server never reported it (it does not
    // support fallback keys).
    std::optional<std::vector<std::string>> unused_fallback_key_types{};
};

struct room {
    std::string room_id{};
    bool encrypted = false;
    std::optional<std::string> algorithm{};  // set when encrypted
};

enum class membership { join, invite };

struct room_member {
    std::string room_id{};
    std::string user_id{};
    membership state = membership::join;
};

// A member row as a view into the store's row buffer, valid during the call it is passed to
// (for reading every member without a copy of each).
struct room_member_view {
    std::string_view room_id{};
    std::string_view user_id{};
    membership state = membership::join;
};

// ---- tracked users ----

// Why a user's device list is tracked; a user with no reason is not tracked.
struct tracking_reasons {
    bool own = false;               // the account's own user (always tracked)
    bool encrypted_room = false;    // shares an encrypted room with us
    bool explicit_request = false;  // a local client asked (track until untracked)

    bool any() const noexcept { return own || encrypted_room || explicit_request; }
    friend bool operator==(const tracking_reasons&, const tracking_reasons&) = default;
};

struct tracked_user {
    std::string user_id{};
    std::string server_name{};
    tracking_reasons reasons{};
    bool outdated = true;
    // The generation the user was stamped with when last marked outdated: a /keys/query answer
    // clears `outdated` only if this did not move while the request was in flight.
    std::int64_t generation = 0;
    std::optional<timestamp_ms> last_refreshed_at{};  // nullopt: never fetched
};

// A tracked_user as a view into the store's row buffer, valid during the call it is passed to.
struct tracked_user_view {
    std::string_view user_id{};
    std::string_view server_name{};
    tracking_reasons reasons{};
    bool outdated = true;
    std::int64_t generation = 0;
    std::optional<timestamp_ms> last_refreshed_at{};
};

// Backoff for a server that /keys/query listed in `failures`.
struct server_backoff {
    std::string server_name{};
    std::int64_t consecutive_failures = 0;
    timestamp_ms retry_at = 0;
};

// ---- other users' devices and cross-signing keys ----

struct device_record {
    std::string user_id{};
    std::string device_id{};
    std::string ed25519{};
    std::string curve25519{};
    std::optional<std::string> display_name{};
    std::string signed_json{};  // the device_keys object exactly as received
    bool cross_signed = false;
    // Kept by the store; ignored when a record is written. last_seen is when an answer last
    // listed the device, to within last_seen_resolution_ms (an unchanged device is not
    // rewritten for every answer).
    timestamp_ms first_seen = 0;
    timestamp_ms last_seen = 0;
    std::optional<timestamp_ms> deleted_at{};  // soft-deleted: gone from the server's list

    friend bool operator==(const device_record&, const device_record&) = default;
};

// How stale device and cross-signing key last_seen may be before an unchanged answer
// refreshes it: an hour.
inline constexpr timestamp_ms last_seen_resolution_ms = 3'600'000;

enum class key_usage { master, self_signing, user_signing };

struct cross_signing_key {
    std::string user_id{};
    key_usage usage = key_usage::master;
    std::string public_key{};
    std::string signed_json{};  // as received
    bool verified = false;      // signature chain checked by the engine
    // Kept by the store; ignored when a record is written.
    timestamp_ms first_seen = 0;
    timestamp_ms last_seen = 0;

    friend bool operator==(const cross_signing_key&, const cross_signing_key&) = default;
};

// ---- permanent security log ----

struct security_event {
    std::int64_t id = 0;  // assigned by the store
    timestamp_ms at = 0;
    std::string kind{};  // e.g. "device_key_changed", "master_key_changed"
    std::optional<std::string> user_id{};
    std::optional<std::string> device_id{};
    std::string detail_json = "{}";  // a JSON object
};

// ---- own keys ----

// Turns a value of the store's monotonic key-ID counter into a key ID (the part after
// "signed_curve25519:"). The caller picks the encoding (crypto/ owns base64); distinct values
// must give distinct IDs.
using key_id_formatter = std::function<std::string(std::int64_t)>;

// One generated key handed to the store before its upload.
struct new_key {
    std::string algorithm = "signed_curve25519";
    std::string public_key{};
    sealed_bytes sealed_private{};
    std::string signed_json{};  // the exact object to upload, so a retry is byte-identical
};

enum class key_state { pending, published };

struct one_time_key {
    std::string key_id{};
    std::int64_t seq = 0;  // upload order (claims hand keys out in this order)
    std::string algorithm{};
    std::string public_key{};
    sealed_bytes sealed_private{};
    std::string signed_json{};
    key_state state = key_state::pending;
    timestamp_ms created_at = 0;
    std::optional<timestamp_ms> published_at{};
};

enum class fallback_slot { current, previous };

struct fallback_key {
    std::string key_id{};
    std::string algorithm{};
    fallback_slot slot = fallback_slot::current;
    std::string public_key{};
    sealed_bytes sealed_private{};
    std::string signed_json{};
    key_state state = key_state::pending;
    timestamp_ms created_at = 0;
    std::optional<timestamp_ms> published_at{};
    std::optional<timestamp_ms> used_at{};      // the server reported it used
    std::optional<timestamp_ms> erase_after{};  // previous keys: when the private part may go
};

enum class upload_state { pending, uploaded };

struct own_cross_signing_key {
    key_usage usage = key_usage::master;
    std::string public_key{};
    sealed_bytes sealed_private{};
    std::string signed_json{};
    upload_state state = upload_state::pending;  // ignored when a record is written
    timestamp_ms created_at = 0;
    std::optional<timestamp_ms> uploaded_at{};
};

// ---- outbox for local consumers ----

struct outbox_event {
    std::int64_t cursor = 0;  // assigned by the store, strictly increasing, never reused
    timestamp_ms at = 0;
    std::string type{};
    std::string payload_json{};  // a JSON value
};

// Outbox event types the store appends itself, in the same transaction as the change.
// Payloads are JSON objects; device events carry user_id, device_id, ed25519, curve25519 and
// display_name (or null).
namespace outbox_type {
inline constexpr const char* device_added = "device_added";
inline constexpr const char* device_changed = "device_changed";
inline constexpr const char* device_removed = "device_removed";
inline constexpr const char* user_untracked = "user_untracked";  // {"user_id": ...}
}  // namespace outbox_type

struct outbox_consumer {
    std::string name{};
    std::int64_t acknowledged = 0;  // every event up to this cursor was handled
};

}  // namespace devlist::storage
