#include "storage/database.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::query_int;
using testing::query_text;
using testing::temp_dir;

connection open_memory() {
    auto db = connection::open(":memory:");
    EXPECT_TRUE(db) << db.error().message();
    return std::move(*db);
}

TEST(Connection, OpensFileWithWalForeignKeysNormalSyncAndBusyTimeout) {
    temp_dir dir;
    auto db = connection::open(dir.file("a.db"));
    ASSERT_TRUE(db) << db.error().message();
    EXPECT_EQ(query_text(*db, "PRAGMA journal_mode"), "wal");
    EXPECT_EQ(query_int(*db, "PRAGMA foreign_keys"), 1);
    EXPECT_EQ(query_int(*db, "PRAGMA synchronous"), 1);  // NORMAL
    EXPECT_EQ(query_int(*db, "PRAGMA busy_timeout"), 5000);
}

TEST(Connection, AppliesConfiguredBusyTimeoutAndDefaultDurability) {
    temp_dir dir;
    open_options options;
    options.busy_timeout = std::chrono::milliseconds(250);
    options.default_durability = durability::full;
    auto db = connection::open(dir.file("a.db"), options);
    ASSERT_TRUE(db) << db.error().message();
    EXPECT_EQ(query_int(*db, "PRAGMA busy_timeout"), 250);
    EXPECT_EQ(query_int(*db, "PRAGMA synchronous"), 2);  // FULL
}

TEST(Connection, OpensInMemoryDatabase) {
    connection db = open_memory();
    EXPECT_EQ(db.name(), ":memory:");
    EXPECT_EQ(query_int(db, "PRAGMA foreign_keys"), 1);
}

TEST(Connection, OpenFailureNamesThePath) {
    temp_dir dir;
    auto missing = dir.file("no-such-dir") / "a.db";
    auto db = connection::open(missing);
    ASSERT_FALSE(db);
    EXPECT_EQ(db.error(), errc::storage_error);
    EXPECT_NE(db.error().detail.find(missing.string()), std::string::npos) << db.error().detail;
}

TEST(Connection, ExecErrorCarriesStatementAndSqliteMessage) {
    connection db = open_memory();
    auto r = db.exec("CREATE TABL t (x)");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_NE(r.error().detail.find("CREATE TABL t"), std::string::npos) << r.error().detail;
    EXPECT_NE(r.error().detail.find("syntax error"), std::string::npos) << r.error().detail;
}

TEST(Connection, PrepareErrorCarriesSqliteMessage) {
    connection db = open_memory();
    auto st = db.prepare("SELECT * FROM missing_table");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().detail.find("no such table: missing_table"), std::string::npos)
        << st.error().detail;
}

TEST(Statement, BindsAndReadsEveryType) {
    connection db = open_memory();
    ASSERT_TRUE(
        db.exec("CREATE TABLE t (i INTEGER, s TEXT, b BLOB, n TEXT, o INTEGER, f INTEGER)"));
    auto insert = db.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    ASSERT_TRUE(insert) << insert.error().message();
    const std::vector<std::uint8_t> blob{0, 1, 2, 0, 255};
    std::optional<std::int64_t> absent;
    ASSERT_TRUE(insert
                    ->bind_all(std::int64_t{-7}, "text", blob, absent,
                               std::optional<std::int64_t>(42), true)
                    .run());

    auto select = db.prepare("SELECT i, s, b, n, o, f FROM t");
    ASSERT_TRUE(select);
    auto row = select->step();
    ASSERT_TRUE(row && *row);
    EXPECT_EQ(select->int64(0), -7);
    EXPECT_EQ(select->text(1), "text");
    EXPECT_EQ(select->blob(2), blob);
    EXPECT_TRUE(select->is_null(3));
    EXPECT_EQ(select->optional_text(3), std::nullopt);
    EXPECT_EQ(select->optional_int64(4), 42);
    EXPECT_TRUE(select->boolean(5));
    auto done = select->step();
    ASSERT_TRUE(done);
    EXPECT_FALSE(*done);
}

