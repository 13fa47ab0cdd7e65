#include "storage/sync_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::must;

class SyncStoreTest : public testing::StoreTest {};

TEST_F(SyncStoreTest, FreshStoreHasNoTokenAndNoRooms) {
    sync_state state = must(db().sync().load_sync_state());
    EXPECT_EQ(state.next_batch, std::nullopt);
    EXPECT_EQ(state.filter_id, std::nullopt);
    EXPECT_EQ(state.generation, 0);
    EXPECT_TRUE(must(db().sync().load_rooms()).empty());
    EXPECT_TRUE(must(db().tracking().load_tracked_users()).empty());
    server_key_state keys = must(db().sync().load_server_key_state());
    EXPECT_TRUE(keys.one_time_key_counts.empty());
    EXPECT_EQ(keys.unused_fallback_key_types, std::nullopt);
}

TEST_F(SyncStoreTest, AppliesEveryPartOfABatch) {
    sync_batch batch;
    batch.at = 100;
    batch.next_batch = "s1";
    batch.generation = 7;
    batch.encrypted_rooms.push_back({"!e:a.org", "m.megolm.v1.aes-sha2"});
    batch.memberships.push_back({"!e:a.org", "@alice:a.org", membership::join});
    batch.memberships.push_back({"!e:a.org", "@bob:b.org", membership::invite});
    batch.tracked_users.push_back(
        {"@me:a.org", "a.org", {.own = true, .explicit_request = true}, true, 7});
    batch.tracked_users.push_back({"@alice:a.org", "a.org", {.encrypted_room = true}, false, 3});
    batch.one_time_key_counts = std::map<std::string, std::int64_t>{{"signed_curve25519", 12}};
    batch.unused_fallback_key_types = std::vector<std::string>{"signed_curve25519"};
    batch.outbox_events.push_back({0, 100, "m.room_key_request", R"({"a":1})"});
    batch.outbox_events.push_back({0, 100, "m.dummy", "{}"});
    must(db().sync().apply_sync_batch(batch));

    sync_state state = must(db().sync().load_sync_state());
    EXPECT_EQ(state.next_batch, "s1");
    EXPECT_EQ(state.generation, 7);

    auto rooms = must(db().sync().load_rooms());
    ASSERT_EQ(rooms.size(), 1u);
    EXPECT_EQ(rooms[0].room_id, "!e:a.org");
    EXPECT_TRUE(rooms[0].encrypted);
    EXPECT_EQ(rooms[0].algorithm, "m.megolm.v1.aes-sha2");

    auto members = must(db().sync().load_memberships());
    ASSERT_EQ(members.size(), 2u);
    EXPECT_EQ(members[0].user_id, "@alice:a.org");
    EXPECT_EQ(members[0].state, membership::join);
    EXPECT_EQ(members[1].user_id, "@bob:b.org");
    EXPECT_EQ(members[1].state, membership::invite);

    auto users = must(db().tracking().load_tracked_users());
    ASSERT_EQ(users.size(), 2u);
    EXPECT_EQ(users[0].user_id, "@alice:a.org");
    EXPECT_EQ(users[0].reasons, (tracking_reasons{.encrypted_room = true}));
    EXPECT_FALSE(users[0].outdated);
    EXPECT_EQ(users[0].generation, 3);
    EXPECT_EQ(users[1].user_id, "@me:a.org");
    EXPECT_EQ(users[1].server_name, "a.org");
    EXPECT_EQ(users[1].reasons, (tracking_reasons{.own = true, .explicit_request = true}));
    EXPECT_TRUE(users[1].outdated);
    EXPECT_EQ(users[1].last_refreshed_at, std::nullopt);

    server_key_state keys = must(db().sync().load_server_key_state());
    EXPECT_EQ(keys.one_time_key_counts,
              (std::map<std::string, std::int64_t>{{"signed_curve25519", 12}}));
    EXPECT_EQ(keys.unused_fallback_key_types, std::vector<std::string>{"signed_curve25519"});

    auto events = outbox_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, "m.room_key_request");
    EXPECT_EQ(events[0].payload_json, R"({"a":1})");
    EXPECT_EQ(events[0].at, 100);
    EXPECT_EQ(events[1].type, "m.dummy");
    EXPECT_LT(events[0].cursor, events[1].cursor);
}

