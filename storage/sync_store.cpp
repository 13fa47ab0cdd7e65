#include "storage/sync_store.hpp"

#include "devlist/failpoint.hpp"
#include "storage/enum_text.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <span>
#include <string>
#include <utility>

namespace devlist::storage {

namespace {

constexpr std::size_t marks_per_statement = 64;

// UPDATE … WHERE user_id IN (?2, …, ?65): ?1 is the marks' shared generation.
const std::string& mark_many_sql() {
    static const std::string sql = [] {
        std::string s = "UPDATE tracked_users SET outdated = 1, generation = ?1 WHERE user_id IN (";
        for (std::size_t k = 0; k < marks_per_statement; ++k)
            s += (k == 0 ? "?" : ", ?") + std::to_string(k + 2);
        return s + ")";
    }();
    return sql;
}

room read_room(const statement& st) {
    return room{
        .room_id = st.text(0), .encrypted = st.boolean(1), .algorithm = st.optional_text(2)};
}

result<room_member> read_member(const statement& st) {
    auto state = parse_text<membership>(st.text(2));
    if (!state) return state.error();
    return room_member{.room_id = st.text(0), .user_id = st.text(1), .state = *state};
}

sync_state read_sync_state(const statement& st) {
    return sync_state{.device_id = st.optional_text(0),
                      .next_batch = st.optional_text(1),
                      .filter_id = st.optional_text(2),
                      .generation = st.int64(3)};
}

struct key_state_row {
    std::string algorithm;
    std::int64_t one_time_key_count;
    bool fallback_unused;
};

key_state_row read_key_state_row(const statement& st) {
    return key_state_row{.algorithm = st.text(0),
                         .one_time_key_count = st.int64(1),
                         .fallback_unused = st.boolean(2)};
}

// Pointers to `rows` sorted by user ID (user_order_key first), so that a batch of tens of
// thousands of rows walks the table once.
template <class Row>
std::vector<const Row*> in_user_order(const std::vector<Row>& rows) {
    std::vector<std::pair<std::uint64_t, const Row*>> keyed;
    keyed.reserve(rows.size());
    for (const Row& row : rows)
        keyed.emplace_back(user_order_key(row.user_id), &row);
    std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) {
        if (a.first != b.first) return a.first < b.first;
        return a.second->user_id < b.second->user_id;
    });
    std::vector<const Row*> sorted;
    sorted.reserve(keyed.size());
    for (const auto& [key, row] : keyed)
        sorted.push_back(row);
    return sorted;
}

}  // namespace

result<void> sync_store::apply_sync_batch(const sync_batch& batch) {
    return with_transaction(stmts_.db(), durability::normal, [&]() -> result<void> {
        if (auto r = write_batch(batch); !r) return r;
        DEVLIST_FAILPOINT("sync.apply.before_commit");
        return {};
    });
}

result<void> sync_store::write_batch(const sync_batch& batch) {
    if (batch.next_batch) {
        if (auto r =
                stmts_.run("UPDATE sync_state SET next_batch = ?1 WHERE id = 1", *batch.next_batch);
            !r) {
            return r;
        }
    }
    if (batch.generation) {
        if (auto r =
                stmts_.run("UPDATE sync_state SET generation = ?1 WHERE id = 1", *batch.generation);
            !r) {
            return r;
        }
    }
    for (const room_encryption& room : batch.encrypted_rooms) {
        if (auto r = stmts_.run(
                "INSERT INTO rooms (room_id, encrypted, algorithm) VALUES (?1, 1, ?2) "
                "ON CONFLICT (room_id) DO UPDATE SET encrypted = 1, algorithm = excluded.algorithm",
                room.room_id, room.algorithm);
            !r) {
            return r;
        }
    }
    if (auto r = write_memberships(batch); !r) return r;
    if (auto r = write_tracking(batch); !r) return r;
    if (auto r = write_server_key_state(batch); !r) return r;
    for (const outbox_event& event : batch.outbox_events) {
        if (auto r = outbox_->append(event); !r) return r.error();
    }
    return {};
}

