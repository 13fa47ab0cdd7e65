#include "sync/device_list_tracker.hpp"

#include <algorithm>
#include <cassert>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "sync/matrix_ids.hpp"

namespace devlist::sync {

namespace {

std::size_t hash_of(std::string_view user_id) {
    return std::hash<std::string_view>{}(user_id);
}

}  // namespace

// Collects what one operation touched, and at its end writes the resulting tracked-user rows
// (or removals) and the generation counter into the batch, once per user. Rows that earlier
// operations wrote into the same batch for a touched user are replaced, so a batch never holds
// both an update and a removal of one user.
//
// A user who was tracked before and whose only change is a new stamp gets an outdated mark
// (user ID and generation) instead of a whole row: /sync marks thousands of users at a time,
// and the store then rewrites two columns only.
struct device_list_tracker::batch_scope {
    device_list_tracker& tracker;
    storage::sync_batch& batch;
    std::vector<handle> touched;
    std::int64_t generation_before;
    std::size_t earlier_rows;
    // The generation of every user this operation stamps (0 until the first stamp).
    std::int64_t stamp = 0;

    batch_scope(device_list_tracker& t, storage::sync_batch& b)
        : tracker(t),
          batch(b),
          generation_before(t.generation_),
          earlier_rows(b.tracked_users.size() + b.outdated_marks.size() +
                       b.untracked_users.size()) {
        ++tracker.scope_serial_;
        tracker.scope_open_ = true;
    }
    batch_scope(const batch_scope&) = delete;
    batch_scope& operator=(const batch_scope&) = delete;

    void touch(handle h) {
        user_slot& s = tracker.slot(h);
        if (s.scope == tracker.scope_serial_) return;
        s.scope = tracker.scope_serial_;
        s.tracked_before = s.tracked;
        s.stamped = false;
        s.whole_row = false;
        s.reasons_before = s.user.reasons;
        touched.push_back(h);
    }

    ~batch_scope() {
        if (earlier_rows > 0) forget_earlier_rows();
        for (handle h : touched) {
            const user_slot& s = tracker.slot(h);
            const storage::tracked_user& u = s.user;
            if (s.tracked) {
                if (s.tracked_before && s.stamped && !s.whole_row &&
                    u.reasons == s.reasons_before) {
                    batch.outdated_marks.push_back({u.user_id, u.generation});
                } else {
                    batch.tracked_users.push_back(
                        {u.user_id, u.server_name, u.reasons, u.outdated, u.generation});
                }
            } else if (s.tracked_before) {
                batch.untracked_users.push_back(u.user_id);
            }
        }
        if (tracker.generation_ != generation_before) batch.generation = tracker.generation_;
        tracker.scope_open_ = false;
        for (handle h : touched)
            tracker.release_if_unused(h);
    }

