#include "storage/device_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::must;

class DeviceStoreTest : public testing::StoreTest {
  protected:
    std::vector<outbox_event> events_after(std::int64_t cursor) {
        return must(db().outbox().read_after(cursor, 100));
    }
    // Bumps the user's generation as a /sync device_lists.changed would.
    void mark_outdated(const std::string& user_id, std::int64_t generation) {
        sync_batch batch;
        batch.generation = generation;
        batch.tracked_users.push_back(
            {user_id, server_of(user_id), {.encrypted_room = true}, true, generation});
        must(db().sync().apply_sync_batch(batch));
    }
};

TEST_F(DeviceStoreTest, StoresNewDevicesAndReadsThemBack) {
    track("@a:b.org", 1);
    device_record d1 = device("@a:b.org", "D1");
    device_record d2 = device("@a:b.org", "D2");
    d2.display_name = std::nullopt;
    d2.cross_signed = true;
    query_outcome outcome =
        must(db().devices().apply_query_result(answer("@a:b.org", 1, {d2, d1})));
    EXPECT_EQ(outcome.cleared, std::vector<std::string>{"@a:b.org"});
    ASSERT_EQ(outcome.device_changes.size(), 2u);
    EXPECT_EQ(outcome.device_changes[0].kind, device_change_kind::added);

    auto devices = must(db().devices().devices_of("@a:b.org"));
    ASSERT_EQ(devices.size(), 2u);
    EXPECT_EQ(devices[0].device_id, "D1");
    EXPECT_EQ(devices[0].ed25519, d1.ed25519);
    EXPECT_EQ(devices[0].curve25519, d1.curve25519);
    EXPECT_EQ(devices[0].display_name, d1.display_name);
    EXPECT_EQ(devices[0].signed_json, d1.signed_json);
    EXPECT_EQ(devices[0].first_seen, 5000);
    EXPECT_EQ(devices[0].last_seen, 5000);
    EXPECT_EQ(devices[0].deleted_at, std::nullopt);
    EXPECT_EQ(devices[1].display_name, std::nullopt);
    EXPECT_TRUE(devices[1].cross_signed);

    auto by_key = must(db().devices().device_by_curve25519(d2.curve25519));
    ASSERT_TRUE(by_key);
    EXPECT_EQ(by_key->device_id, "D2");
    EXPECT_EQ(must(db().devices().device_by_curve25519("unknown")), std::nullopt);

    auto user = must(db().tracking().find("@a:b.org"));
    ASSERT_TRUE(user);
    EXPECT_FALSE(user->outdated);
    EXPECT_EQ(user->last_refreshed_at, 5000);
}

TEST_F(DeviceStoreTest, DeviceEventsCarryValidJsonEvenForHostileNames) {
    track("@a:b.org", 1);
    device_record d = device("@a:b.org", "D1");
    d.display_name = "quote \" backslash \\ newline \n";
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {d})));
    auto events = events_after(0);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, outbox_type::device_added);
    EXPECT_EQ(events[0].payload_json,
              R"({"user_id":"@a:b.org","device_id":"D1","ed25519":"ed-D1-1",)"
              R"("curve25519":"cv-D1-1","display_name":"quote \" backslash \\ newline \n"})");
}

TEST_F(DeviceStoreTest, UnchangedDeviceOnlyRefreshesAStaleLastSeen) {
    track("@a:b.org", 1);
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")})));
    const std::int64_t cursor = must(db().outbox().last_cursor());
    mark_outdated("@a:b.org", 2);
    // Within the resolution: nothing is written for the device, the user is fresh again.
    query_outcome outcome = must(
        db().devices().apply_query_result(answer("@a:b.org", 2, {device("@a:b.org", "D1")}, 6000)));
    EXPECT_TRUE(outcome.device_changes.empty());
    EXPECT_EQ(outcome.cleared, std::vector<std::string>{"@a:b.org"});
    auto stored = must(db().devices().find("@a:b.org", "D1"));
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->last_seen, 5000);

    mark_outdated("@a:b.org", 3);
    const std::int64_t later = 5000 + last_seen_resolution_ms;
    outcome = must(db().devices().apply_query_result(
        answer("@a:b.org", 3, {device("@a:b.org", "D1")}, later)));
    EXPECT_TRUE(outcome.device_changes.empty());
    EXPECT_TRUE(events_after(cursor).empty());
    stored = must(db().devices().find("@a:b.org", "D1"));
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->first_seen, 5000);
    EXPECT_EQ(stored->last_seen, later);
}