result<void> sync_store::write_memberships(const sync_batch& batch) {
    for (const membership_change& change : batch.memberships) {
        if (!change.state) {
            if (auto r = stmts_.run("DELETE FROM memberships WHERE room_id = ?1 AND user_id = ?2",
                                    change.room_id, change.user_id);
                !r) {
                return r;
            }
            continue;
        }
        // A member may be seen before the room's encryption state: the room row comes first.
        if (auto r = stmts_.run("INSERT INTO rooms (room_id) VALUES (?1) ON CONFLICT DO NOTHING",
                                change.room_id);
            !r) {
            return r;
        }
        if (auto r = stmts_.run("INSERT INTO memberships (room_id, user_id, membership) "
                                "VALUES (?1, ?2, ?3) ON CONFLICT (room_id, user_id) "
                                "DO UPDATE SET membership = excluded.membership",
                                change.room_id, change.user_id, to_text(*change.state));
            !r) {
            return r;
        }
    }
    return {};
}

result<void> sync_store::mark_outdated(const outdated_mark& mark) {
    auto marked = stmts_.run_counted(
        "UPDATE tracked_users SET outdated = 1, generation = ?2 WHERE user_id = ?1", mark.user_id,
        mark.generation);
    if (!marked) return marked.error();
    // The engine marks only users the store tracks: a missing row means its view and the
    // store's parted, and the batch must not commit as if they had not.
    if (*marked == 0) {
        return error{errc::storage_corrupt, "database " + stmts_.db().name() +
                                                ": no tracked user " + mark.user_id +
                                                " to mark outdated"};
    }
    return {};
}

result<void> sync_store::write_tracking(const sync_batch& batch) {
    // In user-ID order, the order of tracked_users' B-tree: consecutive writes then land on the
    // same or the next page, so a batch that changes most users touches each page once instead
    // of cycling the page cache through the whole table for every few rows.
    for (const tracked_user_update* user : in_user_order(batch.tracked_users)) {
        assert(user->reasons.any() && "a user without a reason to track is untracked instead");
        // An upsert, never INSERT OR REPLACE: REPLACE deletes the row first, and the foreign
        // keys would take the user's devices with it.
        if (auto r = stmts_.run(
                "INSERT INTO tracked_users (user_id, server_name, reasons, outdated, generation) "
                "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (user_id) DO UPDATE SET "
                "server_name = excluded.server_name, reasons = excluded.reasons, "
                "outdated = excluded.outdated, generation = excluded.generation",
                user->user_id, user->server_name, to_bits(user->reasons), user->outdated,
                user->generation);
            !r) {
            return r;
        }
    }
    // Marks that share a generation (all those of one operation) are written many to a
    // statement: one UPDATE per mark costs a third more than the IN list's lookups.
    const auto marks = in_user_order(batch.outdated_marks);
    for (std::size_t i = 0; i < marks.size();) {
        std::size_t n = 1;
        while (n < marks_per_statement && i + n < marks.size() &&
               marks[i + n]->generation == marks[i]->generation) {
            ++n;
        }
        const std::span<const outdated_mark* const> group(marks.data() + i, n);
        if (n == marks_per_statement) {
            auto marked = stmts_.run_bound(mark_many_sql(), [&](statement& st) {
                st.bind(1, group.front()->generation);
                for (std::size_t k = 0; k < n; ++k)
                    st.bind(static_cast<int>(k) + 2, group[k]->user_id);
            });
            if (!marked) return marked.error();
            if (*marked == static_cast<std::int64_t>(n)) {
                i += n;
                continue;
            }
            // A user is missing: the rows one by one name it (the transaction is lost anyway).
        }
        for (const outdated_mark* mark : group) {
            if (auto r = mark_outdated(*mark); !r) return r;
        }
        i += n;
    }
    for (const std::string& user_id : batch.untracked_users) {
        // Devices and cross-signing keys go with the row (ON DELETE CASCADE).
        auto removed = stmts_.run_counted("DELETE FROM tracked_users WHERE user_id = ?1", user_id);
        if (!removed) return removed.error();
        if (*removed == 0) continue;  // not tracked (e.g. a replayed batch): nothing to announce
        if (auto r = outbox_->append_user_untracked(user_id, batch.at); !r) return r.error();
    }
    return {};
}

