#include "sync/device_list_tracker.hpp"

#include <algorithm>
#include <cassert>
#include <unordered_set>
#include <utility>

#include "sync/matrix_ids.hpp"

namespace devlist::sync {

// Collects what one operation touched, and at its end writes the resulting tracked-user rows
// (or removals) and the generation counter into the batch, once per user. Rows that earlier
// operations wrote into the same batch for a touched user are replaced, so a batch never holds
// both an update and a removal of one user.
struct device_list_tracker::batch_scope {
    device_list_tracker& tracker;
    storage::sync_batch& batch;
    std::unordered_set<std::string> touched;
    std::unordered_set<std::string> tracked_before;
    std::int64_t generation_before;
    std::size_t earlier_updates;
    std::size_t earlier_removals;

    batch_scope(device_list_tracker& t, storage::sync_batch& b)
        : tracker(t),
          batch(b),
          generation_before(t.generation_),
          earlier_updates(b.tracked_users.size()),
          earlier_removals(b.untracked_users.size()) {}

    void touch(const std::string& user_id) {
        if (touched.insert(user_id).second && tracker.users_.contains(user_id)) {
            tracked_before.insert(user_id);
        }
    }

    ~batch_scope() {
        forget_earlier_rows();
        for (const auto& user_id : touched) {
            auto it = tracker.users_.find(user_id);
            if (it != tracker.users_.end()) {
                const auto& u = it->second;
                batch.tracked_users.push_back(
                    {u.user_id, u.server_name, u.reasons, u.outdated, u.generation});
            } else if (tracked_before.contains(user_id)) {
                batch.untracked_users.push_back(user_id);
            }
        }
        if (tracker.generation_ != generation_before) batch.generation = tracker.generation_;
    }