TEST_F(DeviceStoreTest, AnUnchangedUserWritesOnlyTheOutdatedFlag) {
    track("@a:b.org", 1);
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")})));
    const std::int64_t cursor = must(db().outbox().last_cursor());
    mark_outdated("@a:b.org", 2);
    // `unchanged` is the engine's word that the devices are what is stored: they are not read.
    query_result same = answer("@a:b.org", 2, {}, 6000);
    same.users[0].unchanged = true;
    query_outcome outcome = must(db().devices().apply_query_result(same));
    EXPECT_EQ(outcome.cleared, std::vector<std::string>{"@a:b.org"});
    EXPECT_TRUE(outcome.device_changes.empty());
    EXPECT_TRUE(events_after(cursor).empty());
    EXPECT_EQ(must(db().devices().devices_of("@a:b.org")).size(), 1u);
    EXPECT_EQ(must(db().tracking().find("@a:b.org"))->last_refreshed_at, 6000);

    // The generation moved meanwhile: still outdated; untracked meanwhile: not tracked.
    mark_outdated("@a:b.org", 3);
    same.users[0].generation_at_send = 2;
    outcome = must(db().devices().apply_query_result(same));
    EXPECT_EQ(outcome.still_outdated, std::vector<std::string>{"@a:b.org"});
    same.users[0].user_id = "@gone:b.org";
    outcome = must(db().devices().apply_query_result(same));
    EXPECT_EQ(outcome.not_tracked, std::vector<std::string>{"@gone:b.org"});
}

answer_digest digest_of(std::uint8_t fill) {
    answer_digest d;
    d.fill(fill);
    return d;
}

TEST_F(DeviceStoreTest, ADigestIsStoredWithAnAcceptedPartAndClearedByAnyOtherWrite) {
    track("@a:b.org", 1);
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), std::nullopt);
    query_result first = answer("@a:b.org", 1, {device("@a:b.org", "D1")});
    first.users[0].digest = digest_of(1);
    must(db().devices().apply_query_result(first));
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), digest_of(1));

    // The unchanged path (one statement) writes the part's digest too.
    mark_outdated("@a:b.org", 2);
    query_result same = answer("@a:b.org", 2, {}, 6000);
    same.users[0].unchanged = true;
    same.users[0].digest = digest_of(2);
    EXPECT_EQ(must(db().devices().apply_query_result(same)).cleared,
              std::vector<std::string>{"@a:b.org"});
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), digest_of(2));

    // Devices written without a digest (a part with a refused device, say): cleared.
    mark_outdated("@a:b.org", 3);
    must(db().devices().apply_query_result(
        answer("@a:b.org", 3, {device("@a:b.org", "D1"), device("@a:b.org", "D2")}, 7000)));
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), std::nullopt);
    // A part accepted whole stores its digest even when the generation moved meanwhile (the
    // devices are its verdicts all the same); an unchanged result without one clears it.
    first.users[0].generation_at_send = 1;
    first.users[0].devices = {device("@a:b.org", "D1"), device("@a:b.org", "D2")};
    must(db().devices().apply_query_result(first));
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), digest_of(1));
    same.users[0].digest = std::nullopt;
    same.users[0].generation_at_send = 3;
    must(db().devices().apply_query_result(same));
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), std::nullopt);
}

