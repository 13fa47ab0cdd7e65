// The sync engine against the spec-faithful test homeserver: each behaviour of issue 3.
#include <algorithm>

#include "engine_fixture.hpp"
#include "sync/key_verifier.hpp"

namespace devlist::test {
namespace {

using testing::fault;
namespace fault_action = testing::fault_action;

class sync_engine_test : public engine_fixture {
  protected:
    std::string room;

    // Alice (two devices) and Bob share an encrypted room with the bot; Carol shares only an
    // unencrypted one.
    void standard_rooms() {
        for (const char* u : {"@alice:localhost", "@bob:localhost", "@carol:localhost"}) {
            hs.add_user(u, "pw");
        }
        hs.add_device("@alice:localhost", "ALICE1", "Alice's laptop");
        hs.add_device("@alice:localhost", "ALICE2", "Alice's phone");
        hs.add_device("@bob:localhost", "BOB1");
        hs.add_device("@carol:localhost", "CAROL1");
        room = hs.create_room("@alice:localhost", true);
        hs.join(room, "@bob:localhost");
        hs.join(room, bot);
        std::string plain = hs.create_room("@carol:localhost", false);
        hs.join(plain, bot);
    }

    bool all_fresh() {
        return engine && engine->status().outdated == 0 && engine->status().syncs > 0;
    }
};

TEST_F(sync_engine_test, initial_sync_tracks_members_of_encrypted_rooms_and_fetches_verified_keys) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@bob:localhost", "BOB1"); }));
    auto alice = devices_of("@alice:localhost");
    ASSERT_EQ(alice.size(), 2u);
    auto served = hs.served_device_keys("@alice:localhost", "ALICE1");
    ASSERT_TRUE(served);
    const auto& a1 = alice[0].device_id == "ALICE1" ? alice[0] : alice[1];
    EXPECT_EQ(a1.ed25519, (*served)["keys"]["ed25519:ALICE1"].as_string());
    EXPECT_EQ(a1.display_name, "Alice's laptop");
    EXPECT_TRUE(tracked(bot));  // the own user is always tracked
    EXPECT_FALSE(tracked("@carol:localhost"));
    EXPECT_TRUE(devices_of("@carol:localhost").empty());
    EXPECT_TRUE(logged("sync s"));
    EXPECT_TRUE(logged("/keys/query: "));
}

TEST_F(sync_engine_test, a_new_device_is_announced_by_changed_and_fetched) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    hs.add_device("@bob:localhost", "BOB2", "Bob's new phone");
    ASSERT_TRUE(run_until([&] { return has_device("@bob:localhost", "BOB2") && all_fresh(); }));
}

TEST_F(sync_engine_test, a_change_during_an_in_flight_query_is_queried_again) {
    standard_rooms();
    options.queries_in_flight = 1;
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    auto bob_queries = [&] {
        std::size_t n = 0;
        for (const auto& r : hs.requests()) {
            if (r.path.ends_with("/keys/query") &&
                r.request_body.find("@bob:localhost") != std::string::npos) {
                ++n;
            }
        }
        return n;
    };
    std::size_t before = bob_queries();
    // The next /keys/query is slow; Bob adds a device, and another one while it is in flight.
    hs.inject(fault{"/_matrix/client/v3/keys/query",
                    fault_action::delay{std::chrono::milliseconds(700)}, "POST", 1});
    hs.add_device("@bob:localhost", "BOB3");
    ASSERT_TRUE(run_until([&] { return engine->status().users_in_flight > 0; }));
    auto syncs = engine->status().syncs;
    hs.add_device("@bob:localhost", "BOB4");
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > syncs; }));
    EXPECT_GT(engine->status().users_in_flight, 0u);  // the change arrived mid-flight
    ASSERT_TRUE(run_until([&] { return has_device("@bob:localhost", "BOB4") && all_fresh(); }));
    EXPECT_TRUE(has_device("@bob:localhost", "BOB3"));
    // The answer to the slow query could not clear Bob: his stamp had moved, so he was asked
    // for again.
    EXPECT_GE(bob_queries(), before + 2);
    EXPECT_TRUE(logged("1 changed again meanwhile"));
}