    // Only rows written before this scope can concern a touched user; usually there are none.
    void forget_earlier_rows() {
        std::unordered_set<std::string_view> names;
        for (handle h : touched)
            names.insert(tracker.slot(h).user.user_id);
        auto replaced = [&](const std::string& user_id) {
            if (!names.contains(user_id)) return false;
            // The store does not hold what that row wrote yet: this scope writes the whole row.
            tracker.slot(tracker.find_handle(user_id)).whole_row = true;
            return true;
        };
        auto& rows = batch.tracked_users;
        rows.erase(std::remove_if(rows.begin(), rows.end(),
                                  [&](const auto& r) { return replaced(r.user_id); }),
                   rows.end());
        auto& marks = batch.outdated_marks;
        marks.erase(std::remove_if(marks.begin(), marks.end(),
                                   [&](const auto& m) { return replaced(m.user_id); }),
                    marks.end());
        auto& removals = batch.untracked_users;
        for (auto it = removals.begin(); it != removals.end();) {
            if (names.contains(*it)) {
                // Untracked by an earlier operation of this batch: the store's row is
                // already gone when this batch commits.
                tracker.slot(tracker.find_handle(*it)).tracked_before = false;
                it = removals.erase(it);
            } else {
                ++it;
            }
        }
    }
};

device_list_tracker::device_list_tracker(std::string own_user_id)
    : own_user_id_(std::move(own_user_id)) {}

// ---- the user table ----

device_list_tracker::handle device_list_tracker::find_handle(std::string_view user_id) const {
    return index_.find(hash_of(user_id), [&](handle h) { return slot(h).user.user_id == user_id; });
}

device_list_tracker::handle device_list_tracker::intern(std::string_view user_id) {
    const std::size_t hash = hash_of(user_id);
    handle h = index_.find(hash, [&](handle c) { return slot(c).user.user_id == user_id; });
    if (h != detail::handle_set::npos) return h;
    if (!free_slots_.empty()) {
        h = free_slots_.back();
        free_slots_.pop_back();
    } else {
        if (slot_count_ % chunk_size == 0) {
            chunks_.push_back(std::make_unique<user_slot[]>(chunk_size));
        }
        h = slot_count_++;
    }
    user_slot& s = slot(h);
    s.live = true;
    s.user.user_id = user_id;
    index_.insert(hash, h);
    return h;
}

// A slot is kept while anything refers to its user: tracking, a room, a query in flight, the
// outdated queue, or the open batch_scope.
void device_list_tracker::release_if_unused(handle h) {
    user_slot& s = slot(h);
    if (!s.live || s.tracked || s.rooms > 0 || s.in_flight || s.queued) return;
    if (scope_open_ && s.scope == scope_serial_) return;
    index_.erase(hash_of(s.user.user_id), [&](handle c) { return c == h; });
    s = user_slot{};  // frees the strings
    free_slots_.push_back(h);
}

std::optional<storage::membership> device_list_tracker::member_state(const room_state& room,
                                                                     handle h) const {
    handle v = room.members.find(h, [&](handle c) { return c >> 1 == h; });
    if (v == detail::handle_set::npos) return std::nullopt;
    return (v & 1) ? storage::membership::invite : storage::membership::join;
}

void device_list_tracker::set_member_state(room_state& room, handle h,
                                           std::optional<storage::membership> state) {
    const bool was = room.members.erase(h, [&](handle c) { return c >> 1 == h; });
    if (state) {
        room.members.insert(h, h << 1 | (*state == storage::membership::invite ? 1u : 0u));
    }
    user_slot& s = slot(h);
    if (was && !state) --s.rooms;
    if (!was && state) ++s.rooms;
}

void device_list_tracker::set_outdated(user_slot& s, bool outdated) {
    if (s.user.outdated == outdated) return;
    s.user.outdated = outdated;
    if (outdated) {
        ++outdated_count_;
    } else {
        --outdated_count_;
        if (s.queued) outdated_queue_stale_ = true;
    }
}

void device_list_tracker::start_tracking(handle h) {
    user_slot& s = slot(h);
    assert(!s.tracked);
    s.tracked = true;
    ++tracked_count_;
    s.user.server_name = std::string(server_name_of(s.user.user_id).value_or(""));
    s.user.reasons = {};
    s.user.outdated = false;  // until stamped, which the caller does
    s.user.generation = 0;
    s.user.last_refreshed_at.reset();
}

// ---- restore ----

void device_list_tracker::begin_restore(std::int64_t generation) {
    generation_ = generation;
    rooms_.clear();
    chunks_.clear();
    slot_count_ = 0;
    free_slots_.clear();
    index_.clear();
    tracked_count_ = 0;
    outdated_count_ = 0;
    in_flight_count_ = 0;
    outdated_sorted_.clear();
    outdated_added_.clear();
    outdated_queue_stale_ = false;
    restoring_room_ = nullptr;
    restoring_room_id_.clear();
}

void device_list_tracker::restore_room(std::string_view room_id, bool encrypted,
                                       std::string_view algorithm) {
    auto& room = rooms_[std::string(room_id)];
    room.encrypted = encrypted;
    room.algorithm = algorithm;
}

void device_list_tracker::restore_member(const storage::room_member_view& member) {
    if (!restoring_room_ || restoring_room_id_ != member.room_id) {
        restoring_room_id_ = member.room_id;
        restoring_room_ = &rooms_[restoring_room_id_];  // node-based: the address stays
    }
    handle h = intern(member.user_id);
    const bool was_member = member_state(*restoring_room_, h).has_value();
    set_member_state(*restoring_room_, h, member.state);
    if (restoring_room_->encrypted && !was_member) ++slot(h).shared_rooms;
}

void device_list_tracker::restore_user(const storage::tracked_user_view& user) {
    handle h = intern(user.user_id);
    user_slot& s = slot(h);
    if (!s.tracked) {
        s.tracked = true;
        ++tracked_count_;
    }
    s.user.server_name = user.server_name;
    s.user.reasons = user.reasons;
    s.user.generation = user.generation;
    s.user.last_refreshed_at = user.last_refreshed_at;
    s.user.outdated = false;
    set_outdated(s, user.outdated);
    if (user.outdated && !s.queued) {
        s.queued = true;
        outdated_added_.push_back(h);
    }
}

void device_list_tracker::restore(std::int64_t generation, const std::vector<storage::room>& rooms,
                                  const std::vector<storage::room_member>& members,
                                  const std::vector<storage::tracked_user>& users) {
    begin_restore(generation);
    for (const auto& r : rooms)
        restore_room(r.room_id, r.encrypted, r.algorithm.value_or(""));
    for (const auto& m : members)
        restore_member({m.room_id, m.user_id, m.state});
    for (const auto& u : users) {
        restore_user(
            {u.user_id, u.server_name, u.reasons, u.outdated, u.generation, u.last_refreshed_at});
    }
}

// ---- decisions ----

void device_list_tracker::ensure_own_user(storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    handle h = intern(own_user_id_);
    scope.touch(h);
    if (!slot(h).tracked) {
        start_tracking(h);
        stamp_outdated(h, scope);
    }
    slot(h).user.reasons.own = true;
}

void device_list_tracker::stamp_outdated(handle h, batch_scope& scope) {
    scope.touch(h);
    user_slot& s = slot(h);
    s.stamped = true;
    set_outdated(s, true);
    // One generation per operation, shared by every user it stamps: a ticket taken before the
    // operation holds an older generation and one taken after holds this one, so the race guard
    // is the same as with one per user, and the store can write a batch's marks many to a
    // statement (a /sync response marks up to tens of thousands of users).
    if (scope.stamp == 0) scope.stamp = ++generation_;
    s.user.generation = scope.stamp;
    if (!s.queued) {
        s.queued = true;
        outdated_added_.push_back(h);
    }
}

void device_list_tracker::set_reason_room(handle h, bool on, batch_scope& scope) {
    scope.touch(h);
    user_slot& s = slot(h);
    if (on) {
        if (!s.tracked) start_tracking(h);
        if (!s.user.reasons.encrypted_room) {
            s.user.reasons.encrypted_room = true;
            // Newly sharing an encrypted room: their list must be (re)fetched, as the spec's
            // device_lists.changed would also say.
            stamp_outdated(h, scope);
        }
        return;
    }
    if (!s.tracked) return;
    s.user.reasons.encrypted_room = false;
    if (!s.user.reasons.any()) untrack(h, scope);
}

void device_list_tracker::untrack(handle h, batch_scope& scope) {
    scope.touch(h);
    user_slot& s = slot(h);
    set_outdated(s, false);
    s.tracked = false;
    --tracked_count_;
    s.user.reasons = {};
    // An in-flight query for the user still finishes (the slot stays until then);
    // finish_query ignores untracked users.
}

void device_list_tracker::add_share(handle h, batch_scope& scope) {
    if (++slot(h).shared_rooms == 1) set_reason_room(h, true, scope);
}

void device_list_tracker::remove_share(handle h, batch_scope& scope) {
    user_slot& s = slot(h);
    assert(s.shared_rooms > 0);
    if (--s.shared_rooms == 0) set_reason_room(h, false, scope);
}

void device_list_tracker::set_member(const std::string& room_id, room_state& room,
                                     const member_change& change, batch_scope& scope) {
    std::optional<storage::membership> now;
    if (change.state == membership::join) now = storage::membership::join;
    if (change.state == membership::invite) now = storage::membership::invite;

    handle h = find_handle(change.user_id);
    std::optional<storage::membership> was;
    if (h != detail::handle_set::npos) was = member_state(room, h);
    if (!was && !now) return;
    if (was && now && *was == *now) return;

    scope.batch.memberships.push_back({room_id, change.user_id, now});
    if (now) {
        if (h == detail::handle_set::npos) h = intern(change.user_id);
        set_member_state(room, h, now);
        if (!was && room.encrypted) add_share(h, scope);
    } else {
        set_member_state(room, h, std::nullopt);
        if (room.encrypted) remove_share(h, scope);
        release_if_unused(h);
    }
}

void device_list_tracker::drop_room(const std::string& room_id, batch_scope& scope) {
    auto it = rooms_.find(room_id);
    if (it == rooms_.end()) return;
    room_state& room = it->second;
    std::vector<handle> members;
    members.reserve(room.members.size());
    room.members.for_each([&](handle v) { members.push_back(v >> 1); });
    room.members.clear();
    for (handle h : members) {
        scope.batch.memberships.push_back({room_id, slot(h).user.user_id, std::nullopt});
        --slot(h).rooms;
        if (room.encrypted) remove_share(h, scope);
        release_if_unused(h);
    }
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
        std::vector<handle> members;
        room.members.for_each([&](handle v) { members.push_back(v >> 1); });
        for (handle h : members)
            add_share(h, scope);
    }
    if (initial) {
        // Complete state: members not listed are gone.
        std::unordered_set<handle> listed;
        for (const auto& m : delta.members) {
            handle h = find_handle(m.user_id);
            if (h != detail::handle_set::npos) listed.insert(h);
        }
        std::vector<handle> gone;
        room.members.for_each([&](handle v) {
            if (!listed.contains(v >> 1)) gone.push_back(v >> 1);
        });
        for (handle h : gone) {
            // A copy of the ID: set_member may recycle the slot that holds it.
            member_change change{slot(h).user.user_id, membership::leave};
            set_member(delta.room_id, room, change, scope);
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
            if (!present.contains(room_id) && room.members.size() > 0) gone.push_back(room_id);
        }
        for (const auto& room_id : gone)
            drop_room(room_id, scope);
    }
    for (const auto& delta : response.rooms)
        apply_room(delta, initial, scope);