TEST_F(DeviceStoreTest, ARepeatedPartClearsTheFlagWhileItsDigestIsTheStoredOne) {
    track("@a:b.org", 1);
    query_result first = answer("@a:b.org", 1, {device("@a:b.org", "D1")});
    first.users[0].digest = digest_of(1);
    first.users[0].cross_signing_keys = std::vector<cross_signing_key>{master_key("@a:b.org")};
    must(db().devices().apply_query_result(first));
    const std::int64_t cursor = must(db().outbox().last_cursor());

    auto repeated = [](std::int64_t generation, timestamp_ms at, std::uint8_t digest) {
        query_result r = answer("@a:b.org", generation, {}, at);
        r.users[0].unchanged = true;
        r.users[0].same_digest = true;
        r.users[0].digest = digest_of(digest);
        return r;
    };
    mark_outdated("@a:b.org", 2);
    EXPECT_EQ(must(db().devices().apply_query_result(repeated(2, 6000, 1))).cleared,
              std::vector<std::string>{"@a:b.org"});
    EXPECT_EQ(must(db().tracking().find("@a:b.org"))->last_refreshed_at, 6000);
    EXPECT_EQ(must(db().devices().find("@a:b.org", "D1"))->last_seen, 5000);

    // Another digest is stored by now: the answer says nothing certain, the user stays
    // outdated and nothing is written.
    mark_outdated("@a:b.org", 3);
    auto outcome = must(db().devices().apply_query_result(repeated(3, 7000, 9)));
    EXPECT_EQ(outcome.still_outdated, std::vector<std::string>{"@a:b.org"});
    EXPECT_TRUE(must(db().tracking().find("@a:b.org"))->outdated);
    EXPECT_EQ(must(db().devices().answer_digest_of("@a:b.org")), digest_of(1));

    // The generation moved meanwhile: still outdated.
    mark_outdated("@a:b.org", 4);
    outcome = must(db().devices().apply_query_result(repeated(3, 7000, 1)));
    EXPECT_EQ(outcome.still_outdated, std::vector<std::string>{"@a:b.org"});

    // Once last_seen is due, it is refreshed for every device and key the part lists.
    const timestamp_ms later = 5000 + last_seen_resolution_ms;
    outcome = must(db().devices().apply_query_result(repeated(4, later, 1)));
    EXPECT_EQ(outcome.cleared, std::vector<std::string>{"@a:b.org"});
    EXPECT_EQ(must(db().devices().find("@a:b.org", "D1"))->last_seen, later);
    EXPECT_EQ(must(db().devices().cross_signing_keys_of("@a:b.org")).at(0).last_seen, later);
    EXPECT_TRUE(outcome.device_changes.empty());
    EXPECT_TRUE(events_after(cursor).empty());

    // Untracked meanwhile: nothing stored.
    query_result gone = repeated(4, later, 1);
    gone.users[0].user_id = "@gone:b.org";
    EXPECT_EQ(must(db().devices().apply_query_result(gone)).not_tracked,
              std::vector<std::string>{"@gone:b.org"});
}

TEST_F(DeviceStoreTest, ChangedDeviceIsUpdatedAndAnnounced) {
    track("@a:b.org", 1);
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")})));
    const std::int64_t cursor = must(db().outbox().last_cursor());
    device_record renamed = device("@a:b.org", "D1");
    renamed.display_name = "laptop";
    query_outcome outcome =
        must(db().devices().apply_query_result(answer("@a:b.org", 1, {renamed}, 6000)));
    ASSERT_EQ(outcome.device_changes.size(), 1u);
    EXPECT_EQ(outcome.device_changes[0].kind, device_change_kind::changed);
    EXPECT_EQ(must(db().devices().find("@a:b.org", "D1"))->display_name, "laptop");
    auto events = events_after(cursor);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, outbox_type::device_changed);
}

TEST_F(DeviceStoreTest, MissingDeviceIsSoftDeletedAndRevivedWhenItReturns) {
    track("@a:b.org", 1);
    must(db().devices().apply_query_result(
        answer("@a:b.org", 1, {device("@a:b.org", "D1"), device("@a:b.org", "D2")})));
    const std::int64_t cursor = must(db().outbox().last_cursor());

    query_outcome outcome = must(
        db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")}, 6000)));
    ASSERT_EQ(outcome.device_changes.size(), 1u);
    EXPECT_EQ(outcome.device_changes[0].kind, device_change_kind::removed);
    EXPECT_EQ(outcome.device_changes[0].device_id, "D2");
    auto live = must(db().devices().devices_of("@a:b.org"));
    ASSERT_EQ(live.size(), 1u);
    EXPECT_EQ(live[0].device_id, "D1");
    // Still findable, marked deleted: an Olm message from its key names a former device.
    auto gone = must(db().devices().find("@a:b.org", "D2"));
    ASSERT_TRUE(gone);
    EXPECT_EQ(gone->deleted_at, 6000);
    auto by_key = must(db().devices().device_by_curve25519("cv-D2-1"));
    ASSERT_TRUE(by_key);
    EXPECT_EQ(by_key->deleted_at, 6000);
    auto events = events_after(cursor);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].type, outbox_type::device_removed);

    // Deleting again changes nothing.
    outcome = must(
        db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")}, 6500)));
    EXPECT_TRUE(outcome.device_changes.empty());
    EXPECT_EQ(must(db().devices().find("@a:b.org", "D2"))->deleted_at, 6000);

    outcome = must(db().devices().apply_query_result(
        answer("@a:b.org", 1, {device("@a:b.org", "D1"), device("@a:b.org", "D2")}, 7000)));
    ASSERT_EQ(outcome.device_changes.size(), 1u);
    EXPECT_EQ(outcome.device_changes[0].kind, device_change_kind::added);
    auto back = must(db().devices().find("@a:b.org", "D2"));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->deleted_at, std::nullopt);
    EXPECT_EQ(back->first_seen, 5000);
    EXPECT_EQ(back->last_seen, 7000);
}