TEST(Statement, EmptyBlobIsNotNull) {
    connection db = open_memory();
    auto st = db.prepare("SELECT typeof(?1)");
    ASSERT_TRUE(st);
    st->bind(1, std::vector<std::uint8_t>{});
    ASSERT_TRUE(st->step());
    EXPECT_EQ(st->text(0), "blob");
}

TEST(Statement, TooLargeUnsignedIsReportedByStep) {
    connection db = open_memory();
    auto st = db.prepare("SELECT ?1");
    ASSERT_TRUE(st);
    auto r = st->bind(1, std::uint64_t{1} << 63).step();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_NE(r.error().detail.find("binding parameter 1"), std::string::npos);
}

TEST(Statement, BindErrorIsReportedByStepWithContext) {
    connection db = open_memory();
    auto st = db.prepare("SELECT ?1");
    ASSERT_TRUE(st);
    auto r = st->bind(5, std::int64_t{1}).step();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_NE(r.error().detail.find("binding parameter 5 of 'SELECT ?1'"), std::string::npos)
        << r.error().detail;
    // The error is reported once; the statement is usable again.
    st->reset();
    auto again = st->bind(1, std::int64_t{3}).step();
    ASSERT_TRUE(again && *again);
    EXPECT_EQ(st->int64(0), 3);
}

TEST(Statement, ConstraintViolationNamesStatementAndConstraint) {
    connection db = open_memory();
    ASSERT_TRUE(db.exec("CREATE TABLE t (x INTEGER NOT NULL)"));
    auto st = db.prepare("INSERT INTO t VALUES (?1)");
    ASSERT_TRUE(st);
    auto r = st->bind(1, std::nullopt).run();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_NE(r.error().detail.find("NOT NULL constraint failed: t.x"), std::string::npos)
        << r.error().detail;
    EXPECT_NE(r.error().detail.find("INSERT INTO t"), std::string::npos) << r.error().detail;
}

TEST(Statement, ResetAllowsReuseWithNewBindings) {
    connection db = open_memory();
    auto st = db.prepare("SELECT ?1 + 1");
    ASSERT_TRUE(st);
    for (std::int64_t i : {1, 10, 100}) {
        auto row = st->bind(1, i).step();
        ASSERT_TRUE(row && *row);
        EXPECT_EQ(st->int64(0), i + 1);
        st->reset();
    }
}

class TransactionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = connection::open(dir_.file("t.db"));
        ASSERT_TRUE(opened) << opened.error().message();
        db_.emplace(std::move(*opened));
        ASSERT_TRUE(db_->exec("CREATE TABLE t (x INTEGER)"));
    }
    std::int64_t rows() { return query_int(*db_, "SELECT COUNT(*) FROM t"); }

    temp_dir dir_;
    std::optional<connection> db_;
};

TEST_F(TransactionTest, RollsBackUnlessCommitted) {
    {
        auto tx = transaction::begin(*db_, durability::normal);
        ASSERT_TRUE(tx) << tx.error().message();
        ASSERT_TRUE(db_->exec("INSERT INTO t VALUES (1)"));
        EXPECT_TRUE(db_->in_transaction());
    }
    EXPECT_FALSE(db_->in_transaction());
    EXPECT_EQ(rows(), 0);
}

TEST_F(TransactionTest, CommitKeepsWrites) {
    auto tx = transaction::begin(*db_, durability::normal);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db_->exec("INSERT INTO t VALUES (1)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_FALSE(db_->in_transaction());
    EXPECT_EQ(rows(), 1);
}

TEST_F(TransactionTest, FullDurabilityAppliesSynchronousFullInsideAndRestoresAfterCommit) {
    EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 1);
    auto tx = transaction::begin(*db_, durability::full);
    ASSERT_TRUE(tx) << tx.error().message();
    EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 2);
    ASSERT_TRUE(db_->exec("INSERT INTO t VALUES (1)"));
    ASSERT_TRUE(tx->commit());
    EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 1);
}

TEST_F(TransactionTest, FullDurabilityRestoresNormalAfterRollback) {
    {
        auto tx = transaction::begin(*db_, durability::full);
        ASSERT_TRUE(tx);
        EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 2);
    }
    EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 1);
}

