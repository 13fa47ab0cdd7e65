#include "storage/own_cross_signing_store.hpp"

#include "storage/enum_text.hpp"

namespace devlist::storage {

namespace {

result<own_cross_signing_key> read_key(const statement& st) {
    auto usage = parse_text<key_usage>(st.text(0));
    if (!usage) return usage.error();
    auto state = parse_text<upload_state>(st.text(4));
    if (!state) return state.error();
    return own_cross_signing_key{
        .usage = *usage,
        .public_key = st.text(1),
        .sealed_private = st.blob(2),
        .signed_json = st.text(3),
        .state = *state,
        .created_at = st.int64(5),
        .uploaded_at = st.optional_int64(6),
    };
}

}  // namespace

result<void> own_cross_signing_store::store_pending(std::span<const own_cross_signing_key> keys,
                                                    timestamp_ms now) {
    return with_transaction(stmts_.db(), durability::full, [&]() -> result<void> {
        if (auto r = stmts_.run("DELETE FROM own_cross_signing_keys"); !r) return r;
        for (const own_cross_signing_key& key : keys) {
            if (auto r = stmts_.run(
                    "INSERT INTO own_cross_signing_keys (usage, public_key, sealed_private, "
                    "signed_json, state, created_at) VALUES (?1, ?2, ?3, ?4, 'pending', ?5)",
                    to_text(key.usage), key.public_key, key.sealed_private, key.signed_json, now);
                !r) {
                return r;
            }
        }
        return stmts_.run("UPDATE account SET device_signature_uploaded = 0 WHERE id = 1");
    });
}

result<void> own_cross_signing_store::mark_uploaded(timestamp_ms at) {
    return stmts_.run(
        "UPDATE own_cross_signing_keys SET state = 'uploaded', uploaded_at = ?1 "
        "WHERE state = 'pending'",
        at);
}

result<std::vector<own_cross_signing_key>> own_cross_signing_store::load() {
    return stmts_.query_all(
        "SELECT usage, public_key, sealed_private, signed_json, state, created_at, uploaded_at "
        "FROM own_cross_signing_keys "
        "ORDER BY CASE usage WHEN 'master' THEN 0 WHEN 'self_signing' THEN 1 ELSE 2 END",
        read_key);
}

}  // namespace devlist::storage