TEST_F(DeviceStoreTest, LiveDeviceWinsTheCurve25519Lookup) {
    track("@a:b.org", 1);
    device_record old_device = device("@a:b.org", "OLD");
    device_record new_device = device("@a:b.org", "NEW");
    new_device.curve25519 = old_device.curve25519;  // a key reused by another device
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {old_device})));
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {new_device}, 6000)));
    auto found = must(db().devices().device_by_curve25519(old_device.curve25519));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->device_id, "NEW");
}

TEST_F(DeviceStoreTest, Curve25519LookupPrefersALiveDeviceThenTheOneSeenLast) {
    // One key on devices of three users (a reused or copied key): whatever order they were
    // stored in, a live device wins, and among deleted ones the one seen last.
    for (const char* user : {"@a:b.org", "@b:b.org", "@c:b.org"})
        track(user, 1);
    auto with_key = [](const std::string& user, const std::string& id) {
        device_record d = device(user, id);
        d.curve25519 = "shared-key";
        return d;
    };
    auto gone_at = [this](const std::string& user, std::int64_t at) {
        must(db().devices().apply_query_result(answer(user, 1, {}, at)));
    };
    must(db().devices().apply_query_result(
        answer("@b:b.org", 1, {with_key("@b:b.org", "B")}, 7000)));
    gone_at("@b:b.org", 8000);
    must(db().devices().apply_query_result(
        answer("@a:b.org", 1, {with_key("@a:b.org", "A")}, 5000)));
    gone_at("@a:b.org", 6000);
    auto found = must(db().devices().device_by_curve25519("shared-key"));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->device_id, "B");  // both deleted: B was seen last (7000 against 5000)

    must(db().devices().apply_query_result(
        answer("@c:b.org", 1, {with_key("@c:b.org", "C")}, 6500)));
    found = must(db().devices().device_by_curve25519("shared-key"));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->device_id, "C");  // live, though seen before B
    EXPECT_EQ(found->deleted_at, std::nullopt);
}

TEST_F(DeviceStoreTest, RaceGuardKeepsUserOutdatedWhenGenerationMoved) {
    track("@a:b.org", 3);
    // /keys/query sent at generation 3; meanwhile /sync marked the user outdated again (4).
    mark_outdated("@a:b.org", 4);
    query_outcome outcome =
        must(db().devices().apply_query_result(answer("@a:b.org", 3, {device("@a:b.org", "D1")})));
    EXPECT_TRUE(outcome.cleared.empty());
    EXPECT_EQ(outcome.still_outdated, std::vector<std::string>{"@a:b.org"});
    auto user = must(db().tracking().find("@a:b.org"));
    ASSERT_TRUE(user);
    EXPECT_TRUE(user->outdated);
    EXPECT_EQ(user->generation, 4);
    EXPECT_EQ(user->last_refreshed_at, std::nullopt);
    // The devices of the older answer are still stored.
    EXPECT_EQ(must(db().devices().devices_of("@a:b.org")).size(), 1u);

    outcome =
        must(db().devices().apply_query_result(answer("@a:b.org", 4, {device("@a:b.org", "D1")})));
    EXPECT_EQ(outcome.cleared, std::vector<std::string>{"@a:b.org"});
    EXPECT_FALSE(must(db().tracking().find("@a:b.org"))->outdated);
}

TEST_F(DeviceStoreTest, ClearOutdatedFalseKeepsTheUserOutdated) {
    track("@a:b.org", 1);
    query_result result = answer("@a:b.org", 1, {});
    result.users[0].clear_outdated = false;
    query_outcome outcome = must(db().devices().apply_query_result(result));
    EXPECT_EQ(outcome.still_outdated, std::vector<std::string>{"@a:b.org"});
    EXPECT_TRUE(must(db().tracking().find("@a:b.org"))->outdated);
}

TEST_F(DeviceStoreTest, UserUntrackedInFlightIsNotStored) {
    query_outcome outcome = must(
        db().devices().apply_query_result(answer("@gone:b.org", 1, {device("@gone:b.org", "D")})));
    EXPECT_EQ(outcome.not_tracked, std::vector<std::string>{"@gone:b.org"});
    EXPECT_EQ(must(db().devices().find("@gone:b.org", "D")), std::nullopt);
    EXPECT_TRUE(outbox_events().empty());
}

