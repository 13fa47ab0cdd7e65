#include "storage/migrations.hpp"

#include "storage/store.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <optional>
#include <string>

namespace devlist::storage {
namespace {

using testing::query_int;
using testing::temp_dir;

class MigrationsTest : public ::testing::Test {
  protected:
    connection open_db() {
        auto db = connection::open(path_);
        EXPECT_TRUE(db) << db.error().message();
        return std::move(*db);
    }
    bool has_table(connection& db, const std::string& name) {
        return query_int(db,
                         "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '" +
                             name + "'") == 1;
    }

    // Rows every schema version can hold: two tracked users, their devices, a master key.
    static constexpr const char* two_tracked_users =
        "INSERT INTO tracked_users VALUES ('@b:x', 'x', 2, 1, 7, NULL), "
        "('@a:x', 'x', 3, 0, 2, 5000);"
        "INSERT INTO devices (user_id, device_id, ed25519, curve25519, signed_json, first_seen, "
        "last_seen) VALUES ('@a:x', 'D1', 'e1', 'c1', '{}', 1, 1), "
        "('@b:x', 'D2', 'e2', 'c2', '{}', 1, 1);"
        "INSERT INTO cross_signing_keys VALUES ('@a:x', 'master', 'k', '{}', 1, 1, 1);";

    temp_dir dir_;
    std::filesystem::path path_ = dir_.file("m.db");
};

TEST_F(MigrationsTest, MigratesEmptyDatabaseToLatest) {
    connection db = open_db();
    auto version = schema_version(db);
    ASSERT_TRUE(version);
    EXPECT_EQ(*version, 0);

    auto migrated = migrate(db);
    ASSERT_TRUE(migrated) << migrated.error().message();
    const int latest = static_cast<int>(schema_migrations().size());
    EXPECT_EQ(*migrated, latest);
    EXPECT_EQ(query_int(db, "PRAGMA user_version"), latest);
    for (const char* table : {"account", "sync_state", "server_key_state", "rooms", "memberships",
                              "tracked_users", "server_backoff", "devices", "cross_signing_keys",
                              "security_events", "key_id_counter", "one_time_keys", "fallback_keys",
                              "own_cross_signing_keys", "outbox", "outbox_consumers"}) {
        EXPECT_TRUE(has_table(db, table)) << table;
    }
    // Every table of ours is STRICT (sqlite_sequence is SQLite's own).
    EXPECT_EQ(query_int(db,
                        "SELECT COUNT(*) FROM pragma_table_list "
                        "WHERE schema = 'main' AND type = 'table' AND strict = 0 "
                        "AND name NOT LIKE 'sqlite_%'"),
              0);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
}

TEST_F(MigrationsTest, ReopeningIsANoOp) {
    {
        connection db = open_db();
        ASSERT_TRUE(migrate(db));
        ASSERT_TRUE(db.exec("UPDATE sync_state SET next_batch = 's42'"));
    }
    connection db = open_db();
    auto migrated = migrate(db);
    ASSERT_TRUE(migrated) << migrated.error().message();
    EXPECT_EQ(*migrated, static_cast<int>(schema_migrations().size()));
    EXPECT_EQ(testing::query_text(db, "SELECT next_batch FROM sync_state"), "s42");
    // The seeded rows were not inserted twice.
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM outbox_consumers"), 1);
}

TEST_F(MigrationsTest, RefusesDatabaseNewerThanThisBuild) {
    const int latest = static_cast<int>(schema_migrations().size());
    {
        connection db = open_db();
        ASSERT_TRUE(migrate(db));
        ASSERT_TRUE(db.exec("PRAGMA user_version = " + std::to_string(latest + 1)));
    }
    connection db = open_db();
    auto migrated = migrate(db);
    ASSERT_FALSE(migrated);
    EXPECT_EQ(migrated.error(), errc::storage_schema_too_new);
    EXPECT_EQ(migrated.error().detail,
              "database " + db.name() + " has schema version " + std::to_string(latest + 1) +
                  ", this devlistd understands up to " + std::to_string(latest) +
                  ": upgrade devlistd or use a backup");
    EXPECT_EQ(query_int(db, "PRAGMA user_version"), latest + 1);
}

TEST_F(MigrationsTest, StoreOpenRefusesNewerDatabase) {
    {
        connection db = open_db();
        ASSERT_TRUE(db.exec("PRAGMA user_version = 99"));
    }
    auto opened = store::open(path_);
    ASSERT_FALSE(opened);
    EXPECT_EQ(opened.error(), errc::storage_schema_too_new);
    EXPECT_NE(opened.error().detail.find("has schema version 99"), std::string::npos);
}

TEST_F(MigrationsTest, FailingMigrationLeavesThePreviousVersion) {
    const std::array<migration, 2> good{{
        {"first", "CREATE TABLE t1 (x INTEGER) STRICT;"},
        {"second", "CREATE TABLE t2 (x INTEGER) STRICT;"},
    }};
    const std::array<migration, 3> bad{{
        good[0],
        good[1],
        {"third",
         "CREATE TABLE t3 (x INTEGER) STRICT; INSERT INTO t2 VALUES (1);"
         "INSERT INTO no_such_table VALUES (1);"},
    }};
    connection db = open_db();
    ASSERT_TRUE(migrate(db, std::span(good).first(1)));
    auto failed = migrate(db, bad);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), errc::storage_error);
    EXPECT_NE(failed.error().detail.find("migration 3 (third) failed"), std::string::npos)
        << failed.error().detail;
    EXPECT_NE(failed.error().detail.find("stays at schema version 2"), std::string::npos);
    EXPECT_NE(failed.error().detail.find("no such table: no_such_table"), std::string::npos);
    // Migration 2 committed on its own; nothing of migration 3 remains.
    EXPECT_EQ(query_int(db, "PRAGMA user_version"), 2);
    EXPECT_TRUE(has_table(db, "t2"));
    EXPECT_FALSE(has_table(db, "t3"));
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM t2"), 0);
    EXPECT_FALSE(db.in_transaction());
}

