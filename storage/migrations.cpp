#include "storage/migrations.hpp"

#include <string>

namespace devlist::storage {

result<int> schema_version(connection& db) {
    auto st = db.prepare("PRAGMA user_version");
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    return *row ? static_cast<int>(st->int64(0)) : 0;
}

result<int> migrate(connection& db, std::span<const migration> migrations) {
    const int latest = static_cast<int>(migrations.size());
    auto current = schema_version(db);
    if (!current) return current.error();
    if (*current > latest) {
        return error{errc::storage_schema_too_new,
                     "database " + db.name() + " has schema version " + std::to_string(*current) +
                         ", this devlistd understands up to " + std::to_string(latest) +
                         ": upgrade devlistd or use a backup"};
    }
    for (int version = *current + 1; version <= latest; ++version) {
        const migration& step = migrations[static_cast<std::size_t>(version - 1)];
        auto fail = [&](const error& e) {
            return error{e.code, "migration " + std::to_string(version) + " (" +
                                     std::string(step.description) + ") failed, the database " +
                                     "stays at schema version " + std::to_string(version - 1) +
                                     ": " + e.detail};
        };
        // A schema change is rare and everything after it depends on it: make it durable.
        auto tx = transaction::begin(db, durability::full);
        if (!tx) return fail(tx.error());
        if (auto r = db.exec(step.sql); !r) return fail(r.error());
        // user_version is part of the database header, so it commits (or rolls back) with the
        // script.
        if (auto r = db.exec("PRAGMA user_version = " + std::to_string(version)); !r) {
            return fail(r.error());
        }
        if (auto r = tx->commit(); !r) return fail(r.error());
    }
    return latest;
}

}  // namespace devlist::storage