    for (const auto& user_id : response.device_lists_changed) {
        handle h = find_handle(user_id);
        if (h != detail::handle_set::npos && slot(h).tracked) stamp_outdated(h, scope);
    }
    for (const auto& user_id : response.device_lists_left) {
        handle h = find_handle(user_id);
        if (h == detail::handle_set::npos || !slot(h).tracked) continue;
        if (slot(h).shared_rooms > 0) {
            ++left_disagreements_;
        } else if (slot(h).user.reasons.encrypted_room) {
            set_reason_room(h, false, scope);
        }
    }
}

void device_list_tracker::track_explicitly(const std::string& user_id, storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    handle h = intern(user_id);
    scope.touch(h);
    if (!slot(h).tracked) {
        start_tracking(h);
        stamp_outdated(h, scope);
    }
    slot(h).user.reasons.explicit_request = true;
}

bool device_list_tracker::untrack_explicitly(const std::string& user_id,
                                             storage::sync_batch& batch) {
    handle h = find_handle(user_id);
    if (h == detail::handle_set::npos || !slot(h).tracked ||
        !slot(h).user.reasons.explicit_request) {
        return false;
    }
    batch_scope scope(*this, batch);
    scope.touch(h);
    slot(h).user.reasons.explicit_request = false;
    if (!slot(h).user.reasons.any()) untrack(h, scope);
    return true;
}

