#include "storage/wal_checkpointer.hpp"

#include "storage/store.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

namespace devlist::storage {
namespace {

using testing::query_int;
using testing::temp_dir;

connection open_file(const std::filesystem::path& path) {
    auto db = connection::open(path);
    EXPECT_TRUE(db) << db.error().message();
    return std::move(*db);
}

// One committed transaction of `rows` rows of 1,000 bytes (about `rows` / 4 pages).
void write_rows(connection& db, int rows) {
    auto tx = transaction::begin(db, durability::normal);
    ASSERT_TRUE(tx) << tx.error().message();
    auto insert = db.prepare("INSERT INTO t (v) VALUES (?)");
    ASSERT_TRUE(insert) << insert.error().message();
    const std::string value(1000, 'x');
    for (int i = 0; i < rows; ++i) {
        insert->bind(1, value);
        auto step = insert->step();
        ASSERT_TRUE(step) << step.error().message();
        insert->reset();
    }
    ASSERT_TRUE(tx->commit());
}

std::uintmax_t wal_size(const std::filesystem::path& db) {
    std::error_code ec;
    auto size = std::filesystem::file_size(db.string() + "-wal", ec);
    return ec ? 0 : size;
}

// Waits (up to 30 s) until the thread has run `at_least` checkpoints; `of` is a checkpointer or
// a store.
template <class Owner>
checkpoint_counters wait_for_background(const Owner& of, std::uint64_t at_least) {
    const auto counters = [&of] {
        if constexpr (requires { of.counters(); }) {
            return of.counters();
        } else {
            return of.checkpoints();
        }
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    auto now = counters();
    while (now.background < at_least && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        now = counters();
    }
    return now;
}

TEST(WalCheckpointer, TheThreadCheckpointsOnceTheLogPassesTheThresholdAndTheWriterDoesNot) {
    temp_dir dir;
    const auto path = dir.file("a.db");
    auto db = open_file(path);
    ASSERT_TRUE(db.exec("CREATE TABLE t (v TEXT)"));
    checkpoint_options options;
    options.wake_after_pages = 50;
    auto checkpointer = wal_checkpointer::start(db, path, options);
    ASSERT_TRUE(checkpointer) << checkpointer.error().message();

    write_rows(db, 20);  // about 5 pages: below the threshold, nobody checkpoints
    EXPECT_EQ(checkpointer->counters().background, 0u);
    write_rows(db, 400);  // about 100 pages
    auto counters = wait_for_background(*checkpointer, 1);
    EXPECT_GE(counters.background, 1u);
    EXPECT_EQ(counters.inline_, 0u);
    EXPECT_EQ(counters.failed, 0u);

    // Checkpointed: the next writer starts the log over instead of growing it.
    const auto after_first = wal_size(path);
    for (int i = 0; i < 20; ++i) {
        write_rows(db, 400);
        wait_for_background(*checkpointer, counters.background + 1);
        counters = checkpointer->counters();
    }
    EXPECT_LE(wal_size(path), after_first * 2);
    EXPECT_EQ(query_int(db, "SELECT count(*) FROM t"), 20 + 400 * 21);
}

TEST(WalCheckpointer, AWriterFarAheadOfTheThreadCheckpointsItselfSoTheLogStaysBounded) {
    temp_dir dir;
    const auto path = dir.file("a.db");
    auto db = open_file(path);
    ASSERT_TRUE(db.exec("CREATE TABLE t (v TEXT)"));
    checkpoint_options options;
    options.wake_after_pages = 1 << 30;  // the thread is never woken
    options.inline_after_pages = 100;
    auto checkpointer = wal_checkpointer::start(db, path, options);
    ASSERT_TRUE(checkpointer) << checkpointer.error().message();

    for (int i = 0; i < 40; ++i)
        write_rows(db, 100);  // 1,000 pages in all
    const auto counters = checkpointer->counters();
    EXPECT_GE(counters.inline_, 3u);
    EXPECT_EQ(counters.background, 0u);
    // Without a checkpoint the log would hold every page written; with one every 100 pages it
    // never holds much more than 100 pages and a transaction.
    EXPECT_LT(wal_size(path), std::uintmax_t{4096} * 400);
}

TEST(WalCheckpointer, AfterItStopsTheWriterCheckpointsAutomaticallyAgain) {
    temp_dir dir;
    const auto path = dir.file("a.db");
    auto db = open_file(path);
    ASSERT_TRUE(db.exec("CREATE TABLE t (v TEXT)"));
    {
        checkpoint_options options;
        options.wake_after_pages = 1 << 30;
        options.inline_after_pages = 1 << 30;
        auto checkpointer = wal_checkpointer::start(db, path, options);
        ASSERT_TRUE(checkpointer) << checkpointer.error().message();
    }
    EXPECT_EQ(query_int(db, "PRAGMA wal_autocheckpoint"), 1000);
    // Writing 1,200 pages would leave them all in the log with no checkpoint at all.
    for (int i = 0; i < 12; ++i)
        write_rows(db, 400);
    EXPECT_LT(wal_size(path), std::uintmax_t{4096} * 1200);
}

TEST(WalCheckpointer, AStoreOnAFileCheckpointsOnItsThreadAndInMemoryHasNone) {
    temp_dir dir;
    store_options options;
    options.checkpoints.wake_after_pages = 20;
    auto s = store::open(dir.file("s.db"), options);
    ASSERT_TRUE(s) << s.error().message();
    auto& db = s->database();
    ASSERT_TRUE(db.exec("CREATE TABLE t (v TEXT)"));
    write_rows(db, 400);
    EXPECT_GE(wait_for_background(*s, 1).background, 1u);

    auto memory = store::open(":memory:");
    ASSERT_TRUE(memory) << memory.error().message();
    EXPECT_EQ(memory->checkpoints().background, 0u);
}

}  // namespace
}  // namespace devlist::storage
