#include "storage/migrations.hpp"

#include <optional>
#include <string>
#include <utility>

namespace devlist::storage {

namespace {

// Turns foreign key enforcement off (outside any transaction, where the pragma takes effect)
// and back on when it goes, if it was on.
class foreign_keys_off {
  public:
    static result<foreign_keys_off> begin(connection& db) {
        auto st = db.prepare("PRAGMA foreign_keys");
        if (!st) return st.error();
        auto row = st->step();
        if (!row) return row.error();
        const bool was_on = *row && st->int64(0) != 0;
        st->reset();
        if (was_on) {
            if (auto r = db.exec("PRAGMA foreign_keys = OFF"); !r) return r.error();
        }
        return foreign_keys_off(db, was_on);
    }
    foreign_keys_off(foreign_keys_off&& other) noexcept
        : db_(std::exchange(other.db_, nullptr)), was_on_(other.was_on_) {}
    foreign_keys_off(const foreign_keys_off&) = delete;
    foreign_keys_off& operator=(const foreign_keys_off&) = delete;
    foreign_keys_off& operator=(foreign_keys_off&&) = delete;
    // Runs after the step's transaction ended (declared before it): the pragma is a no-op
    // inside one.
    ~foreign_keys_off() {
        if (db_ && was_on_) (void)db_->exec("PRAGMA foreign_keys = ON");
    }

  private:
    foreign_keys_off(connection& db, bool was_on) : db_(&db), was_on_(was_on) {}
    connection* db_;
    bool was_on_;
};

result<std::int64_t> count_foreign_key_violations(connection& db) {
    auto st = db.prepare("SELECT COUNT(*) FROM pragma_foreign_key_check");
    if (!st) return st.error();
    auto row = st->step();
    if (!row) return row.error();
    return *row ? st->int64(0) : 0;
}

}  // namespace

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
        std::optional<foreign_keys_off> keys_off;
        if (step.rebuilds_referenced_table) {
            auto off = foreign_keys_off::begin(db);
            if (!off) return fail(off.error());
            keys_off.emplace(std::move(*off));
        }
        // A schema change is rare and everything after it depends on it: make it durable.
        auto tx = transaction::begin(db, durability::full);
        if (!tx) return fail(tx.error());
        if (auto r = db.exec(step.sql); !r) return fail(r.error());
        if (keys_off) {
            auto broken = count_foreign_key_violations(db);
            if (!broken) return fail(broken.error());
            if (*broken != 0) {
                return fail(error{errc::storage_corrupt,
                                  std::to_string(*broken) + " rows break a foreign key after it"});
            }
        }
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