TEST_F(sync_engine_test, leaving_the_last_shared_encrypted_room_untracks) {
    standard_rooms();
    std::string second = hs.create_room("@alice:localhost", true);
    hs.join(second, bot);
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@alice:localhost", "ALICE1"); }));
    hs.leave(room, "@alice:localhost");  // still in `second`
    hs.leave(room, "@bob:localhost");    // Bob's only shared room
    ASSERT_TRUE(run_until([&] { return !tracked("@bob:localhost"); }));
    EXPECT_TRUE(devices_of("@bob:localhost").empty());
    EXPECT_TRUE(tracked("@alice:localhost"));
    EXPECT_EQ(devices_of("@alice:localhost").size(), 2u);
}

TEST_F(sync_engine_test, failures_keep_users_outdated_and_are_retried_with_backoff) {
    standard_rooms();
    hs.add_user("@zoe:remote.test");
    hs.add_device("@zoe:remote.test", "ZOE1");
    hs.join(room, "@zoe:remote.test");
    hs.set_server_reachable("remote.test", false);
    start();
    ASSERT_TRUE(run_until([&] { return logged("server remote.test failed"); }));
    ASSERT_TRUE(run_until([&] { return is_fresh("@bob:localhost"); }));
    EXPECT_FALSE(is_fresh("@zoe:remote.test"));
    EXPECT_TRUE(devices_of("@zoe:remote.test").empty());
    hs.set_server_reachable("remote.test", true);
    ASSERT_TRUE(run_until([&] { return has_device("@zoe:remote.test", "ZOE1") && all_fresh(); }));
}

TEST_F(sync_engine_test, a_forged_device_is_rejected_and_recorded) {
    standard_rooms();
    hs.forge_device("@bob:localhost", "EVIL");
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@bob:localhost", "BOB1"); }));
    EXPECT_FALSE(has_device("@bob:localhost", "EVIL"));
    auto events = security_events();
    ASSERT_TRUE(std::any_of(events.begin(), events.end(), [](const auto& e) {
        return e.kind == sync::security_kind::device_rejected && e.device_id == "EVIL";
    }));
    EXPECT_EQ(engine->status().devices_rejected, 1u);
}

TEST_F(sync_engine_test, a_changed_ed25519_key_is_rejected_and_the_old_one_kept) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@bob:localhost", "BOB1"); }));
    std::string before = devices_of("@bob:localhost").at(0).ed25519;
    hs.change_device_keys("@bob:localhost", "BOB1");
    ASSERT_TRUE(run_until([&] {
        auto events = security_events();
        return std::any_of(events.begin(), events.end(), [](const auto& e) {
            return e.kind == sync::security_kind::device_key_changed;
        });
    }));
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    auto bob = devices_of("@bob:localhost");
    ASSERT_EQ(bob.size(), 1u);
    EXPECT_EQ(bob[0].ed25519, before);
    // Bob is queried again (a new device); the refused key is not recorded a second time.
    hs.add_device("@bob:localhost", "BOB7");
    ASSERT_TRUE(run_until([&] { return has_device("@bob:localhost", "BOB7") && all_fresh(); }));
    auto events = security_events();
    EXPECT_EQ(std::count_if(
                  events.begin(), events.end(),
                  [](const auto& e) { return e.kind == sync::security_kind::device_key_changed; }),
              1);
    EXPECT_EQ(devices_of("@bob:localhost").size(), 2u);
}

TEST_F(sync_engine_test, a_removed_device_is_removed) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@alice:localhost", "ALICE2"); }));
    hs.remove_device("@alice:localhost", "ALICE2");
    ASSERT_TRUE(run_until([&] { return !has_device("@alice:localhost", "ALICE2"); }));
    EXPECT_TRUE(has_device("@alice:localhost", "ALICE1"));
}

