// The device-list tracker: which users' device lists devlistd follows, which of them are
// outdated, and the generation stamps that guard against the /sync vs /keys/query race.
//
// A pure state machine: it takes parsed /sync responses and local requests, and writes its
// decisions into a storage::sync_batch for the engine to commit (with next_batch, in one
// transaction). No I/O, no clock. Not thread-safe; lives on the engine's io thread.
//
// The tracked set is: the own user, every joined or invited member of an encrypted room the
// own user is joined to, and users tracked explicitly by a local client. The room model is
// authoritative (devlistd's filter asks for complete member state, no lazy loading), so
// device_lists.left cannot untrack a user the model still sees in an encrypted room; it does
// untrack one the model no longer does.
//
// If committing a batch fails, the in-memory state is ahead of the store: the engine must
// rebuild the tracker from the store (restore) before going on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "storage/records.hpp"
#include "storage/sync_batch.hpp"
#include "sync/handle_set.hpp"
#include "sync/sync_response.hpp"

namespace devlist::sync {

// A user sent in a /keys/query, with the generation the user had when it was sent.
struct query_ticket {
    std::string user_id;
    std::int64_t generation = 0;
};

class device_list_tracker {
  public:
    explicit device_list_tracker(std::string own_user_id);

    // Loads the persisted state. With an empty store, the own user becomes tracked and
    // outdated through the next batch (see ensure_own_user).
    void restore(std::int64_t generation, const std::vector<storage::room>& rooms,
                 const std::vector<storage::room_member>& members,
                 const std::vector<storage::tracked_user>& users);

    // The same, one row at a time, for a caller that streams the rows from the store instead
    // of holding them all at once: begin_restore, then every room, then every member (a room's
    // members together, as the store returns them), then every tracked user. Until the last
    // row is in, the tracker holds part of the state only.
    void begin_restore(std::int64_t generation);
    void restore_room(std::string_view room_id, bool encrypted, std::string_view algorithm);
    void restore_member(const storage::room_member_view& member);
    void restore_user(const storage::tracked_user_view& user);

    // Tracks the own user if it is not yet (first start); writes into `batch`.
    void ensure_own_user(storage::sync_batch& batch);

    // Applies a /sync response. `initial` is true for a sync without `since`: its room state
    // is then complete, and rooms or members it lacks are gone.
    void apply_sync(const sync_response& response, bool initial, storage::sync_batch& batch);

    // Local requests.
    void track_explicitly(const std::string& user_id, storage::sync_batch& batch);
    // Returns false when the user was not tracked explicitly.
    bool untrack_explicitly(const std::string& user_id, storage::sync_batch& batch);
    // Marks tracked users outdated (a /keys/changes catch-up, a refresh request); untracked
    // users are ignored. Returns how many were marked.
    std::size_t mark_outdated(const std::vector<std::string>& user_ids, storage::sync_batch& batch);
    std::size_t mark_all_outdated(storage::sync_batch& batch);

    // Query scheduling: up to `max_users` outdated users that are not in flight and that
    // `allowed` accepts (server backoff), own user first. They are in flight until finished.
    std::vector<query_ticket> take_outdated(
        std::size_t max_users, const std::function<bool(const std::string&)>& allowed = {});
    // Ends the flight of `tickets`; `cleared` are the users whose outdated flag the store
    // cleared (their generation had not moved).
    void finish_query(const std::vector<query_ticket>& tickets,
                      const std::vector<std::string>& cleared);

    // The user's state, or nullptr when not tracked. The pointer is valid until the next call
    // that changes the tracker.
    const storage::tracked_user* find(const std::string& user_id) const;
    bool is_tracked(const std::string& user_id) const { return find(user_id) != nullptr; }
    std::size_t tracked_count() const { return tracked_count_; }
    std::size_t outdated_count() const { return outdated_count_; }
    std::size_t in_flight_count() const { return in_flight_count_; }
    std::int64_t generation() const { return generation_; }
    // device_lists.left entries that the room model contradicted (the user still shares an
    // encrypted room); reported in status, kept tracked.
    std::size_t left_disagreements() const { return left_disagreements_; }

