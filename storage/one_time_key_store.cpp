#include "storage/one_time_key_store.hpp"

#include "storage/enum_text.hpp"
#include "storage/key_id_counter.hpp"
#include "storage/sql_limit.hpp"

namespace devlist::storage {

namespace {

// The columns read_key() reads, spliced into several literals.
#define DEVLIST_ONE_TIME_KEY_COLUMNS                                                       \
    "key_id, seq, algorithm, public_key, sealed_private, signed_json, state, created_at, " \
    "published_at"

result<one_time_key> read_key(const statement& st) {
    auto state = parse_text<key_state>(st.text(6));
    if (!state) return state.error();
    return one_time_key{
        .key_id = st.text(0),
        .seq = st.int64(1),
        .algorithm = st.text(2),
        .public_key = st.text(3),
        .sealed_private = st.blob(4),
        .signed_json = st.text(5),
        .state = *state,
        .created_at = st.int64(7),
        .published_at = st.optional_int64(8),
    };
}

}  // namespace

result<std::vector<one_time_key>> one_time_key_store::add_pending(std::span<const new_key> keys,
                                                                  timestamp_ms now,
                                                                  const key_id_formatter& format) {
    return with_transaction(
        stmts_.db(), durability::full, [&]() -> result<std::vector<one_time_key>> {
            auto first = take_key_id_values(stmts_, static_cast<std::int64_t>(keys.size()));
            if (!first) return first.error();
            std::vector<one_time_key> added;
            added.reserve(keys.size());
            std::int64_t seq = *first;
            for (const new_key& key : keys) {
                one_time_key row{
                    .key_id = format(seq),
                    .seq = seq,
                    .algorithm = key.algorithm,
                    .public_key = key.public_key,
                    .sealed_private = key.sealed_private,
                    .signed_json = key.signed_json,
                    .state = key_state::pending,
                    .created_at = now,
                    .published_at = std::nullopt,
                };
                if (auto r =
                        stmts_.run("INSERT INTO one_time_keys (key_id, seq, algorithm, public_key, "
                                   "sealed_private, signed_json, state, created_at) "
                                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7)",
                                   row.key_id, row.seq, row.algorithm, row.public_key,
                                   row.sealed_private, row.signed_json, row.created_at);
                    !r) {
                    return r.error();
                }
                added.push_back(std::move(row));
                ++seq;
            }
            return added;
        });
}

result<std::vector<one_time_key>> one_time_key_store::pending() {
    return stmts_.query_all("SELECT " DEVLIST_ONE_TIME_KEY_COLUMNS
                            " FROM one_time_keys WHERE state = 'pending' ORDER BY seq",
                            read_key);
}

result<std::vector<one_time_key>> one_time_key_store::all() {
    return stmts_.query_all(
        "SELECT " DEVLIST_ONE_TIME_KEY_COLUMNS " FROM one_time_keys ORDER BY seq", read_key);
}

result<std::int64_t> one_time_key_store::mark_published(std::span<const std::string> key_ids,
                                                        timestamp_ms at) {
    return with_transaction(stmts_.db(), durability::normal, [&]() -> result<std::int64_t> {
        std::int64_t published = 0;
        for (const std::string& key_id : key_ids) {
            auto changed = stmts_.run_counted(
                "UPDATE one_time_keys SET state = 'published', published_at = ?2 "
                "WHERE key_id = ?1 AND state = 'pending'",
                key_id, at);
            if (!changed) return changed.error();
            published += *changed;
        }
        return published;
    });
}

result<std::optional<one_time_key>> one_time_key_store::find(std::string_view key_id) {
    return stmts_.query_one("SELECT " DEVLIST_ONE_TIME_KEY_COLUMNS
                            " FROM one_time_keys WHERE key_id = ?1",
                            read_key, key_id);
}

result<std::optional<one_time_key>> one_time_key_store::take(std::string_view key_id) {
    return stmts_.query_one(
        "DELETE FROM one_time_keys WHERE key_id = ?1 "
        "RETURNING " DEVLIST_ONE_TIME_KEY_COLUMNS,
        read_key, key_id);
}

result<std::optional<one_time_key>> one_time_key_store::find_by_public_key(
    std::string_view public_key) {
    return stmts_.query_one("SELECT " DEVLIST_ONE_TIME_KEY_COLUMNS
                            " FROM one_time_keys WHERE public_key = ?1",
                            read_key, public_key);
}

result<bool> one_time_key_store::discard_pending(std::string_view key_id) {
    auto changed = stmts_.run_counted(
        "DELETE FROM one_time_keys WHERE key_id = ?1 AND state = 'pending'", key_id);
    if (!changed) return changed.error();
    return *changed > 0;
}

result<std::int64_t> one_time_key_store::prune_published(std::size_t keep) {
    return stmts_.run_counted(
        "DELETE FROM one_time_keys WHERE seq IN (SELECT seq FROM one_time_keys "
        "WHERE state = 'published' ORDER BY seq DESC LIMIT -1 OFFSET ?1)",
        sql_limit(keep));
}

result<std::int64_t> one_time_key_store::count(key_state state) {
    return stmts_.query_value("SELECT COUNT(*) FROM one_time_keys WHERE state = ?1", read_int64,
                              to_text(state));
}

#undef DEVLIST_ONE_TIME_KEY_COLUMNS

}  // namespace devlist::storage