TEST_F(sync_engine_test, cross_signing_keys_are_stored_and_the_chain_verified) {
    standard_rooms();
    hs.bootstrap_cross_signing("@alice:localhost");
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@alice:localhost", "ALICE1"); }));
    for (const auto& d : devices_of("@alice:localhost"))
        EXPECT_TRUE(d.cross_signed) << d.device_id;
    for (const auto& d : devices_of("@bob:localhost"))
        EXPECT_FALSE(d.cross_signed);
    auto keys = store->devices().cross_signing_keys_of("@alice:localhost");
    ASSERT_TRUE(keys);
    EXPECT_EQ(keys->size(), 2u);  // master and self-signing (user-signing: own user only)
    // A new master key is accepted and recorded as a change.
    hs.change_master_key("@alice:localhost");
    ASSERT_TRUE(run_until([&] {
        auto events = security_events();
        return std::any_of(events.begin(), events.end(), [](const auto& e) {
            return e.kind == sync::security_kind::master_key_changed;
        });
    }));
}

TEST_F(sync_engine_test, a_rejected_sync_token_is_caught_up_with_keys_changes) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    hs.inject(fault{"/_matrix/client/v3/sync", fault_action::reject_sync_token{}, "GET", 1});
    hs.add_device("@bob:localhost", "BOB9");
    ASSERT_TRUE(run_until([&] { return logged("catch-up: /keys/changes"); }));
    EXPECT_TRUE(logged("rejected sync token"));
    ASSERT_TRUE(run_until([&] { return has_device("@bob:localhost", "BOB9") && all_fresh(); }));
}

TEST_F(sync_engine_test, state_survives_a_restart_and_changes_meanwhile_are_seen) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    auto token = store->sync().load_sync_state()->next_batch;
    ASSERT_TRUE(token);
    stop();
    hs.add_device("@alice:localhost", "ALICE3");  // while devlistd is down
    restart();
    ASSERT_TRUE(run_until([&] { return has_device("@alice:localhost", "ALICE3") && all_fresh(); }));
    EXPECT_TRUE(logged("from sync token"));
}

TEST_F(sync_engine_test, rate_limits_and_server_errors_are_retried) {
    standard_rooms();
    hs.inject(fault{"/_matrix/client/v3/sync",
                    fault_action::rate_limit{std::chrono::milliseconds(50)}, "GET", 1});
    hs.inject(fault{"/_matrix/client/v3/keys/query", fault_action::server_error{502}, "POST", 2});
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh() && has_device("@bob:localhost", "BOB1"); }));
    EXPECT_TRUE(logged("HTTP 429"));
    EXPECT_TRUE(logged("HTTP 502"));
}

TEST_F(sync_engine_test, a_revoked_token_is_replaced_by_logging_in_again) {
    standard_rooms();
    start();
    ASSERT_TRUE(run_until([&] { return all_fresh(); }));
    hs.inject(fault{"/_matrix/client/v3/sync", fault_action::revoke_access_token{}, "GET", 1});
    hs.add_device("@bob:localhost", "BOB5");
    ASSERT_TRUE(run_until([&] { return has_device("@bob:localhost", "BOB5"); }));
    EXPECT_TRUE(logged("revoked the access token"));
    EXPECT_EQ(engine->status().device_id, "BOTDEVICE");
}

TEST_F(sync_engine_test, a_refused_token_without_password_stops_with_a_clear_error) {
    standard_rooms();
    options.password.reset();
    options.access_token = "not-a-token";
    start();
    ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
    ASSERT_FALSE(*ended);
    EXPECT_NE(ended->error().message().find("access token was refused"), std::string::npos)
        << ended->error().message();
}

}  // namespace
}  // namespace devlist::test

namespace devlist::test {
namespace {

TEST_F(engine_fixture, a_database_of_another_device_is_refused) {
    start();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > 0; }));
    stop();
    options.device_id = "OTHERDEVICE";
    restart();
    ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
    ASSERT_FALSE(*ended);
    EXPECT_NE(ended->error().message().find("the database belongs to device BOTDEVICE"),
              std::string::npos)
        << ended->error().message();
}

}  // namespace
}  // namespace devlist::test
