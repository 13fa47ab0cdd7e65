#include "sync/device_list_tracker.hpp"

#include <gtest/gtest.h>

#include <algorithm>

namespace devlist::sync {
namespace {

const std::string me = "@me:hs";

member_change joined(const std::string& user) {
    return {user, membership::join};
}
member_change invited(const std::string& user) {
    return {user, membership::invite};
}
member_change left(const std::string& user) {
    return {user, membership::leave};
}

room_delta room(const std::string& id, std::vector<member_change> members, bool encrypted) {
    room_delta r;
    r.room_id = id;
    r.members = std::move(members);
    if (encrypted) r.encryption_algorithm = "m.megolm.v1.aes-sha2";
    return r;
}

sync_response response(std::vector<room_delta> rooms) {
    sync_response r;
    r.next_batch = "s";
    r.rooms = std::move(rooms);
    return r;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

const storage::tracked_user_update* update_for(const storage::sync_batch& b,
                                               const std::string& user) {
    for (const auto& u : b.tracked_users) {
        if (u.user_id == user) return &u;
    }
    return nullptr;
}

class tracker_test : public ::testing::Test {
  protected:
    device_list_tracker tracker{me};

    storage::sync_batch initial(std::vector<room_delta> rooms) {
        storage::sync_batch batch;
        tracker.ensure_own_user(batch);
        tracker.apply_sync(response(std::move(rooms)), true, batch);
        return batch;
    }
    storage::sync_batch incremental(sync_response r) {
        storage::sync_batch batch;
        tracker.apply_sync(r, false, batch);
        return batch;
    }
};

TEST_F(tracker_test, initial_sync_tracks_own_user_and_members_of_encrypted_rooms_only) {
    auto batch = initial({room("!e:hs", {joined(me), joined("@a:hs"), invited("@c:x")}, true),
                          room("!plain:hs", {joined(me), joined("@d:hs")}, false)});
    EXPECT_TRUE(tracker.is_tracked(me));
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
    EXPECT_TRUE(tracker.is_tracked("@c:x"));
    EXPECT_FALSE(tracker.is_tracked("@d:hs"));
    EXPECT_EQ(tracker.tracked_count(), 3u);
    EXPECT_EQ(tracker.outdated_count(), 3u);

    ASSERT_EQ(batch.tracked_users.size(), 3u);
    const auto* own = update_for(batch, me);
    ASSERT_NE(own, nullptr);
    EXPECT_TRUE(own->reasons.own);
    EXPECT_TRUE(own->reasons.encrypted_room);
    EXPECT_EQ(update_for(batch, "@c:x")->server_name, "x");
    EXPECT_TRUE(update_for(batch, "@a:hs")->outdated);
    // One stamp for the operation, shared by every user it marked; the counter is persisted
    // with the batch.
    EXPECT_EQ(update_for(batch, "@a:hs")->generation, update_for(batch, "@c:x")->generation);
    EXPECT_EQ(update_for(batch, "@a:hs")->generation, tracker.generation());
    ASSERT_TRUE(batch.generation);
    EXPECT_EQ(*batch.generation, tracker.generation());
    ASSERT_EQ(batch.encrypted_rooms.size(), 1u);
    EXPECT_EQ(batch.memberships.size(), 5u);  // members of both rooms are recorded
}

TEST_F(tracker_test, changed_restamps_tracked_users_and_ignores_others) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true)});
    auto before = tracker.find("@a:hs")->generation;
    sync_response r = response({});
    r.device_lists_changed = {"@a:hs", "@stranger:hs"};
    auto batch = incremental(r);
    EXPECT_GT(tracker.find("@a:hs")->generation, before);
    EXPECT_FALSE(tracker.is_tracked("@stranger:hs"));
    // Only the stamp changed: the batch carries a mark (flag and generation), not a whole row.
    EXPECT_TRUE(batch.tracked_users.empty());
    ASSERT_EQ(batch.outdated_marks.size(), 1u);
    EXPECT_EQ(batch.outdated_marks[0].user_id, "@a:hs");
    EXPECT_EQ(batch.outdated_marks[0].generation, tracker.find("@a:hs")->generation);
    ASSERT_TRUE(batch.generation);
    EXPECT_EQ(*batch.generation, tracker.generation());
}