TEST_F(SyncStoreTest, BatchWithoutTokenKeepsTheStoredToken) {
    sync_batch first;
    first.next_batch = "s1";
    must(db().sync().apply_sync_batch(first));
    sync_batch explicit_track;  // e.g. a local client asked to track a user
    explicit_track.tracked_users.push_back(
        {"@x:b.org", "b.org", {.explicit_request = true}, true, 0});
    must(db().sync().apply_sync_batch(explicit_track));
    EXPECT_EQ(must(db().sync().load_sync_state()).next_batch, "s1");
    EXPECT_EQ(must(db().tracking().load_tracked_users()).size(), 1u);
}

TEST_F(SyncStoreTest, MembershipChangesUpsertAndRemove) {
    sync_batch join;
    join.memberships.push_back({"!r:a.org", "@u:a.org", membership::invite});
    must(db().sync().apply_sync_batch(join));
    // The member arrived before any encryption state: the room exists, unencrypted.
    auto rooms = must(db().sync().load_rooms());
    ASSERT_EQ(rooms.size(), 1u);
    EXPECT_FALSE(rooms[0].encrypted);
    EXPECT_EQ(rooms[0].algorithm, std::nullopt);

    sync_batch joined;
    joined.memberships.push_back({"!r:a.org", "@u:a.org", membership::join});
    must(db().sync().apply_sync_batch(joined));
    auto members = must(db().sync().load_memberships());
    ASSERT_EQ(members.size(), 1u);
    EXPECT_EQ(members[0].state, membership::join);

    sync_batch left;
    left.memberships.push_back({"!r:a.org", "@u:a.org", std::nullopt});
    must(db().sync().apply_sync_batch(left));
    EXPECT_TRUE(must(db().sync().load_memberships()).empty());
}

TEST_F(SyncStoreTest, TrackedUserUpsertOverwritesStateAndKeepsLastRefresh) {
    track("@a:b.org", 1);
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D")})));
    ASSERT_EQ(must(db().tracking().find("@a:b.org"))->last_refreshed_at, 5000);

    sync_batch changed;
    changed.tracked_users.push_back(
        {"@a:b.org", "b.org", {.encrypted_room = true, .explicit_request = true}, true, 4});
    must(db().sync().apply_sync_batch(changed));
    auto user = must(db().tracking().find("@a:b.org"));
    ASSERT_TRUE(user);
    EXPECT_TRUE(user->outdated);
    EXPECT_EQ(user->generation, 4);
    EXPECT_EQ(user->reasons, (tracking_reasons{.encrypted_room = true, .explicit_request = true}));
    EXPECT_EQ(user->last_refreshed_at, 5000);
    // An upsert, not a delete + insert: the devices are still there.
    EXPECT_EQ(must(db().devices().devices_of("@a:b.org")).size(), 1u);
}

TEST_F(SyncStoreTest, OutdatedMarkWritesOnlyTheFlagAndTheGeneration) {
    sync_batch track_both;
    track_both.tracked_users.push_back(
        {"@a:b.org", "b.org", {.encrypted_room = true, .explicit_request = true}, true, 1});
    must(db().sync().apply_sync_batch(track_both));
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D")})));
    ASSERT_FALSE(must(db().tracking().find("@a:b.org"))->outdated);

    sync_batch changed;
    changed.next_batch = "s2";
    changed.generation = 9;
    changed.outdated_marks.push_back({"@a:b.org", 9});
    must(db().sync().apply_sync_batch(changed));
    auto user = must(db().tracking().find("@a:b.org"));
    ASSERT_TRUE(user);
    EXPECT_TRUE(user->outdated);
    EXPECT_EQ(user->generation, 9);
    EXPECT_EQ(user->server_name, "b.org");
    EXPECT_EQ(user->reasons, (tracking_reasons{.encrypted_room = true, .explicit_request = true}));
    EXPECT_EQ(user->last_refreshed_at, 5000);
    EXPECT_EQ(must(db().devices().devices_of("@a:b.org")).size(), 1u);
    EXPECT_EQ(must(db().sync().load_sync_state()).generation, 9);

    // Replaying the batch (a crash before the engine saw the commit) changes nothing more.
    must(db().sync().apply_sync_batch(changed));
    EXPECT_EQ(must(db().tracking().find("@a:b.org"))->generation, 9);
}

