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
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/records.hpp"
#include "storage/sync_batch.hpp"
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

    const storage::tracked_user* find(const std::string& user_id) const;
    bool is_tracked(const std::string& user_id) const { return find(user_id) != nullptr; }
    std::size_t tracked_count() const { return users_.size(); }
    std::size_t outdated_count() const { return outdated_.size(); }
    std::size_t in_flight_count() const { return in_flight_.size(); }
    std::int64_t generation() const { return generation_; }
    // device_lists.left entries that the room model contradicted (the user still shares an
    // encrypted room); reported in status, kept tracked.
    std::size_t left_disagreements() const { return left_disagreements_; }

  private:
    struct room_state {
        bool encrypted = false;
        std::string algorithm;
        std::unordered_map<std::string, storage::membership> members;
    };
    struct batch_scope;

    void add_share(const std::string& user_id, batch_scope& scope);
    void remove_share(const std::string& user_id, batch_scope& scope);
    void stamp_outdated(storage::tracked_user& user, batch_scope& scope);
    void set_member(const std::string& room_id, room_state& room, const member_change& change,
                    batch_scope& scope);
    void drop_room(const std::string& room_id, batch_scope& scope);
    void apply_room(const room_delta& delta, bool initial, batch_scope& scope);
    void set_reason_room(const std::string& user_id, bool on, batch_scope& scope);
    void untrack(const std::string& user_id, batch_scope& scope);

    std::string own_user_id_;
    std::int64_t generation_ = 0;
    std::unordered_map<std::string, room_state> rooms_;
    // For each user, the number of encrypted rooms in which they are joined or invited.
    std::unordered_map<std::string, int> shared_rooms_;
    std::unordered_map<std::string, storage::tracked_user> users_;
    std::set<std::string> outdated_;
    std::unordered_map<std::string, std::int64_t> in_flight_;
    std::size_t left_disagreements_ = 0;
};

}  // namespace devlist::sync