  private:
    // Users are handles into slots_: one slot per user ID the tracker knows (a tracked user, a
    // member of a known room, or a user whose query is still in flight), holding the one copy
    // of the ID. Rooms and the outdated queue refer to users by handle. A slot no longer needed
    // is recycled.
    using handle = std::uint32_t;
    struct user_slot {
        storage::tracked_user user;      // user.user_id is the key; the rest is valid when tracked
        std::uint32_t shared_rooms = 0;  // encrypted rooms in which they are joined or invited
        std::uint32_t rooms = 0;         // rooms of any kind that list them as a member
        std::uint32_t scope = 0;         // the last batch_scope that touched them
        bool live = false;               // holds a user (else on the free list)
        bool tracked = false;
        bool in_flight = false;
        bool queued = false;  // in outdated_sorted_ or outdated_added_ (maybe stale there)
        // Scope-local (valid while `scope` is the current scope): for the row written at its end.
        bool tracked_before = false;
        bool stamped = false;
        bool whole_row = false;  // an earlier row of the batch was replaced: rewrite all of it
        storage::tracking_reasons reasons_before{};
    };
    struct room_state {
        bool encrypted = false;
        std::string algorithm;
        // Members as handle << 1 | invited.
        detail::handle_set members;
    };
    struct batch_scope;

    static constexpr std::size_t chunk_size = 1024;  // slots per chunk (their addresses stay)

    user_slot& slot(handle h) { return chunks_[h / chunk_size][h % chunk_size]; }
    const user_slot& slot(handle h) const { return chunks_[h / chunk_size][h % chunk_size]; }
    handle find_handle(std::string_view user_id) const;
    handle intern(std::string_view user_id);
    void release_if_unused(handle h);
    std::optional<storage::membership> member_state(const room_state& room, handle h) const;
    void set_member_state(room_state& room, handle h, std::optional<storage::membership> state);

    void add_share(handle h, batch_scope& scope);
    void remove_share(handle h, batch_scope& scope);
    void stamp_outdated(handle h, batch_scope& scope);
    void set_member(const std::string& room_id, room_state& room, const member_change& change,
                    batch_scope& scope);
    void drop_room(const std::string& room_id, batch_scope& scope);
    void apply_room(const room_delta& delta, bool initial, batch_scope& scope);
    void set_reason_room(handle h, bool on, batch_scope& scope);
    void start_tracking(handle h);
    void untrack(handle h, batch_scope& scope);
    void set_outdated(user_slot& s, bool outdated);
    void sort_outdated_queue();

    std::string own_user_id_;
    std::int64_t generation_ = 0;
    std::unordered_map<std::string, room_state> rooms_;
    std::vector<std::unique_ptr<user_slot[]>> chunks_;
    handle slot_count_ = 0;  // slots in use or on the free list
    std::vector<handle> free_slots_;
    detail::handle_set index_;  // every live slot, by user ID
    std::size_t tracked_count_ = 0;
    std::size_t outdated_count_ = 0;
    std::size_t in_flight_count_ = 0;
    // The outdated users in user-ID order for take_outdated: outdated_sorted_ is sorted,
    // outdated_added_ holds users queued since; both may hold users no longer outdated, which
    // sort_outdated_queue drops.
    std::vector<handle> outdated_sorted_;
    std::vector<handle> outdated_added_;
    bool outdated_queue_stale_ = false;
    std::uint32_t scope_serial_ = 0;
    bool scope_open_ = false;  // slots touched by the open scope are not recycled before its end
    // restore_member: the room of the previous row (rows come grouped by room).
    room_state* restoring_room_ = nullptr;
    std::string restoring_room_id_;
    std::size_t left_disagreements_ = 0;
};

}  // namespace devlist::sync
