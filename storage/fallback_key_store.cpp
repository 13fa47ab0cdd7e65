#include "storage/fallback_key_store.hpp"

#include "storage/enum_text.hpp"
#include "storage/key_id_counter.hpp"

#include <string>

namespace devlist::storage {

namespace {

// The columns read_key() reads, spliced into several literals.
#define DEVLIST_FALLBACK_KEY_COLUMNS                                                        \
    "key_id, algorithm, slot, public_key, sealed_private, signed_json, state, created_at, " \
    "published_at, used_at, erase_after"

result<fallback_key> read_key(const statement& st) {
    auto slot = parse_text<fallback_slot>(st.text(2));
    if (!slot) return slot.error();
    auto state = parse_text<key_state>(st.text(6));
    if (!state) return state.error();
    return fallback_key{
        .key_id = st.text(0),
        .algorithm = st.text(1),
        .slot = *slot,
        .public_key = st.text(3),
        .sealed_private = st.blob(4),
        .signed_json = st.text(5),
        .state = *state,
        .created_at = st.int64(7),
        .published_at = st.optional_int64(8),
        .used_at = st.optional_int64(9),
        .erase_after = st.optional_int64(10),
    };
}

}  // namespace

result<fallback_key> fallback_key_store::add_pending_current(const new_key& key, timestamp_ms now,
                                                             const key_id_formatter& format) {
    return with_transaction(stmts_.db(), durability::full, [&]() -> result<fallback_key> {
        auto value = take_key_id_values(stmts_, 1);
        if (!value) return value.error();
        if (auto r = stmts_.run("UPDATE fallback_keys SET slot = 'previous' "
                                "WHERE algorithm = ?1 AND slot = 'current'",
                                key.algorithm);
            !r) {
            return r.error();
        }
        fallback_key row{
            .key_id = format(*value),
            .algorithm = key.algorithm,
            .slot = fallback_slot::current,
            .public_key = key.public_key,
            .sealed_private = key.sealed_private,
            .signed_json = key.signed_json,
            .state = key_state::pending,
            .created_at = now,
            .published_at = std::nullopt,
            .used_at = std::nullopt,
            .erase_after = std::nullopt,
        };
        if (auto r = stmts_.run(
                "INSERT INTO fallback_keys (key_id, algorithm, slot, public_key, sealed_private, "
                "signed_json, state, created_at) "
                "VALUES (?1, ?2, 'current', ?3, ?4, ?5, 'pending', ?6)",
                row.key_id, row.algorithm, row.public_key, row.sealed_private, row.signed_json,
                row.created_at);
            !r) {
            return r.error();
        }
        return row;
    });
}

result<void> fallback_key_store::mark_published(std::string_view key_id, timestamp_ms at,
                                                std::chrono::milliseconds keep_previous) {
    return with_transaction(stmts_.db(), durability::normal, [&]() -> result<void> {
        auto key = stmts_.query_one(
            "UPDATE fallback_keys SET state = 'published', published_at = COALESCE(published_at, "
            "?2) "
            "WHERE key_id = ?1 RETURNING algorithm, slot",
            [](const statement& st) { return std::pair(st.text(0), st.text(1)); }, key_id, at);
        if (!key) return key.error();
        if (!*key) {
            return error{errc::invalid_argument,
                         "no fallback key with ID '" + std::string(key_id) + "'"};
        }
        const auto& [algorithm, slot] = **key;
        if (slot != to_text(fallback_slot::current)) return {};
        // Peers may have claimed a previous key until the server started handing out this
        // one; they get `keep_previous` to use it.
        return stmts_.run(
            "UPDATE fallback_keys SET erase_after = ?2 "
            "WHERE algorithm = ?1 AND slot = 'previous' AND erase_after IS NULL",
            algorithm, at + keep_previous.count());
    });
}

result<bool> fallback_key_store::mark_used(std::string_view key_id, timestamp_ms at) {
    auto changed = stmts_.run_counted(
        "UPDATE fallback_keys SET used_at = ?2 WHERE key_id = ?1 AND used_at IS NULL", key_id, at);
    if (!changed) return changed.error();
    return *changed != 0;
}

result<std::int64_t> fallback_key_store::erase_expired(timestamp_ms now) {
    return stmts_.run_counted(
        "DELETE FROM fallback_keys WHERE slot = 'previous' AND erase_after <= ?1", now);
}

result<std::optional<fallback_key>> fallback_key_store::current(std::string_view algorithm) {
    return stmts_.query_one("SELECT " DEVLIST_FALLBACK_KEY_COLUMNS
                            " FROM fallback_keys WHERE algorithm = ?1 AND slot = 'current'",
                            read_key, algorithm);
}

result<std::vector<fallback_key>> fallback_key_store::previous(std::string_view algorithm) {
    return stmts_.query_all("SELECT " DEVLIST_FALLBACK_KEY_COLUMNS
                            " FROM fallback_keys WHERE algorithm = ?1 AND slot = 'previous' "
                            "ORDER BY created_at DESC, rowid DESC",
                            read_key, algorithm);
}

result<std::optional<fallback_key>> fallback_key_store::find_by_public_key(
    std::string_view public_key) {
    return stmts_.query_one("SELECT " DEVLIST_FALLBACK_KEY_COLUMNS
                            " FROM fallback_keys WHERE public_key = ?1",
                            read_key, public_key);
}

#undef DEVLIST_FALLBACK_KEY_COLUMNS

}  // namespace devlist::storage
