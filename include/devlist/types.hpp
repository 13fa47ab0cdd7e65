// The answers of devlist::engine (include/devlist/engine.hpp) as plain values: the same data the
// socket API answers with (README, "Socket API"), field for field. Timestamps are milliseconds
// since the Unix epoch; keys are unpadded base64.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devlist {

// ---- the engine's state (GET /v1/status) ----

enum class engine_phase { starting, syncing, backing_off, stopped };

enum class cross_signing_state {
    off,                // not configured, and the account has no cross-signing keys we know of
    pending,            // created, upload not yet confirmed
    uploaded,           // ours, on the server, own device signed
    managed_elsewhere,  // the server has a master key this device did not create
    failed,             // the upload was refused (see key_status::last_error)
};

// The own device's keys.
struct key_status {
    bool identity_uploaded = false;
    std::string ed25519;
    std::string curve25519;
    std::int64_t one_time_keys_on_server = 0;  // as the server last reported
    std::size_t one_time_key_target = 0;
    std::int64_t one_time_keys_pending = 0;    // generated, upload not confirmed
    std::uint64_t one_time_keys_uploaded = 0;  // since start
    std::uint64_t one_time_key_conflicts = 0;  // "already exists" answers since start
    bool fallback_supported = false;
    std::optional<std::string> fallback_key_id;
    bool fallback_published = false;
    cross_signing_state cross_signing = cross_signing_state::off;
    std::uint64_t uploads = 0;
    std::uint64_t upload_failures = 0;
    std::string last_error;  // empty when the last key upload succeeded
};

struct status {
    std::string version;  // of the library (or the daemon)
    std::string user_id;
    std::string device_id;  // empty until the first login
    engine_phase phase = engine_phase::starting;
    std::optional<std::string> next_batch;  // the committed sync token
    std::optional<std::int64_t> last_sync_at;
    std::uint64_t syncs = 0;
    std::uint64_t sync_failures = 0;
    std::size_t tracked = 0;
    std::size_t outdated = 0;
    std::size_t users_in_flight = 0;  // in /keys/query requests awaiting an answer
    std::uint64_t queries = 0;
    std::uint64_t query_failures = 0;
    std::uint64_t devices_rejected = 0;
    key_status keys;
    std::int64_t last_event_cursor = 0;  // of the event stream; 0 before the first event
    std::string last_error;              // empty when the last attempt succeeded
};

// ---- device lists ----

struct device {
    std::string user_id;
    std::string device_id;
    std::string ed25519;
    std::string curve25519;
    std::optional<std::string> display_name;
    bool cross_signed = false;  // signed by the owner's verified self-signing key
    std::int64_t first_seen = 0;
    std::int64_t last_seen = 0;
    // Set when the device is gone from the owner's list (device_by_curve25519 still finds it,
    // so an old message can be attributed).
    std::optional<std::int64_t> deleted_at;
};

// Why a user's devices are tracked; a user with no reason is not tracked.
struct tracking_reasons {
    bool own = false;               // the account's own user
    bool encrypted_room = false;    // shares an encrypted room
    bool explicit_request = false;  // a local client (or the bot) asked

    friend bool operator==(const tracking_reasons&, const tracking_reasons&) = default;
};

struct tracked_user {
    std::string user_id;
    bool outdated = true;  // the device list may have changed since it was fetched
    tracking_reasons reasons;
    std::optional<std::int64_t> last_refreshed_at;  // nullopt: never fetched
};

enum class key_usage { master, self_signing, user_signing };

struct cross_signing_key {
    key_usage usage = key_usage::master;
    std::string public_key;
    bool verified = false;  // the signature chain checked
    std::int64_t first_seen = 0;
    std::int64_t last_seen = 0;
};

// A user's devices (GET /v1/users/{user_id}/devices).
struct user_devices {
    std::string user_id;
    bool tracked = false;
    // An untracked user's list is not kept up to date, so it counts as outdated.
    bool outdated = true;
    tracking_reasons reasons;
    std::optional<std::int64_t> last_refreshed_at;
    std::vector<device> devices;
    std::vector<cross_signing_key> cross_signing_keys;
};

// ---- the event stream (GET /v1/events) ----

// Types: device_added, device_changed, device_removed, user_untracked, device_key_changed,
// device_rejected, master_key_changed, cross_signing_key_rejected, one_time_key_conflict and
// to_device (README, "Socket API", gives the data of each).
struct event {
    std::int64_t cursor = 0;  // strictly increasing, never reused
    std::string type;
    std::int64_t at = 0;
    std::string data_json;  // the event's data: a JSON object, verbatim
};

struct event_batch {
    std::vector<event> events;  // oldest first
    // The cursor to read after next time: the last event's, or the one asked after if none.
    std::int64_t next = 0;
};

// ---- the own device's private keys ----

// An own one-time key, taken out of the store: the caller's Olm session now owns it.
struct one_time_key {
    std::string key_id;  // without the "signed_curve25519:" prefix
    std::string public_key;
    std::string private_key;  // the 32-byte Curve25519 secret
};

struct fallback_key {
    std::string key_id;
    std::string public_key;
    std::string private_key;
    bool current = false;  // false: a previous key, kept until erase_after
    bool published = false;
    std::optional<std::int64_t> used_at;
    std::optional<std::int64_t> erase_after;
};

}  // namespace devlist