TEST_F(TransactionTest, NormalDurabilityKeepsSynchronousNormal) {
    auto tx = transaction::begin(*db_, durability::normal);
    ASSERT_TRUE(tx);
    EXPECT_EQ(query_int(*db_, "PRAGMA synchronous"), 1);
    ASSERT_TRUE(tx->commit());
}

TEST_F(TransactionTest, FullCommitIsOrderedAfterPragmaFull) {
    testing::synchronous_tracer tracer(*db_);
    auto tx = transaction::begin(*db_, durability::full);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(tx->commit());
    EXPECT_EQ(tracer.levels_of("COMMIT"), std::vector<std::string>{"FULL"});
    EXPECT_EQ(tracer.level(), "NORMAL");
}

TEST_F(TransactionTest, WithTransactionCommitsOnSuccessAndRollsBackOnError) {
    auto ok = with_transaction(*db_, durability::normal, [&]() -> result<int> {
        if (auto r = db_->exec("INSERT INTO t VALUES (1)"); !r) return r.error();
        return 7;
    });
    ASSERT_TRUE(ok);
    EXPECT_EQ(*ok, 7);
    auto failed = with_transaction(*db_, durability::normal, [&]() -> result<void> {
        if (auto r = db_->exec("INSERT INTO t VALUES (2)"); !r) return r;
        return error{errc::invalid_argument, "stop"};
    });
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), errc::invalid_argument);
    EXPECT_EQ(rows(), 1);
}

TEST_F(TransactionTest, SecondWriterGetsStorageBusy) {
    open_options impatient;
    impatient.busy_timeout = std::chrono::milliseconds(0);
    auto other = connection::open(dir_.file("t.db"), impatient);
    ASSERT_TRUE(other) << other.error().message();

    auto held = transaction::begin(*db_, durability::normal);
    ASSERT_TRUE(held);
    auto refused = transaction::begin(*other, durability::full);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error(), errc::storage_busy) << refused.error().message();
    EXPECT_NE(refused.error().detail.find("t.db"), std::string::npos) << refused.error().detail;
    // The refused begin left the other connection's level as it was.
    EXPECT_EQ(query_int(*other, "PRAGMA synchronous"), 1);
    ASSERT_TRUE(held->commit());
    auto now_free = transaction::begin(*other, durability::normal);
    EXPECT_TRUE(now_free) << now_free.error().message();
}

TEST_F(TransactionTest, ReadTransactionReadsOneSnapshotAndEndsWhenItGoes) {
    auto other = connection::open(dir_.file("t.db"));
    ASSERT_TRUE(other) << other.error().message();
    {
        auto snapshot = read_transaction::begin(*db_);
        ASSERT_TRUE(snapshot) << snapshot.error().message();
        EXPECT_TRUE(db_->in_transaction());
        EXPECT_EQ(rows(), 0);
        // A commit of another connection in between is not seen until the snapshot ends...
        ASSERT_TRUE(other->exec("INSERT INTO t VALUES (1)"));
        EXPECT_EQ(rows(), 0);
    }
    // ... and nothing of the snapshot stays behind.
    EXPECT_FALSE(db_->in_transaction());
    EXPECT_EQ(rows(), 1);
    auto tx = transaction::begin(*db_, durability::normal);
    EXPECT_TRUE(tx) << tx.error().message();
}

TEST_F(TransactionTest, ReadTransactionInsideATransactionLeavesItAlone) {
    auto tx = transaction::begin(*db_, durability::normal);
    ASSERT_TRUE(tx);
    ASSERT_TRUE(db_->exec("INSERT INTO t VALUES (1)"));
    {
        auto snapshot = read_transaction::begin(*db_);
        ASSERT_TRUE(snapshot) << snapshot.error().message();
        EXPECT_EQ(rows(), 1);
    }
    EXPECT_TRUE(db_->in_transaction());
    ASSERT_TRUE(tx->commit());
    EXPECT_EQ(rows(), 1);
}

}  // namespace
}  // namespace devlist::storage
