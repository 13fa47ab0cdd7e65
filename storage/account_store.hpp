// The own account and device identity: created once, then only flags change.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <optional>
#include <string_view>

namespace devlist::storage {

class account_store {
  public:
    explicit account_store(connection& db) noexcept : stmts_(db) {}

    // nullopt before create().
    result<std::optional<account_identity>> load();

    // Stores the identity; the upload flags start false. Durability full: the private parts
    // must outlive any upload of the public ones. errc::invalid_argument if an identity exists
    // (new identity keys for the same device ID would break every peer's view of it).
    result<void> create(const account_identity& identity);

    // Durability normal: if the mark is lost, the same signed device keys are uploaded again,
    // which the server accepts.
    result<void> mark_device_keys_uploaded();
    // The own device's signature by the own self-signing key was uploaded. Durability normal
    // (same reason). own_cross_signing_store::store_pending() clears it.
    result<void> mark_device_signature_uploaded();

  private:
    result<void> set_flag(std::string_view update, std::string_view what);

    statement_cache stmts_;
};

}  // namespace devlist::storage