TEST_F(SyncStoreTest, OutdatedMarkOfAnUntrackedUserFailsTheWholeBatch) {
    track("@a:b.org", 1);
    sync_batch batch;
    batch.next_batch = "s9";
    batch.outdated_marks.push_back({"@a:b.org", 2});
    batch.outdated_marks.push_back({"@gone:b.org", 3});
    auto r = db().sync().apply_sync_batch(batch);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_corrupt);
    EXPECT_NE(r.error().detail.find("@gone:b.org"), std::string::npos) << r.error().detail;
    EXPECT_EQ(must(db().sync().load_sync_state()).next_batch, std::nullopt);
    EXPECT_EQ(must(db().tracking().find("@a:b.org"))->generation, 1);
}

TEST_F(SyncStoreTest, RowsInAnyOrderAreAllWritten) {
    // The store writes in user-ID order; what it writes must not depend on the batch's order.
    sync_batch batch;
    std::vector<std::string> ids;
    for (std::size_t i = 40; i > 0; --i) {
        // Shared prefixes longer than eight bytes, and IDs that are prefixes of others.
        ids.push_back("@user-" + std::to_string(i % 7) + std::string(i % 3, 'x') + "-" +
                      std::to_string(i) + ":b.org");
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
        batch.tracked_users.push_back(
            {ids[i], "b.org", {.encrypted_room = true}, false, static_cast<std::int64_t>(i)});
    }
    must(db().sync().apply_sync_batch(batch));
    sync_batch marks;
    for (std::size_t i = 0; i < ids.size(); i += 2)
        marks.outdated_marks.push_back({ids[i], static_cast<std::int64_t>(100 + i)});
    must(db().sync().apply_sync_batch(marks));
    auto users = must(db().tracking().load_tracked_users());
    ASSERT_EQ(users.size(), ids.size());
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto user = must(db().tracking().find(ids[i]));
        ASSERT_TRUE(user) << ids[i];
        EXPECT_EQ(user->outdated, i % 2 == 0) << ids[i];
        EXPECT_EQ(user->generation, static_cast<std::int64_t>(i % 2 == 0 ? 100 + i : i)) << ids[i];
    }
}

// Marks that share a generation are written many to a statement (64): full groups, a
// remainder, and a generation that changes in the middle of a group must all land.
TEST_F(SyncStoreTest, ManyMarksSharingGenerationsAreAllWritten) {
    sync_batch tracked;
    std::vector<std::string> ids;
    for (std::size_t i = 0; i < 300; ++i) {
        ids.push_back("@u" + std::to_string(i) + ":b.org");
        tracked.tracked_users.push_back({ids.back(), "b.org", {.encrypted_room = true}, false, 1});
    }
    must(db().sync().apply_sync_batch(tracked));
    // Marks in user-ID order are ids sorted as strings; every fifth user is left alone. Two
    // operations' generations: 7 for most, 8 for a run of users inside what would be a group.
    auto generation_of = [](std::size_t i) -> std::int64_t { return i >= 100 && i < 110 ? 8 : 7; };
    sync_batch marks;
    for (std::size_t i = 0; i < 300; ++i) {
        if (i % 5 != 4) marks.outdated_marks.push_back({ids[i], generation_of(i)});
    }
    must(db().sync().apply_sync_batch(marks));
    for (std::size_t i = 0; i < 300; ++i) {
        auto user = must(db().tracking().find(ids[i]));
        ASSERT_TRUE(user) << ids[i];
        EXPECT_EQ(user->outdated, i % 5 != 4) << ids[i];
        EXPECT_EQ(user->generation, i % 5 != 4 ? generation_of(i) : 1) << ids[i];
    }
}

TEST_F(SyncStoreTest, AMissingUserInAFullGroupOfMarksIsNamedAndNothingIsWritten) {
    sync_batch tracked;
    sync_batch marks;
    marks.next_batch = "s2";
    for (int i = 0; i < 64; ++i) {
        std::string id = "@u" + std::to_string(100 + i) + ":b.org";
        if (i != 40)
            tracked.tracked_users.push_back({id, "b.org", {.encrypted_room = true}, false, 1});
        marks.outdated_marks.push_back({id, 5});
    }
    must(db().sync().apply_sync_batch(tracked));
    auto r = db().sync().apply_sync_batch(marks);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_corrupt);
    EXPECT_NE(r.error().detail.find("@u140:b.org"), std::string::npos) << r.error().detail;
    EXPECT_EQ(must(db().sync().load_sync_state()).next_batch, std::nullopt);
    EXPECT_FALSE(must(db().tracking().find("@u100:b.org"))->outdated);
    EXPECT_EQ(must(db().tracking().find("@u100:b.org"))->generation, 1);
}

