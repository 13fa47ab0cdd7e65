// Schema migrations: an ordered list of SQL scripts; migration i brings the database from
// version i to i + 1, where the version is SQLite's `PRAGMA user_version` (0 = empty).
#pragma once

#include "devlist/error.hpp"
#include "storage/database.hpp"

#include <span>
#include <string_view>

namespace devlist::storage {

struct migration {
    std::string_view description;  // for messages: "migration 2 (add room tags) failed"
    std::string_view sql;
    // The script rebuilds a table that other tables reference (create the new table, copy,
    // drop the old one, rename the new one): with foreign keys enforced, dropping the old table
    // would delete the referencing rows (ON DELETE CASCADE). Such a step runs with enforcement
    // off (it cannot change inside a transaction), and every foreign key is checked before the
    // step commits.
    bool rebuilds_referenced_table = false;
};

// The schema this build knows, oldest first.
std::span<const migration> schema_migrations() noexcept;

// The user_version of `db`.
result<int> schema_version(connection& db);

// Applies the migrations `db` lacks, each in its own transaction (durability full) that also
// sets user_version, so a failing migration leaves the database at the previous version.
// A database newer than `migrations` is refused with errc::storage_schema_too_new.
// Returns the resulting version. `migrations` is a parameter so tests can inject scripts.
result<int> migrate(connection& db, std::span<const migration> migrations = schema_migrations());

}  // namespace devlist::storage