TEST_F(MigrationsTest, AppliesOnlyTheMissingMigrations) {
    const std::array<migration, 2> list{{
        {"first", "CREATE TABLE t1 (x INTEGER) STRICT;"},  // would fail if run twice
        {"second", "CREATE TABLE t2 (x INTEGER) STRICT;"},
    }};
    connection db = open_db();
    ASSERT_TRUE(migrate(db, std::span(list).first(1)));
    auto migrated = migrate(db, list);
    ASSERT_TRUE(migrated) << migrated.error().message();
    EXPECT_EQ(*migrated, 2);
}

// A store made by a build before migration 2 (tracked_users with a rowid and an index of the
// outdated) keeps its tracked users, their devices and cross-signing keys, and every foreign
// key, when it is rebuilt.
TEST_F(MigrationsTest, Version1StoreKeepsTrackedUsersAndTheirDevicesThroughMigration2) {
    connection db = open_db();
    ASSERT_TRUE(migrate(db, schema_migrations().first(1)));
    ASSERT_TRUE(db.exec(two_tracked_users));

    auto migrated = migrate(db);
    ASSERT_TRUE(migrated) << migrated.error().message();
    EXPECT_EQ(*migrated, static_cast<int>(schema_migrations().size()));
    EXPECT_EQ(query_int(db,
                        "SELECT COUNT(*) FROM pragma_table_list "
                        "WHERE name = 'tracked_users' AND wr = 1 AND strict = 1"),
              1);
    EXPECT_EQ(query_int(db,
                        "SELECT COUNT(*) FROM sqlite_schema "
                        "WHERE name = 'tracked_users_outdated' OR name = 'tracked_users_v2'"),
              0);
    EXPECT_EQ(testing::query_text(db,
                                  "SELECT group_concat(user_id || ' ' || server_name || ' ' || "
                                  "reasons || ' ' || outdated || ' ' || generation || ' ' || "
                                  "ifnull(last_refreshed_at, '-'), ', ') "
                                  "FROM (SELECT * FROM tracked_users ORDER BY user_id)"),
              "@a:x x 3 0 2 5000, @b:x x 2 1 7 -");
    // Dropping the old table took no device or key with it, and enforcement is back on.
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM devices"), 2);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM cross_signing_keys"), 1);
    EXPECT_EQ(query_int(db, "PRAGMA foreign_keys"), 1);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    EXPECT_FALSE(
        db.exec("INSERT INTO devices (user_id, device_id, ed25519, curve25519, signed_json, "
                "first_seen, last_seen) VALUES ('@nobody:x', 'D', 'e', 'c', '{}', 1, 1)"));
    // The children now refer to the new table: untracking still takes the devices along.
    ASSERT_TRUE(db.exec("DELETE FROM tracked_users WHERE user_id = '@a:x'"));
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM devices"), 1);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM cross_signing_keys"), 0);
}