std::size_t device_list_tracker::mark_outdated(const std::vector<std::string>& user_ids,
                                               storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    std::size_t marked = 0;
    for (const auto& user_id : user_ids) {
        handle h = find_handle(user_id);
        if (h == detail::handle_set::npos || !slot(h).tracked) continue;
        stamp_outdated(h, scope);
        ++marked;
    }
    return marked;
}

std::size_t device_list_tracker::mark_all_outdated(storage::sync_batch& batch) {
    batch_scope scope(*this, batch);
    for (handle h = 0; h < slot_count_; ++h) {
        if (slot(h).tracked) stamp_outdated(h, scope);
    }
    return tracked_count_;
}

// ---- queries ----

// Brings outdated_sorted_ up to date: the users queued since are merged in (sorted by user ID)
// and users no longer outdated are dropped. Linear in the queue plus the sort of the additions.
void device_list_tracker::sort_outdated_queue() {
    if (outdated_added_.empty() && !outdated_queue_stale_) return;
    auto before = [&](handle a, handle b) { return slot(a).user.user_id < slot(b).user.user_id; };
    std::vector<std::pair<std::uint64_t, handle>> keyed;
    keyed.reserve(outdated_added_.size());
    for (handle h : outdated_added_)
        keyed.emplace_back(storage::user_order_key(slot(h).user.user_id), h);
    std::sort(keyed.begin(), keyed.end(), [&](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        return before(a.second, b.second);
    });
    outdated_added_.clear();

    std::vector<handle> dropped;
    auto keep = [&](handle h) {
        const user_slot& s = slot(h);
        if (s.tracked && s.user.outdated) return true;
        dropped.push_back(h);
        return false;
    };
    std::vector<handle> merged;
    merged.reserve(outdated_count_);
    auto a = outdated_sorted_.begin();
    auto b = keyed.begin();
    while (a != outdated_sorted_.end() || b != keyed.end()) {
        handle next;
        if (b == keyed.end() || (a != outdated_sorted_.end() && before(*a, b->second))) {
            next = *a++;
        } else {
            next = (b++)->second;
        }
        if (keep(next)) merged.push_back(next);
    }
    outdated_sorted_ = std::move(merged);
    outdated_queue_stale_ = false;
    for (handle h : dropped) {
        slot(h).queued = false;
        release_if_unused(h);
    }
}

