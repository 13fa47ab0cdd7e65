#include "storage/account_store.hpp"

namespace devlist::storage {

namespace {

account_identity read_identity(const statement& st) {
    return account_identity{
        .user_id = st.text(0),
        .device_id = st.text(1),
        .ed25519_public = st.text(2),
        .curve25519_public = st.text(3),
        .ed25519_sealed = st.blob(4),
        .curve25519_sealed = st.blob(5),
        .device_keys_uploaded = st.boolean(6),
        .device_signature_uploaded = st.boolean(7),
        .created_at = st.int64(8),
    };
}

}  // namespace

result<std::optional<account_identity>> account_store::load() {
    return stmts_.query_one(
        "SELECT user_id, device_id, ed25519_public, curve25519_public, ed25519_sealed, "
        "curve25519_sealed, device_keys_uploaded, device_signature_uploaded, created_at "
        "FROM account WHERE id = 1",
        read_identity);
}

result<void> account_store::create(const account_identity& identity) {
    return with_transaction(stmts_.db(), durability::full, [&]() -> result<void> {
        auto existing = load();
        if (!existing) return existing.error();
        if (*existing) {
            const account_identity& old = **existing;
            return error{errc::invalid_argument,
                         "database " + stmts_.db().name() + " already holds the identity of " +
                             old.user_id + " device " + old.device_id + "; refusing to replace it"};
        }
        return stmts_.run(
            "INSERT INTO account (id, user_id, device_id, ed25519_public, curve25519_public, "
            "ed25519_sealed, curve25519_sealed, created_at) "
            "VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            identity.user_id, identity.device_id, identity.ed25519_public,
            identity.curve25519_public, identity.ed25519_sealed, identity.curve25519_sealed,
            identity.created_at);
    });
}

result<void> account_store::mark_device_keys_uploaded() {
    return set_flag("UPDATE account SET device_keys_uploaded = 1 WHERE id = 1",
                    "device keys uploaded");
}

result<void> account_store::mark_device_signature_uploaded() {
    return set_flag("UPDATE account SET device_signature_uploaded = 1 WHERE id = 1",
                    "device signature uploaded");
}

result<void> account_store::set_flag(std::string_view update, std::string_view what) {
    auto changed = stmts_.run_counted(update);
    if (!changed) return changed.error();
    if (*changed == 0) {
        return error{errc::invalid_argument, "database " + stmts_.db().name() +
                                                 " holds no identity to mark " + std::string(what)};
    }
    return {};
}

}  // namespace devlist::storage
