// A process killed inside a transaction leaves the previous state; killed right after the
// commit, it leaves the new one. Children are synchronised with pipes and killed with SIGKILL.
#include "storage/store.hpp"
#include "test_support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include <string>

namespace devlist::storage {
namespace {

using testing::fork_child;
using testing::pipe_pair;
using testing::temp_dir;
using testing::wait_child;

// Large enough that SQLite spills pages of the open transaction into the WAL before COMMIT.
constexpr int big_batch_users = 20000;

sync_batch small_batch() {
    sync_batch batch;
    batch.at = 1000;
    batch.next_batch = "s1";
    batch.generation = 1;
    batch.tracked_users.push_back(
        {"@old:example.org", "example.org", {.encrypted_room = true}, true, 1});
    batch.outbox_events.push_back({0, 1000, "m.dummy", R"({"n":1})"});
    return batch;
}

sync_batch big_batch() {
    sync_batch batch;
    batch.at = 2000;
    batch.next_batch = "s2";
    batch.generation = 2;
    for (int i = 0; i < big_batch_users; ++i) {
        std::string user = "@user" + std::to_string(i) + ":example.org";
        batch.tracked_users.push_back({user, "example.org", {.encrypted_room = true}, true, 2});
        batch.memberships.push_back({"!room:example.org", user, membership::join});
        batch.outbox_events.push_back({0, 2000, "m.room_key", R"({"user":")" + user + "\"}"});
    }
    batch.untracked_users.push_back("@old:example.org");
    return batch;
}

struct commit_hook_context {
    sqlite3* db;
    std::int64_t changes_before;
    const pipe_pair* ready;
    const pipe_pair* hold;
};

// Runs inside every COMMIT, before it takes effect. Commits of less than the whole batch are let
// through, so an implementation that committed the batch piecemeal would leave part of it behind
// and fail the test; the commit that carries the whole batch signals the parent and blocks.
int signal_and_block_at_batch_commit(void* raw) {
    auto* context = static_cast<commit_hook_context*>(raw);
    if (sqlite3_total_changes64(context->db) - context->changes_before < big_batch_users) return 0;
    context->ready->send_byte();
    context->hold->wait_byte();  // until SIGKILL
    return 1;                    // never reached; would turn the commit into a rollback
}

class CrashSafetyTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = store::open(path_);
        ASSERT_TRUE(opened) << opened.error().message();
        auto applied = opened->sync().apply_sync_batch(small_batch());
        ASSERT_TRUE(applied) << applied.error().message();
    }

    // Forks a child that opens the store and runs `body`; returns once the child signalled
    // `ready_`, then kills it.
    void run_and_kill(const std::function<int(store&)>& body) {
        pid_t child = fork_child([&] {
            ready_.close_read();
            hold_.close_write();
            auto opened = store::open(path_);
            if (!opened) return 10;
            return body(*opened);
        });
        ready_.close_write();
        hold_.close_read();
        ASSERT_TRUE(ready_.wait_byte()) << "the child ended before signalling";
        ASSERT_EQ(::kill(child, SIGKILL), 0);
        ASSERT_EQ(wait_child(child), -SIGKILL);
    }

    store reopen() {
        auto opened = store::open(path_);
        EXPECT_TRUE(opened) << opened.error().message();
        return std::move(*opened);
    }

    temp_dir dir_;
    std::filesystem::path path_ = dir_.file("crash.db");
    pipe_pair ready_;
    pipe_pair hold_;
};

TEST_F(CrashSafetyTest, KilledInsideTheTransactionLeavesThePreviousState) {
    run_and_kill([&](store& s) {
        sqlite3* handle = s.database().native_handle();
        commit_hook_context context{handle, sqlite3_total_changes64(handle), &ready_, &hold_};
        sqlite3_commit_hook(handle, &signal_and_block_at_batch_commit, &context);
        (void)s.sync().apply_sync_batch(big_batch());
        return 20;  // not reached
    });

    store s = reopen();
    EXPECT_EQ(testing::query_text(s.database(), "PRAGMA integrity_check"), "ok");
    auto state = s.sync().load_sync_state();
    ASSERT_TRUE(state);
    EXPECT_EQ(state->next_batch, "s1");
    EXPECT_EQ(state->generation, 1);
    auto users = s.tracking().load_tracked_users();
    ASSERT_TRUE(users);
    ASSERT_EQ(users->size(), 1u);
    EXPECT_EQ(users->front().user_id, "@old:example.org");
    auto members = s.sync().load_memberships();
    ASSERT_TRUE(members);
    EXPECT_TRUE(members->empty());
    auto last = s.outbox().last_cursor();
    ASSERT_TRUE(last);
    EXPECT_EQ(*last, 1);
}

TEST_F(CrashSafetyTest, KilledRightAfterTheCommitKeepsTheNewState) {
    run_and_kill([&](store& s) {
        auto applied = s.sync().apply_sync_batch(big_batch());
        if (!applied) return 30;
        ready_.send_byte();
        hold_.wait_byte();  // until SIGKILL
        return 31;
    });

    store s = reopen();
    auto state = s.sync().load_sync_state();
    ASSERT_TRUE(state);
    EXPECT_EQ(state->next_batch, "s2");
    EXPECT_EQ(state->generation, 2);
    auto users = s.tracking().load_tracked_users();
    ASSERT_TRUE(users);
    EXPECT_EQ(users->size(), static_cast<std::size_t>(big_batch_users));
    auto old = s.tracking().find("@old:example.org");
    ASSERT_TRUE(old);
    EXPECT_FALSE(*old);
    auto last = s.outbox().last_cursor();
    ASSERT_TRUE(last);
    // The small batch's event, the big batch's events, and the user_untracked event.
    EXPECT_EQ(*last, 1 + big_batch_users + 1);
}

}  // namespace
}  // namespace devlist::storage