TEST_F(SyncStoreTest, StreamedRowsAreTheLoadedRows) {
    sync_batch batch;
    batch.encrypted_rooms.push_back({"!e:a.org", "m.megolm.v1.aes-sha2"});
    batch.memberships.push_back({"!e:a.org", "@b:a.org", membership::invite});
    batch.memberships.push_back({"!e:a.org", "@a:a.org", membership::join});
    batch.memberships.push_back({"!p:a.org", "@a:a.org", membership::join});
    batch.tracked_users.push_back({"@b:a.org", "a.org", {.encrypted_room = true}, true, 2});
    batch.tracked_users.push_back({"@a:a.org", "a.org", {.own = true}, false, 1});
    must(db().sync().apply_sync_batch(batch));
    must(db().devices().apply_query_result(answer("@a:a.org", 1, {})));

    std::vector<room_member> streamed_members;
    must(db().sync().for_each_membership([&](const room_member_view& m) {
        streamed_members.push_back({std::string(m.room_id), std::string(m.user_id), m.state});
    }));
    auto members = must(db().sync().load_memberships());
    ASSERT_EQ(streamed_members.size(), members.size());
    for (std::size_t i = 0; i < members.size(); ++i) {
        EXPECT_EQ(streamed_members[i].room_id, members[i].room_id);
        EXPECT_EQ(streamed_members[i].user_id, members[i].user_id);
        EXPECT_EQ(streamed_members[i].state, members[i].state);
    }

    std::vector<tracked_user> streamed_users;
    must(db().tracking().for_each_tracked_user([&](const tracked_user_view& u) {
        streamed_users.push_back({std::string(u.user_id), std::string(u.server_name), u.reasons,
                                  u.outdated, u.generation, u.last_refreshed_at});
    }));
    auto users = must(db().tracking().load_tracked_users());
    ASSERT_EQ(streamed_users.size(), users.size());
    for (std::size_t i = 0; i < users.size(); ++i) {
        EXPECT_EQ(streamed_users[i].user_id, users[i].user_id);
        EXPECT_EQ(streamed_users[i].server_name, users[i].server_name);
        EXPECT_EQ(streamed_users[i].reasons, users[i].reasons);
        EXPECT_EQ(streamed_users[i].outdated, users[i].outdated);
        EXPECT_EQ(streamed_users[i].generation, users[i].generation);
        EXPECT_EQ(streamed_users[i].last_refreshed_at, users[i].last_refreshed_at);
    }
    EXPECT_EQ(users[0].last_refreshed_at, 5000);
}

TEST_F(SyncStoreTest, UntrackDropsDevicesAndCrossSigningKeysAndTellsConsumers) {
    track("@a:b.org", 1);
    query_result result =
        answer("@a:b.org", 1, {device("@a:b.org", "D1"), device("@a:b.org", "D2")});
    result.users[0].cross_signing_keys = std::vector<cross_signing_key>{master_key("@a:b.org")};
    must(db().devices().apply_query_result(result));
    const std::int64_t before = must(db().outbox().last_cursor());

    sync_batch batch;
    batch.at = 9000;
    batch.untracked_users.push_back("@a:b.org");
    must(db().sync().apply_sync_batch(batch));

    EXPECT_EQ(must(db().tracking().find("@a:b.org")), std::nullopt);
    EXPECT_TRUE(must(db().devices().devices_of("@a:b.org")).empty());
    EXPECT_EQ(must(db().devices().find("@a:b.org", "D1")), std::nullopt);
    EXPECT_EQ(must(db().devices().device_by_curve25519("cv-D1-1")), std::nullopt);
    EXPECT_TRUE(must(db().devices().cross_signing_keys_of("@a:b.org")).empty());
    auto events = must(db().outbox().read_after(before, 10));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, outbox_type::user_untracked);
    EXPECT_EQ(events[0].payload_json, R"({"user_id":"@a:b.org"})");
    EXPECT_EQ(events[0].at, 9000);
}

TEST_F(SyncStoreTest, ReplayedUntrackAnnouncesNothing) {
    track("@a:b.org");
    untrack("@a:b.org");
    const std::int64_t before = must(db().outbox().last_cursor());
    untrack("@a:b.org");
    EXPECT_EQ(must(db().outbox().last_cursor()), before);
}