TEST_F(tracker_test, a_changed_reason_writes_the_whole_row_even_when_stamped) {
    initial({room("!r:hs", {joined(me), joined("@a:hs")}, false)});
    storage::sync_batch explicit_batch;
    tracker.track_explicitly("@a:hs", explicit_batch);
    // The room turns encrypted: @a:hs gains a reason and a stamp.
    auto batch = incremental(response({room("!r:hs", {}, true)}));
    EXPECT_TRUE(batch.outdated_marks.empty());
    const auto* row = update_for(batch, "@a:hs");
    ASSERT_NE(row, nullptr);
    EXPECT_TRUE(row->reasons.encrypted_room);
    EXPECT_TRUE(row->reasons.explicit_request);
    EXPECT_EQ(row->generation, tracker.find("@a:hs")->generation);
}

TEST_F(tracker_test, leaving_one_of_two_encrypted_rooms_keeps_tracking) {
    initial({room("!e1:hs", {joined(me), joined("@a:hs")}, true),
             room("!e2:hs", {joined(me), joined("@a:hs")}, true)});
    auto batch = incremental(response({room("!e1:hs", {left("@a:hs")}, false)}));
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
    EXPECT_TRUE(batch.untracked_users.empty());
    batch = incremental(response({room("!e2:hs", {left("@a:hs")}, false)}));
    EXPECT_FALSE(tracker.is_tracked("@a:hs"));
    EXPECT_EQ(batch.untracked_users, std::vector<std::string>{"@a:hs"});
}

TEST_F(tracker_test, left_untracks_only_when_the_room_model_agrees) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true)});
    sync_response r = response({});
    r.device_lists_left = {"@a:hs"};
    auto batch = incremental(r);
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
    EXPECT_EQ(tracker.left_disagreements(), 1u);

    // An explicitly tracked user stays tracked whatever `left` says.
    storage::sync_batch explicit_batch;
    tracker.track_explicitly("@b:hs", explicit_batch);
    r.device_lists_left = {"@b:hs"};
    batch = incremental(r);
    EXPECT_TRUE(tracker.is_tracked("@b:hs"));
    EXPECT_TRUE(batch.untracked_users.empty());
}

TEST_F(tracker_test, a_room_turning_encrypted_tracks_its_members) {
    initial({room("!r:hs", {joined(me), joined("@a:hs")}, false)});
    EXPECT_FALSE(tracker.is_tracked("@a:hs"));
    auto batch = incremental(response({room("!r:hs", {}, true)}));
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
    EXPECT_TRUE(tracker.find("@a:hs")->outdated);
    EXPECT_EQ(batch.encrypted_rooms.size(), 1u);
}

TEST_F(tracker_test, our_leaving_a_room_untracks_its_members) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true)});
    room_delta gone;
    gone.room_id = "!e:hs";
    gone.section = room_section::leave;
    auto batch = incremental(response({gone}));
    EXPECT_FALSE(tracker.is_tracked("@a:hs"));
    EXPECT_TRUE(tracker.is_tracked(me));  // the own user is always tracked
    EXPECT_TRUE(contains(batch.untracked_users, "@a:hs"));
    // Rejoining: the room is remembered as encrypted, so its members are tracked again.
    auto again = incremental(response({room("!e:hs", {joined(me), joined("@a:hs")}, false)}));
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
}

TEST_F(tracker_test, invited_rooms_do_not_track_before_we_join) {
    initial({});
    room_delta inv = room("!i:hs", {invited(me), joined("@a:hs")}, true);
    inv.section = room_section::invite;
    incremental(response({inv}));
    EXPECT_FALSE(tracker.is_tracked("@a:hs"));
}

TEST_F(tracker_test, a_new_initial_sync_forgets_rooms_and_members_it_lacks) {
    initial({room("!e1:hs", {joined(me), joined("@a:hs"), joined("@b:hs")}, true),
             room("!e2:hs", {joined(me), joined("@c:hs")}, true)});
    storage::sync_batch batch;
    tracker.apply_sync(response({room("!e1:hs", {joined(me), joined("@a:hs")}, true)}), true,
                       batch);
    EXPECT_TRUE(tracker.is_tracked("@a:hs"));
    EXPECT_FALSE(tracker.is_tracked("@b:hs"));
    EXPECT_FALSE(tracker.is_tracked("@c:hs"));
    EXPECT_TRUE(contains(batch.untracked_users, "@b:hs"));
    EXPECT_TRUE(contains(batch.untracked_users, "@c:hs"));
}