std::vector<query_ticket> device_list_tracker::take_outdated(
    std::size_t max_users, const std::function<bool(const std::string&)>& allowed) {
    sort_outdated_queue();
    std::vector<query_ticket> tickets;
    auto take = [&](handle h) {
        user_slot& s = slot(h);
        if (tickets.size() >= max_users || s.in_flight) return;
        if (allowed && !allowed(s.user.user_id)) return;
        s.in_flight = true;
        ++in_flight_count_;
        tickets.push_back({s.user.user_id, s.user.generation});
    };
    const handle own = find_handle(own_user_id_);
    const bool own_outdated =
        own != detail::handle_set::npos && slot(own).tracked && slot(own).user.outdated;
    if (own_outdated) take(own);
    for (handle h : outdated_sorted_) {
        if (tickets.size() >= max_users) break;
        if (h != own) take(h);
    }
    return tickets;
}

void device_list_tracker::finish_query(const std::vector<query_ticket>& tickets,
                                       const std::vector<std::string>& cleared) {
    std::vector<handle> ended;
    ended.reserve(tickets.size());
    std::unordered_map<std::string_view, std::int64_t> sent_at;
    sent_at.reserve(tickets.size());
    for (const auto& t : tickets) {
        sent_at.emplace(t.user_id, t.generation);
        handle h = find_handle(t.user_id);
        if (h == detail::handle_set::npos || !slot(h).in_flight) continue;
        slot(h).in_flight = false;
        --in_flight_count_;
        ended.push_back(h);
    }
    for (const auto& user_id : cleared) {
        handle h = find_handle(user_id);
        if (h == detail::handle_set::npos || !slot(h).tracked) continue;
        // The store cleared the flag at the generation the request was sent with; a /sync
        // applied after that commit (between two commits of a large answer) marked the user
        // outdated again, in the store too, and that mark stands.
        if (auto sent = sent_at.find(user_id);
            sent != sent_at.end() && sent->second != slot(h).user.generation) {
            continue;
        }
        set_outdated(slot(h), false);
    }
    for (handle h : ended)
        release_if_unused(h);
}

const storage::tracked_user* device_list_tracker::find(const std::string& user_id) const {
    handle h = find_handle(user_id);
    if (h == detail::handle_set::npos || !slot(h).tracked) return nullptr;
    return &slot(h).user;
}

}  // namespace devlist::sync