    // Only rows written before this scope can concern a touched user; usually there are none.
    void forget_earlier_rows() {
        if (earlier_updates > 0) {
            auto& rows = batch.tracked_users;
            rows.erase(std::remove_if(rows.begin(), rows.end(),
                                      [&](const auto& r) { return touched.contains(r.user_id); }),
                       rows.end());
        }
        if (earlier_removals > 0) {
            auto& rows = batch.untracked_users;
            for (auto it = rows.begin(); it != rows.end();) {
                if (touched.contains(*it)) {
                    // Untracked by an earlier operation of this batch: the store's row is
                    // already gone when this batch commits.
                    tracked_before.erase(*it);
                    it = rows.erase(it);
                } else {
                    ++it;
                }
            }
        }
    }
};

device_list_tracker::device_list_tracker(std::string own_user_id)
    : own_user_id_(std::move(own_user_id)) {}

void device_list_tracker::restore(std::int64_t generation, const std::vector<storage::room>& rooms,
                                  const std::vector<storage::room_member>& members,
                                  const std::vector<storage::tracked_user>& users) {
    generation_ = generation;
    rooms_.clear();
    shared_rooms_.clear();
    users_.clear();
    outdated_.clear();
    in_flight_.clear();
    for (const auto& r : rooms) {
        auto& room = rooms_[r.room_id];
        room.encrypted = r.encrypted;
        room.algorithm = r.algorithm.value_or("");
    }
    for (const auto& m : members) {
        auto& room = rooms_[m.room_id];
        room.members[m.user_id] = m.state;
        if (room.encrypted) ++shared_rooms_[m.user_id];
    }
    for (const auto& u : users) {
        users_[u.user_id] = u;
        if (u.outdated) outdated_.insert(u.user_id);
    }
}

void device_list_tracker::ensure_own_user(storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    scope.touch(own_user_id_);
    auto& user = users_[own_user_id_];
    if (user.user_id.empty()) {
        user.user_id = own_user_id_;
        user.server_name = std::string(server_name_of(own_user_id_).value_or(""));
        stamp_outdated(user, scope);
    }
    user.reasons.own = true;
}

void device_list_tracker::stamp_outdated(storage::tracked_user& user, batch_scope& scope) {
    scope.touch(user.user_id);
    user.outdated = true;
    user.generation = ++generation_;
    outdated_.insert(user.user_id);
}

void device_list_tracker::set_reason_room(const std::string& user_id, bool on, batch_scope& scope) {
    scope.touch(user_id);
    auto it = users_.find(user_id);
    if (on) {
        if (it == users_.end()) {
            it = users_.emplace(user_id, storage::tracked_user{}).first;
            it->second.user_id = user_id;
            it->second.server_name = std::string(server_name_of(user_id).value_or(""));
        }
        if (!it->second.reasons.encrypted_room) {
            it->second.reasons.encrypted_room = true;
            // Newly sharing an encrypted room: their list must be (re)fetched, as the spec's
            // device_lists.changed would also say.
            stamp_outdated(it->second, scope);
        }
        return;
    }
    if (it == users_.end()) return;
    it->second.reasons.encrypted_room = false;
    if (!it->second.reasons.any()) untrack(user_id, scope);
}

void device_list_tracker::untrack(const std::string& user_id, batch_scope& scope) {
    scope.touch(user_id);
    users_.erase(user_id);
    outdated_.erase(user_id);
    // An in-flight query for the user still finishes; finish_query ignores untracked users.
}

void device_list_tracker::add_share(const std::string& user_id, batch_scope& scope) {
    if (++shared_rooms_[user_id] == 1) set_reason_room(user_id, true, scope);
}

void device_list_tracker::remove_share(const std::string& user_id, batch_scope& scope) {
    auto it = shared_rooms_.find(user_id);
    assert(it != shared_rooms_.end() && it->second > 0);
    if (--it->second == 0) {
        shared_rooms_.erase(it);
        set_reason_room(user_id, false, scope);
    }
}

void device_list_tracker::set_member(const std::string& room_id, room_state& room,
                                     const member_change& change, batch_scope& scope) {
    std::optional<storage::membership> now;
    if (change.state == membership::join) now = storage::membership::join;
    if (change.state == membership::invite) now = storage::membership::invite;

    auto it = room.members.find(change.user_id);
    bool was_member = it != room.members.end();
    if (!was_member && !now) return;
    if (was_member && now && it->second == *now) return;

    scope.batch.memberships.push_back({room_id, change.user_id, now});
    if (now) {
        room.members[change.user_id] = *now;
        if (!was_member && room.encrypted) add_share(change.user_id, scope);
    } else {
        room.members.erase(it);
        if (room.encrypted) remove_share(change.user_id, scope);
    }
}

void device_list_tracker::drop_room(const std::string& room_id, batch_scope& scope) {
    auto it = rooms_.find(room_id);
    if (it == rooms_.end()) return;
    room_state& room = it->second;
    for (const auto& [user_id, state] : room.members) {
        scope.batch.memberships.push_back({room_id, user_id, std::nullopt});
        if (room.encrypted) remove_share(user_id, scope);
    }
    room.members.clear();
    // The room row stays: if it is joined again, it is still encrypted (encryption cannot be
    // turned off), which is what must be remembered.
}

void device_list_tracker::apply_room(const room_delta& delta, bool initial, batch_scope& scope) {
    if (delta.section == room_section::invite) return;  // members unknown until we join
    if (delta.section == room_section::leave) {
        drop_room(delta.room_id, scope);
        return;
    }
    room_state& room = rooms_[delta.room_id];
    if (delta.encryption_algorithm && !room.encrypted) {
        room.encrypted = true;
        room.algorithm = *delta.encryption_algorithm;
        scope.batch.encrypted_rooms.push_back({delta.room_id, room.algorithm});
        for (const auto& [user_id, state] : room.members)
            add_share(user_id, scope);
    }
    if (initial) {
        // Complete state: members not listed are gone.
        std::unordered_set<std::string> listed;
        for (const auto& m : delta.members)
            listed.insert(m.user_id);
        std::vector<std::string> gone;
        for (const auto& [user_id, state] : room.members) {
            if (!listed.contains(user_id)) gone.push_back(user_id);
        }
        for (const auto& user_id : gone) {
            set_member(delta.room_id, room, {user_id, membership::leave}, scope);
        }
    }
    for (const auto& m : delta.members)
        set_member(delta.room_id, room, m, scope);
}

void device_list_tracker::apply_sync(const sync_response& response, bool initial,
                                     storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    if (initial) {
        // Rooms we are no longer joined to are absent from an initial sync.
        std::unordered_set<std::string> present;
        for (const auto& r : response.rooms) {
            if (r.section == room_section::join) present.insert(r.room_id);
        }
        std::vector<std::string> gone;
        for (const auto& [room_id, room] : rooms_) {
            if (!present.contains(room_id) && !room.members.empty()) gone.push_back(room_id);
        }
        for (const auto& room_id : gone)
            drop_room(room_id, scope);
    }
    for (const auto& delta : response.rooms)
        apply_room(delta, initial, scope);

    for (const auto& user_id : response.device_lists_changed) {
        auto it = users_.find(user_id);
        if (it != users_.end()) stamp_outdated(it->second, scope);
    }
    for (const auto& user_id : response.device_lists_left) {
        auto it = users_.find(user_id);
        if (it == users_.end()) continue;
        if (shared_rooms_.contains(user_id)) {
            ++left_disagreements_;
        } else if (it->second.reasons.encrypted_room) {
            set_reason_room(user_id, false, scope);
        }
    }
}

void device_list_tracker::track_explicitly(const std::string& user_id, storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    scope.touch(user_id);
    auto [it, inserted] = users_.try_emplace(user_id);
    auto& user = it->second;
    if (inserted) {
        user.user_id = user_id;
        user.server_name = std::string(server_name_of(user_id).value_or(""));
        stamp_outdated(user, scope);
    }
    user.reasons.explicit_request = true;
}

bool device_list_tracker::untrack_explicitly(const std::string& user_id,
                                             storage::sync_batch& batch) {
    auto it = users_.find(user_id);
    if (it == users_.end() || !it->second.reasons.explicit_request) return false;
    batch_scope scope(*this, batch);
    scope.touch(user_id);
    it->second.reasons.explicit_request = false;
    if (!it->second.reasons.any()) untrack(user_id, scope);
    return true;
}

std::size_t device_list_tracker::mark_outdated(const std::vector<std::string>& user_ids,
                                               storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    std::size_t marked = 0;
    for (const auto& user_id : user_ids) {
        auto it = users_.find(user_id);
        if (it == users_.end()) continue;
        stamp_outdated(it->second, scope);
        ++marked;
    }
    return marked;
}

std::size_t device_list_tracker::mark_all_outdated(storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    for (auto& [user_id, user] : users_)
        stamp_outdated(user, scope);
    return users_.size();
}

std::vector<query_ticket> device_list_tracker::take_outdated(
    std::size_t max_users, const std::function<bool(const std::string&)>& allowed) {
    std::vector<query_ticket> tickets;
    auto take = [&](const std::string& user_id) {
        if (tickets.size() >= max_users || in_flight_.contains(user_id)) return;
        if (allowed && !allowed(user_id)) return;
        std::int64_t generation = users_.at(user_id).generation;
        in_flight_.emplace(user_id, generation);
        tickets.push_back({user_id, generation});
    };
    if (outdated_.contains(own_user_id_)) take(own_user_id_);
    for (const auto& user_id : outdated_) {
        if (tickets.size() >= max_users) break;
        if (user_id != own_user_id_) take(user_id);
    }
    return tickets;
}

void device_list_tracker::finish_query(const std::vector<query_ticket>& tickets,
                                       const std::vector<std::string>& cleared) {
    for (const auto& t : tickets)
        in_flight_.erase(t.user_id);
    for (const auto& user_id : cleared) {
        auto it = users_.find(user_id);
        if (it == users_.end()) continue;
        it->second.outdated = false;
        outdated_.erase(user_id);
    }
}

const storage::tracked_user* device_list_tracker::find(const std::string& user_id) const {
    auto it = users_.find(user_id);
    return it == users_.end() ? nullptr : &it->second;
}

}  // namespace devlist::sync