TEST_F(tracker_test, explicit_tracking) {
    initial({});
    storage::sync_batch batch;
    tracker.track_explicitly("@z:remote", batch);
    ASSERT_TRUE(tracker.is_tracked("@z:remote"));
    EXPECT_TRUE(tracker.find("@z:remote")->reasons.explicit_request);
    storage::sync_batch untrack;
    EXPECT_FALSE(tracker.untrack_explicitly("@nobody:x", untrack));
    EXPECT_TRUE(tracker.untrack_explicitly("@z:remote", untrack));
    EXPECT_FALSE(tracker.is_tracked("@z:remote"));
    EXPECT_EQ(untrack.untracked_users, std::vector<std::string>{"@z:remote"});
}

TEST_F(tracker_test, query_tickets_carry_generations_and_are_not_taken_twice) {
    initial(
        {room("!e:hs", {joined("@b:hs"), joined(me), joined("@a:hs"), joined("@c:far")}, true)});
    auto tickets = tracker.take_outdated(2, [](const std::string& u) { return u != "@c:far"; });
    ASSERT_EQ(tickets.size(), 2u);
    EXPECT_EQ(tickets[0].user_id, me);  // own user first
    EXPECT_EQ(tickets[1].user_id, "@a:hs");
    EXPECT_EQ(tickets[1].generation, tracker.find("@a:hs")->generation);
    auto more = tracker.take_outdated(10, [](const std::string& u) { return u != "@c:far"; });
    ASSERT_EQ(more.size(), 1u);
    EXPECT_EQ(more[0].user_id, "@b:hs");
    EXPECT_EQ(tracker.in_flight_count(), 3u);

    // The store cleared only the users whose stamp did not move.
    tracker.finish_query(tickets, {me});
    EXPECT_FALSE(tracker.find(me)->outdated);
    EXPECT_TRUE(tracker.find("@a:hs")->outdated);
    EXPECT_EQ(tracker.in_flight_count(), 1u);
    auto retry = tracker.take_outdated(10);
    EXPECT_EQ(retry.size(), 2u);  // @a:hs again, and @c:far now that it is allowed
}

// Users marked by one operation share its generation; every later operation stamps a newer one,
// so a ticket taken in between never matches a user marked after it was taken.
TEST_F(tracker_test, one_operation_stamps_one_generation_and_the_next_a_newer_one) {
    initial({room("!e:hs", {joined(me), joined("@a:hs"), joined("@b:hs"), joined("@c:hs")}, true)});
    auto tickets = tracker.take_outdated(10);
    ASSERT_EQ(tickets.size(), 4u);
    tracker.finish_query(tickets, {me, "@a:hs", "@b:hs", "@c:hs"});

    storage::sync_batch first;
    ASSERT_EQ(tracker.mark_outdated({"@a:hs", "@b:hs"}, first), 2u);
    ASSERT_EQ(first.outdated_marks.size(), 2u);
    const auto stamp = first.outdated_marks[0].generation;
    EXPECT_EQ(first.outdated_marks[1].generation, stamp);
    EXPECT_EQ(stamp, tracker.generation());
    auto in_flight = tracker.take_outdated(10);
    ASSERT_EQ(in_flight.size(), 2u);
    EXPECT_EQ(in_flight[0].generation, stamp);

    storage::sync_batch second;
    ASSERT_EQ(tracker.mark_outdated({"@b:hs", "@c:hs"}, second), 2u);
    EXPECT_GT(tracker.find("@b:hs")->generation, stamp);
    EXPECT_EQ(tracker.find("@b:hs")->generation, tracker.find("@c:hs")->generation);
    EXPECT_EQ(tracker.find("@a:hs")->generation, stamp);
    // An operation that stamps nobody moves nothing.
    storage::sync_batch none;
    const auto before = tracker.generation();
    EXPECT_EQ(tracker.mark_outdated({"@nobody:hs"}, none), 0u);
    EXPECT_EQ(tracker.generation(), before);
    EXPECT_FALSE(none.generation);
}