TEST_F(SyncStoreTest, OneTimeKeyCountsAreReplacedNotMerged) {
    sync_batch first;
    first.one_time_key_counts =
        std::map<std::string, std::int64_t>{{"signed_curve25519", 5}, {"curve25519", 3}};
    must(db().sync().apply_sync_batch(first));
    sync_batch second;  // signed_curve25519 missing: it is 0 now, not "unchanged"
    second.one_time_key_counts = std::map<std::string, std::int64_t>{{"curve25519", 2}};
    must(db().sync().apply_sync_batch(second));
    EXPECT_EQ(must(db().sync().load_server_key_state()).one_time_key_counts,
              (std::map<std::string, std::int64_t>{{"curve25519", 2}}));

    sync_batch silent;  // no counts in this response: unchanged
    must(db().sync().apply_sync_batch(silent));
    EXPECT_EQ(must(db().sync().load_server_key_state()).one_time_key_counts,
              (std::map<std::string, std::int64_t>{{"curve25519", 2}}));
}

TEST_F(SyncStoreTest, UnusedFallbackKeyTypesRecordServerSupport) {
    sync_batch reported_empty;  // supported, and the fallback key was used
    reported_empty.unused_fallback_key_types = std::vector<std::string>{};
    must(db().sync().apply_sync_batch(reported_empty));
    EXPECT_EQ(must(db().sync().load_server_key_state()).unused_fallback_key_types,
              std::vector<std::string>{});

    sync_batch unused;
    unused.unused_fallback_key_types = std::vector<std::string>{"signed_curve25519"};
    must(db().sync().apply_sync_batch(unused));
    sync_batch silent;
    must(db().sync().apply_sync_batch(silent));
    EXPECT_EQ(must(db().sync().load_server_key_state()).unused_fallback_key_types,
              std::vector<std::string>{"signed_curve25519"});
}

TEST_F(SyncStoreTest, FailingBatchChangesNothing) {
    sync_batch first;
    first.next_batch = "s1";
    must(db().sync().apply_sync_batch(first));

    sync_batch broken;
    broken.next_batch = "s2";
    broken.tracked_users.push_back({"@a:b.org", "b.org", {.encrypted_room = true}, true, 1});
    broken.encrypted_rooms.push_back({"!r:b.org", "m.megolm.v1.aes-sha2"});
    broken.outbox_events.push_back({0, 1, "m.bad", "this is not JSON"});
    auto r = db().sync().apply_sync_batch(broken);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_NE(r.error().detail.find("json_valid"), std::string::npos) << r.error().detail;

    EXPECT_EQ(must(db().sync().load_sync_state()).next_batch, "s1");
    EXPECT_TRUE(must(db().tracking().load_tracked_users()).empty());
    EXPECT_TRUE(must(db().sync().load_rooms()).empty());
    EXPECT_FALSE(db().database().in_transaction());
}

TEST_F(SyncStoreTest, BatchesUseNormalDurability) {
    testing::synchronous_tracer tracer(db().database());
    sync_batch batch;
    batch.next_batch = "s1";
    must(db().sync().apply_sync_batch(batch));
    EXPECT_EQ(tracer.levels_of("UPDATE sync_state SET next_batch"),
              std::vector<std::string>{"NORMAL"});
}

TEST_F(SyncStoreTest, FilterIdAndDeviceIdRoundTrip) {
    EXPECT_EQ(must(db().sync().load_sync_state()).device_id, std::nullopt);
    must(db().sync().set_filter_id("f1"));
    must(db().sync().set_device_id("DEVLIST"));
    sync_state state = must(db().sync().load_sync_state());
    EXPECT_EQ(state.filter_id, "f1");
    EXPECT_EQ(state.device_id, "DEVLIST");
}

TEST_F(SyncStoreTest, StatementsArePreparedOnceAndReused) {
    sync_batch batch;
    batch.next_batch = "s1";
    batch.tracked_users.push_back({"@a:b.org", "b.org", {.encrypted_room = true}, true, 1});
    must(db().sync().apply_sync_batch(batch));
    const int prepared = testing::prepared_statements(db().database());
    batch.next_batch = "s2";
    batch.tracked_users[0].user_id = "@c:b.org";
    must(db().sync().apply_sync_batch(batch));
    EXPECT_EQ(testing::prepared_statements(db().database()), prepared);
}

}  // namespace
}  // namespace devlist::storage