TEST_F(DeviceStoreTest, CrossSigningKeysAreReplacedPerUsage) {
    track("@a:b.org", 1);
    query_result first = answer("@a:b.org", 1, {});
    first.users[0].cross_signing_keys = std::vector<cross_signing_key>{
        master_key("@a:b.org", "M1", R"({"m":1})"),
        {.user_id = "@a:b.org",
         .usage = key_usage::self_signing,
         .public_key = "S1",
         .signed_json = R"({"s":1})",
         .verified = true},
    };
    must(db().devices().apply_query_result(first));
    auto keys = must(db().devices().cross_signing_keys_of("@a:b.org"));
    ASSERT_EQ(keys.size(), 2u);
    EXPECT_EQ(keys[0].usage, key_usage::master);
    EXPECT_EQ(keys[0].signed_json, R"({"m":1})");
    EXPECT_EQ(keys[1].usage, key_usage::self_signing);

    // Same master key seen again an hour later; self-signing key gone.
    const std::int64_t later = 5000 + last_seen_resolution_ms;
    query_result second = answer("@a:b.org", 1, {}, later);
    second.users[0].cross_signing_keys =
        std::vector<cross_signing_key>{master_key("@a:b.org", "M1", R"({"m":1})")};
    must(db().devices().apply_query_result(second));
    keys = must(db().devices().cross_signing_keys_of("@a:b.org"));
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0].first_seen, 5000);
    EXPECT_EQ(keys[0].last_seen, later);

    // A new master key is a new key: first_seen starts again.
    query_result third = answer("@a:b.org", 1, {}, 7000);
    third.users[0].cross_signing_keys =
        std::vector<cross_signing_key>{master_key("@a:b.org", "M2", R"({"m":2})", false)};
    must(db().devices().apply_query_result(third));
    keys = must(db().devices().cross_signing_keys_of("@a:b.org"));
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0].public_key, "M2");
    EXPECT_FALSE(keys[0].verified);
    EXPECT_EQ(keys[0].first_seen, 7000);

    // Absent (nullopt): unchanged.
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {}, 8000)));
    EXPECT_EQ(must(db().devices().cross_signing_keys_of("@a:b.org")).size(), 1u);
}

TEST_F(DeviceStoreTest, BackoffSecurityAndOutboxEventsAreWrittenWithTheAnswer) {
    track("@a:b.org", 1);
    query_result result = answer("@a:b.org", 1, {device("@a:b.org", "D1")});
    result.failed_servers.push_back({"down.org", 2, 90000});
    result.security_events.push_back({.at = 5000,
                                      .kind = "device_key_changed",
                                      .user_id = "@a:b.org",
                                      .device_id = "D1",
                                      .detail_json = R"({"old":"x"})"});
    result.outbox_events.push_back({0, 5000, "key_conflict", R"({"user_id":"@a:b.org"})"});
    must(db().devices().apply_query_result(result));

    auto backoff = must(db().tracking().load_server_backoffs());
    ASSERT_EQ(backoff.size(), 1u);
    EXPECT_EQ(backoff[0].server_name, "down.org");
    EXPECT_EQ(backoff[0].consecutive_failures, 2);
    EXPECT_EQ(backoff[0].retry_at, 90000);
    auto log = must(db().security().recent(10));
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].kind, "device_key_changed");
    auto events = outbox_events();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].type, outbox_type::device_added);  // the store's own events first
    EXPECT_EQ(events[1].type, "key_conflict");

    query_result again;
    again.at = 6000;
    again.failed_servers.push_back({"down.org", 3, 150000});
    must(db().devices().apply_query_result(again));
    EXPECT_EQ(must(db().tracking().load_server_backoffs())[0].consecutive_failures, 3);
    query_result recovered;
    recovered.answered_servers.push_back("down.org");
    must(db().devices().apply_query_result(recovered));
    EXPECT_TRUE(must(db().tracking().load_server_backoffs()).empty());
}

TEST_F(DeviceStoreTest, FailingAnswerChangesNothing) {
    track("@a:b.org", 1);
    query_result result = answer("@a:b.org", 1, {device("@a:b.org", "D1")});
    result.security_events.push_back({.at = 1, .kind = "x", .detail_json = "not json"});
    auto r = db().devices().apply_query_result(result);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_TRUE(must(db().devices().devices_of("@a:b.org")).empty());
    EXPECT_TRUE(must(db().tracking().find("@a:b.org"))->outdated);
    EXPECT_TRUE(outbox_events().empty());
}

TEST_F(DeviceStoreTest, AnswersUseNormalDurability) {
    track("@a:b.org", 1);
    testing::synchronous_tracer tracer(db().database());
    must(db().devices().apply_query_result(answer("@a:b.org", 1, {device("@a:b.org", "D1")})));
    EXPECT_EQ(tracer.levels_of("INSERT INTO devices"), std::vector<std::string>{"NORMAL"});
}

}  // namespace
}  // namespace devlist::storage