result<void> sync_store::write_server_key_state(const sync_batch& batch) {
    if (batch.one_time_key_counts) {
        if (auto r = stmts_.run("UPDATE server_key_state SET one_time_key_count = 0"); !r) {
            return r;
        }
        for (const auto& [algorithm, count] : *batch.one_time_key_counts) {
            if (auto r = stmts_.run(
                    "INSERT INTO server_key_state (algorithm, one_time_key_count) VALUES (?1, ?2) "
                    "ON CONFLICT (algorithm) "
                    "DO UPDATE SET one_time_key_count = excluded.one_time_key_count",
                    algorithm, count);
                !r) {
                return r;
            }
        }
    }
    if (batch.unused_fallback_key_types) {
        if (auto r = stmts_.run("UPDATE sync_state SET fallback_types_reported = 1 WHERE id = 1");
            !r) {
            return r;
        }
        if (auto r = stmts_.run("UPDATE server_key_state SET fallback_unused = 0"); !r) return r;
        for (const std::string& algorithm : *batch.unused_fallback_key_types) {
            if (auto r = stmts_.run(
                    "INSERT INTO server_key_state (algorithm, fallback_unused) VALUES (?1, 1) "
                    "ON CONFLICT (algorithm) DO UPDATE SET fallback_unused = 1",
                    algorithm);
                !r) {
                return r;
            }
        }
    }
    return stmts_.run(
        "DELETE FROM server_key_state WHERE one_time_key_count = 0 AND fallback_unused = 0");
}

result<sync_state> sync_store::load_sync_state() {
    return stmts_.query_value(
        "SELECT device_id, next_batch, filter_id, generation FROM sync_state WHERE id = 1",
        read_sync_state);
}

result<void> sync_store::set_device_id(std::string_view device_id) {
    return stmts_.run("UPDATE sync_state SET device_id = ?1 WHERE id = 1", device_id);
}

result<void> sync_store::set_filter_id(std::string_view filter_id) {
    return stmts_.run("UPDATE sync_state SET filter_id = ?1 WHERE id = 1", filter_id);
}

result<std::vector<room>> sync_store::load_rooms() {
    return stmts_.query_all("SELECT room_id, encrypted, algorithm FROM rooms ORDER BY room_id",
                            read_room);
}

result<std::vector<room_member>> sync_store::load_memberships() {
    return stmts_.query_all(
        "SELECT room_id, user_id, membership FROM memberships ORDER BY room_id, user_id",
        read_member);
}

result<void> sync_store::for_each_membership(
    const std::function<void(const room_member_view&)>& visit) {
    return stmts_.for_each(
        "SELECT room_id, user_id, membership FROM memberships ORDER BY room_id, user_id",
        [&](const statement& st) -> result<void> {
            auto state = parse_text<membership>(text_view(st, 2));
            if (!state) return state.error();
            visit({text_view(st, 0), text_view(st, 1), *state});
            return {};
        });
}

result<server_key_state> sync_store::load_server_key_state() {
    auto reported = stmts_.query_value(
        "SELECT fallback_types_reported FROM sync_state WHERE id = 1", read_int64);
    if (!reported) return reported.error();
    auto rows = stmts_.query_all(
        "SELECT algorithm, one_time_key_count, fallback_unused FROM server_key_state "
        "ORDER BY algorithm",
        read_key_state_row);
    if (!rows) return rows.error();
    server_key_state state;
    if (*reported != 0) state.unused_fallback_key_types.emplace();
    for (const key_state_row& row : *rows) {
        if (row.one_time_key_count > 0) {
            state.one_time_key_counts[row.algorithm] = row.one_time_key_count;
        }
        if (row.fallback_unused && state.unused_fallback_key_types) {
            state.unused_fallback_key_types->push_back(row.algorithm);
        }
    }
    return state;
}

}  // namespace devlist::storage