// A store made before migration 3 keeps every tracked user, device and key; its users have no
// answer digest yet (their next answer is compared with the stored devices, and the digest is
// written then), and a digest must be 32 bytes.
TEST_F(MigrationsTest, Version2StoreKeepsItsDataThroughMigration3WithoutDigests) {
    connection db = open_db();
    ASSERT_TRUE(migrate(db, schema_migrations().first(2)));
    ASSERT_TRUE(db.exec(two_tracked_users));

    auto migrated = migrate(db);
    ASSERT_TRUE(migrated) << migrated.error().message();
    EXPECT_EQ(*migrated, 3);
    EXPECT_EQ(testing::query_text(db,
                                  "SELECT group_concat(user_id || ' ' || server_name || ' ' || "
                                  "reasons || ' ' || outdated || ' ' || generation || ' ' || "
                                  "ifnull(last_refreshed_at, '-') || ' ' || "
                                  "ifnull(answer_digest, '-') || ' ' || "
                                  "ifnull(answer_seen_at, '-'), ', ') "
                                  "FROM (SELECT * FROM tracked_users ORDER BY user_id)"),
              "@a:x x 3 0 2 5000 - -, @b:x x 2 1 7 - - -");
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM devices"), 2);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM cross_signing_keys"), 1);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM pragma_foreign_key_check"), 0);
    EXPECT_EQ(query_int(db,
                        "SELECT COUNT(*) FROM pragma_table_list "
                        "WHERE name = 'tracked_users' AND wr = 1 AND strict = 1"),
              1);
    EXPECT_TRUE(
        db.exec("UPDATE tracked_users SET answer_digest = zeroblob(32), "
                "answer_seen_at = 5000 WHERE user_id = '@a:x'"));
    EXPECT_FALSE(
        db.exec("UPDATE tracked_users SET answer_digest = zeroblob(31) "
                "WHERE user_id = '@a:x'"));
    EXPECT_FALSE(db.exec("UPDATE tracked_users SET answer_digest = 'text' WHERE user_id = '@a:x'"));
}

TEST_F(MigrationsTest, RebuildThatBreaksAForeignKeyIsRolledBack) {
    const std::array<migration, 2> list{{
        {"parent and child",
         "CREATE TABLE p (id TEXT PRIMARY KEY) STRICT;"
         "CREATE TABLE c (id TEXT REFERENCES p (id) ON DELETE CASCADE) STRICT;"
         "INSERT INTO p VALUES ('a'), ('b'); INSERT INTO c VALUES ('a'), ('b');"},
        {"rebuild p, losing a row",
         "CREATE TABLE p2 (id TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;"
         "INSERT INTO p2 SELECT id FROM p WHERE id = 'a';"
         "DROP TABLE p; ALTER TABLE p2 RENAME TO p;",
         true},
    }};
    connection db = open_db();
    auto failed = migrate(db, list);
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().detail.find("migration 2 (rebuild p, losing a row) failed"),
              std::string::npos)
        << failed.error().detail;
    EXPECT_NE(failed.error().detail.find("break a foreign key"), std::string::npos);
    EXPECT_EQ(query_int(db, "PRAGMA user_version"), 1);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM p"), 2);
    EXPECT_EQ(query_int(db, "SELECT COUNT(*) FROM c"), 2);
    EXPECT_EQ(query_int(db, "PRAGMA foreign_keys"), 1);
    EXPECT_FALSE(db.in_transaction());
}

TEST_F(MigrationsTest, SchemaEnforcesTypesAndEnumerations) {
    connection db = open_db();
    ASSERT_TRUE(migrate(db));
    // STRICT: no text in an INTEGER column.
    EXPECT_FALSE(db.exec("INSERT INTO tracked_users VALUES ('@a:b', 'b', 1, 1, 'x', NULL)"));
    // CHECK: reasons must name at least one reason.
    EXPECT_FALSE(db.exec("INSERT INTO tracked_users VALUES ('@a:b', 'b', 0, 1, 0, NULL)"));
    ASSERT_TRUE(db.exec("INSERT INTO rooms (room_id) VALUES ('!r:b')"));
    EXPECT_FALSE(db.exec("INSERT INTO memberships VALUES ('!r:b', '@a:b', 'leave')"));
    // Foreign keys: no device without a tracked user.
    EXPECT_FALSE(
        db.exec("INSERT INTO devices (user_id, device_id, ed25519, curve25519, "
                "signed_json, first_seen, last_seen) "
                "VALUES ('@x:b', 'D', 'e', 'c', '{}', 1, 1)"));
    EXPECT_FALSE(db.exec("INSERT INTO outbox (at, type, payload) VALUES (1, 't', 'not json')"));
}

}  // namespace
}  // namespace devlist::storage