// A large answer is committed in several transactions: a user cleared by an early one can be
// marked outdated again by a /sync applied before the last one. The store keeps that mark; so
// must the tracker, or the user is never asked again.
TEST_F(tracker_test, a_user_marked_again_after_the_store_cleared_it_stays_outdated) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true)});
    auto tickets = tracker.take_outdated(10);
    ASSERT_EQ(tickets.size(), 2u);
    storage::sync_batch batch;
    ASSERT_EQ(tracker.mark_outdated({"@a:hs"}, batch), 1u);
    tracker.finish_query(tickets, {me, "@a:hs"});
    EXPECT_FALSE(tracker.find(me)->outdated);
    EXPECT_TRUE(tracker.find("@a:hs")->outdated);
    auto again = tracker.take_outdated(10);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].user_id, "@a:hs");
}

TEST_F(tracker_test, restore_rebuilds_the_same_state) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true),
             room("!p:hs", {joined(me), joined("@b:hs")}, false)});
    device_list_tracker restored(me);
    std::vector<storage::room> rooms = {{"!e:hs", true, "m.megolm.v1.aes-sha2"},
                                        {"!p:hs", false, std::nullopt}};
    std::vector<storage::room_member> members = {{"!e:hs", me, storage::membership::join},
                                                 {"!e:hs", "@a:hs", storage::membership::join},
                                                 {"!p:hs", me, storage::membership::join},
                                                 {"!p:hs", "@b:hs", storage::membership::join}};
    std::vector<storage::tracked_user> users = {*tracker.find(me), *tracker.find("@a:hs")};
    restored.restore(tracker.generation(), rooms, members, users);
    EXPECT_EQ(restored.tracked_count(), 2u);
    EXPECT_EQ(restored.outdated_count(), 2u);
    // The restored room model still counts @a:hs in one encrypted room.
    storage::sync_batch batch;
    restored.apply_sync(response({room("!e:hs", {left("@a:hs")}, false)}), false, batch);
    EXPECT_FALSE(restored.is_tracked("@a:hs"));
    storage::sync_batch batch2;
    restored.apply_sync(response({room("!p:hs", {}, true)}), false, batch2);
    EXPECT_TRUE(restored.is_tracked("@b:hs"));
    EXPECT_GT(restored.find("@b:hs")->generation, tracker.generation());
}

TEST_F(tracker_test, mark_all_outdated_for_catch_up) {
    initial({room("!e:hs", {joined(me), joined("@a:hs")}, true)});
    auto t = tracker.take_outdated(10);
    tracker.finish_query(t, {me, "@a:hs"});
    EXPECT_EQ(tracker.outdated_count(), 0u);
    storage::sync_batch batch;
    EXPECT_EQ(tracker.mark_all_outdated(batch), 2u);
    EXPECT_EQ(tracker.outdated_count(), 2u);
    EXPECT_TRUE(batch.tracked_users.empty());
    EXPECT_EQ(batch.outdated_marks.size(), 2u);
    storage::sync_batch some;
    EXPECT_EQ(tracker.mark_outdated({"@a:hs", "@unknown:x"}, some), 1u);
}

}  // namespace
}  // namespace devlist::sync

namespace devlist::sync {
namespace {

TEST(tracker_batches, a_stamp_after_an_earlier_row_of_the_batch_rewrites_the_whole_row) {
    device_list_tracker tracker(me);
    storage::sync_batch batch;
    tracker.ensure_own_user(batch);
    tracker.track_explicitly("@x:hs", batch);
    // The store has no row for @x:hs before this batch commits: a mark alone would find none.
    EXPECT_EQ(tracker.mark_outdated({"@x:hs", me}, batch), 2u);
    EXPECT_TRUE(batch.outdated_marks.empty());
    ASSERT_EQ(batch.tracked_users.size(), 2u);
    for (const auto& row : batch.tracked_users) {
        EXPECT_EQ(row.generation, tracker.find(row.user_id)->generation) << row.user_id;
        EXPECT_TRUE(row.outdated);
    }
    // A mark made earlier in the batch is replaced by this operation's row, never kept beside.
    storage::sync_batch again;
    tracker.mark_outdated({"@x:hs"}, again);
    ASSERT_EQ(again.outdated_marks.size(), 1u);
    tracker.track_explicitly("@x:hs", again);  // already tracked: touches without a stamp
    EXPECT_TRUE(again.outdated_marks.empty());
    ASSERT_EQ(again.tracked_users.size(), 1u);
    EXPECT_EQ(again.tracked_users[0].generation, tracker.find("@x:hs")->generation);
}

TEST(tracker_batches, operations_sharing_a_batch_leave_one_row_per_user) {
    device_list_tracker tracker(me);
    storage::sync_batch batch;
    tracker.ensure_own_user(batch);
    tracker.track_explicitly("@x:hs", batch);
    ASSERT_TRUE(tracker.untrack_explicitly("@x:hs", batch));
    // The earlier row for @x:hs is replaced by its removal, never kept beside it.
    EXPECT_EQ(batch.untracked_users, std::vector<std::string>{"@x:hs"});
    EXPECT_EQ(batch.tracked_users.size(), 1u);
    tracker.track_explicitly("@x:hs", batch);
    ASSERT_EQ(batch.tracked_users.size(), 2u);
    EXPECT_TRUE(batch.untracked_users.empty());
}

}  // namespace
}  // namespace devlist::sync

