// What one /sync response changes in the store, as decided by the sync engine (sync/).
//
// The engine decides WHAT changes; sync_store::apply_sync_batch() writes all of it, together
// with next_batch, in one transaction. The same type carries changes that no /sync response
// caused (an explicit track/untrack, a /keys/changes catch-up): leave next_batch empty.
#pragma once

#include "storage/records.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::storage {

// m.room.encryption seen in a room.
struct room_encryption {
    std::string room_id{};
    std::string algorithm{};
};

struct membership_change {
    std::string room_id{};
    std::string user_id{};
    std::optional<membership> state{};  // nullopt: no longer joined or invited (left, banned…)
};

// A tracked user as the engine now sees it (inserted or overwritten; last_refreshed_at kept).
struct tracked_user_update {
    std::string user_id{};
    std::string server_name{};
    tracking_reasons reasons{};  // must name at least one reason; else untrack the user
    bool outdated = true;
    std::int64_t generation = 0;
};

// A tracked user whose only change is a new stamp: the store sets its outdated flag and
// generation and leaves the rest of its row as it is. The row must exist (a user tracked by the
// same batch comes as a tracked_user_update instead).
struct outdated_mark {
    std::string user_id{};
    std::int64_t generation = 0;
};

// A user ID's first eight bytes as a big-endian number (zero-padded): ordering by it and then by
// the whole ID is user-ID order, with one integer comparison for most pairs. The store writes a
// batch's rows in that order, and the tracker keeps its outdated queue in it.
inline std::uint64_t user_order_key(std::string_view user_id) {
    unsigned char bytes[8] = {};
    std::memcpy(bytes, user_id.data(), std::min<std::size_t>(user_id.size(), 8));
    std::uint64_t key = 0;
    for (unsigned char b : bytes)
        key = key << 8 | b;
    return key;
}

struct sync_batch {
    timestamp_ms at = 0;
    // The since-token for the next /sync; nullopt leaves the stored one unchanged.
    std::optional<std::string> next_batch{};
    // The new value of the generation counter, if the engine moved it.
    std::optional<std::int64_t> generation{};

    std::vector<room_encryption> encrypted_rooms{};
    std::vector<membership_change> memberships{};

    std::vector<tracked_user_update> tracked_users{};
    // Disjoint from tracked_users and untracked_users (one entry per user and batch).
    std::vector<outdated_mark> outdated_marks{};
    // Untracked users lose their devices and cross-signing keys; each user that was tracked
    // gets an outbox event "user_untracked".
    std::vector<std::string> untracked_users{};

    // device_one_time_keys_count: when present, replaces all stored counts (an algorithm
    // missing from the map is 0, not "unchanged").
    std::optional<std::map<std::string, std::int64_t>> one_time_key_counts{};
    // device_unused_fallback_key_types (or its unstable form): when present, replaces the
    // stored list and records that the server supports fallback keys.
    std::optional<std::vector<std::string>> unused_fallback_key_types{};

    // To-device events and any other events for local consumers, in order (cursor ignored).
    std::vector<outbox_event> outbox_events{};
};

}  // namespace devlist::storage