namespace devlist::sync {
namespace {

std::vector<std::string> ids(const std::vector<query_ticket>& tickets) {
    std::vector<std::string> out;
    for (const auto& t : tickets)
        out.push_back(t.user_id);
    return out;
}

TEST(tracker_queue, outdated_users_are_taken_in_user_id_order_once_each) {
    device_list_tracker tracker(me);
    storage::sync_batch batch;
    tracker.ensure_own_user(batch);
    for (const char* u : {"@d:hs", "@b:hs", "@a-long-name-x:hs", "@a-long-name:hs", "@c:hs"})
        tracker.track_explicitly(u, batch);
    auto first = tracker.take_outdated(3);
    EXPECT_EQ(ids(first), (std::vector<std::string>{me, "@a-long-name-x:hs", "@a-long-name:hs"}));
    // @b:hs is refreshed out of band; @a-long-name:hs answered but was stamped again meanwhile.
    tracker.finish_query(first, {me, "@a-long-name-x:hs"});
    storage::sync_batch later;
    tracker.mark_outdated({"@a-long-name:hs", "@e:hs", me}, later);  // @e:hs is not tracked
    auto second = tracker.take_outdated(10);
    EXPECT_EQ(ids(second),
              (std::vector<std::string>{me, "@a-long-name:hs", "@b:hs", "@c:hs", "@d:hs"}));
    EXPECT_EQ(tracker.outdated_count(), 5u);
    EXPECT_TRUE(tracker.take_outdated(10).empty());  // all in flight
    tracker.finish_query(second, {me, "@a-long-name:hs", "@b:hs", "@c:hs", "@d:hs"});
    EXPECT_EQ(tracker.outdated_count(), 0u);
    EXPECT_EQ(tracker.in_flight_count(), 0u);
    EXPECT_TRUE(tracker.take_outdated(10).empty());
}

TEST(tracker_queue, a_user_untracked_while_in_flight_stays_in_flight_when_tracked_again) {
    device_list_tracker tracker(me);
    storage::sync_batch batch;
    tracker.ensure_own_user(batch);
    tracker.track_explicitly("@x:hs", batch);
    auto tickets = tracker.take_outdated(10);
    ASSERT_EQ(tickets.size(), 2u);
    storage::sync_batch untrack;
    ASSERT_TRUE(tracker.untrack_explicitly("@x:hs", untrack));
    EXPECT_EQ(tracker.outdated_count(), 1u);
    storage::sync_batch again;
    tracker.track_explicitly("@x:hs", again);
    ASSERT_TRUE(tracker.find("@x:hs"));
    EXPECT_TRUE(tracker.find("@x:hs")->outdated);
    // The first query has not ended: the user is not sent twice.
    EXPECT_TRUE(tracker.take_outdated(10).empty());
    // Its answer predates the new stamp, so the store cleared nobody; now it is taken again.
    tracker.finish_query(tickets, {me});
    auto retry = tracker.take_outdated(10);
    ASSERT_EQ(retry.size(), 1u);
    EXPECT_EQ(retry[0].user_id, "@x:hs");
    EXPECT_EQ(retry[0].generation, tracker.find("@x:hs")->generation);
}

TEST(tracker_queue, users_who_leave_and_others_who_join_keep_their_own_state) {
    device_list_tracker tracker(me);
    storage::sync_batch batch;
    tracker.ensure_own_user(batch);
    sync_response first = response({room("!e:hs", {joined(me), joined("@a:hs")}, true),
                                    room("!p:hs", {joined(me), joined("@p:hs")}, false)});
    tracker.apply_sync(first, true, batch);
    tracker.finish_query(tracker.take_outdated(10), {me, "@a:hs"});
    // @a:hs and @p:hs leave; the IDs' storage is reused for the users who join next.
    storage::sync_batch leave;
    tracker.apply_sync(
        response({room("!e:hs", {left("@a:hs")}, false), room("!p:hs", {left("@p:hs")}, false)}),
        false, leave);
    EXPECT_EQ(leave.untracked_users, std::vector<std::string>{"@a:hs"});
    storage::sync_batch join;
    tracker.apply_sync(response({room("!e:hs", {joined("@n1:hs"), joined("@n2:hs")}, false)}),
                       false, join);
    EXPECT_FALSE(tracker.is_tracked("@a:hs"));
    EXPECT_FALSE(tracker.is_tracked("@p:hs"));
    ASSERT_TRUE(tracker.is_tracked("@n1:hs"));
    ASSERT_TRUE(tracker.is_tracked("@n2:hs"));
    EXPECT_EQ(tracker.find("@n1:hs")->user_id, "@n1:hs");
    EXPECT_EQ(tracker.find("@n2:hs")->server_name, "hs");
    EXPECT_EQ(tracker.tracked_count(), 3u);
    EXPECT_EQ(tracker.outdated_count(), 2u);
    EXPECT_EQ(ids(tracker.take_outdated(10)), (std::vector<std::string>{"@n1:hs", "@n2:hs"}));
    // The room model holds the newcomers: their leaving untracks them.
    storage::sync_batch leave_again;
    tracker.apply_sync(response({room("!e:hs", {left("@n1:hs"), left("@n2:hs")}, false)}), false,
                       leave_again);
    EXPECT_EQ(leave_again.untracked_users.size(), 2u);
    EXPECT_EQ(tracker.tracked_count(), 1u);
}

TEST(tracker_restore, row_by_row_restore_equals_restore_from_vectors) {
    std::vector<storage::room> rooms = {{"!e:hs", true, "m.megolm.v1.aes-sha2"},
                                        {"!p:hs", false, std::nullopt}};
    std::vector<storage::room_member> members = {{"!e:hs", me, storage::membership::join},
                                                 {"!e:hs", "@a:hs", storage::membership::invite},
                                                 {"!p:hs", "@a:hs", storage::membership::join},
                                                 {"!p:hs", "@b:hs", storage::membership::join}};
    std::vector<storage::tracked_user> users = {
        {me, "hs", {.own = true, .encrypted_room = true}, false, 3, 1000},
        {"@a:hs", "hs", {.encrypted_room = true}, true, 5, std::nullopt},
        {"@z:far", "far", {.explicit_request = true}, true, 4, std::nullopt}};
    device_list_tracker from_vectors(me);
    from_vectors.restore(9, rooms, members, users);
    device_list_tracker streamed(me);
    streamed.begin_restore(9);
    for (const auto& r : rooms)
        streamed.restore_room(r.room_id, r.encrypted, r.algorithm.value_or(""));
    for (const auto& m : members)
        streamed.restore_member({m.room_id, m.user_id, m.state});
    for (const auto& u : users) {
        streamed.restore_user(
            {u.user_id, u.server_name, u.reasons, u.outdated, u.generation, u.last_refreshed_at});
    }
    for (auto* t : {&from_vectors, &streamed}) {
        EXPECT_EQ(t->tracked_count(), 3u);
        EXPECT_EQ(t->outdated_count(), 2u);
        EXPECT_EQ(t->generation(), 9);
        EXPECT_FALSE(t->is_tracked("@b:hs"));
        ASSERT_TRUE(t->find(me));
        EXPECT_EQ(t->find(me)->last_refreshed_at, 1000);
        EXPECT_EQ(ids(t->take_outdated(10)), (std::vector<std::string>{"@a:hs", "@z:far"}));
        // @a:hs is invited to the encrypted room: leaving it untracks them.
        storage::sync_batch batch;
        t->apply_sync(response({room("!e:hs", {left("@a:hs")}, false)}), false, batch);
        EXPECT_EQ(batch.untracked_users, std::vector<std::string>{"@a:hs"});
    }
}

}  // namespace
}  // namespace devlist::sync
