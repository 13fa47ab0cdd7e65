// The store checker itself (tests/support/store_checker.hpp): it passes on a store the engine
// brought up to date, and names the fault when the store is made wrong behind the engine's back
// — a device row gone, a key altered, a flag flipped, a key's private part lost, an event
// skipped or repeated. A checker that cannot fail would prove nothing.
#include <algorithm>

#include "checked_engine_fixture.hpp"

namespace devlist::test {
namespace {

class store_checker_test : public checked_engine_fixture {
  protected:
    // A converged run, stopped: the store is at rest and the checker passes on it.
    void converge_and_stop() {
        start();
        ASSERT_TRUE(run_until_converged());
        stop();
        const auto problems = check();
        ASSERT_TRUE(problems.empty()) << describe(problems);
    }

    void sql(const std::string& statement) {
        auto r = store->database().exec(statement);
        ASSERT_TRUE(r) << statement << ": " << r.error().message();
    }

    // Whether some problem mentions every one of `words`.
    static bool mentions(const problem_list& problems, std::initializer_list<std::string> words) {
        return std::any_of(problems.begin(), problems.end(), [&](const std::string& p) {
            return std::all_of(words.begin(), words.end(),
                               [&](const std::string& w) { return p.find(w) != p.npos; });
        });
    }
};

TEST_F(store_checker_test, passes_on_a_store_the_engine_brought_up_to_date) {
    converge_and_stop();
    // The consumer saw every device once; a second look changes nothing.
    EXPECT_GT(consumer.last_read(), 0);
    const auto again = check();
    EXPECT_TRUE(again.empty()) << describe(again);
}

TEST_F(store_checker_test, a_deleted_device_row_is_found) {
    converge_and_stop();
    sql("DELETE FROM devices WHERE user_id = '@alice:localhost' AND device_id = 'ALICE2'");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {alice, "lacks device ALICE2"})) << describe(problems);
}

TEST_F(store_checker_test, an_altered_device_key_is_found) {
    converge_and_stop();
    sql("UPDATE devices SET curve25519 = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' "
        "WHERE user_id = '@bob:localhost' AND device_id = 'BOB1'");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {bob, "curve25519 key of device BOB1"})) << describe(problems);
}

TEST_F(store_checker_test, a_user_wrongly_marked_fresh_is_found) {
    converge_and_stop();
    // Bob got a device the store knows nothing of, and the stored position claims the change was
    // seen: bob, still fresh, is wrong.
    hs.add_device(bob, "BOB9");
    sql("UPDATE sync_state SET next_batch = '" + hs.sync_token() + "'");
    auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {bob, "is fresh but lacks device BOB9"})) << describe(problems);
    // Outdated, bob is allowed to lag behind; only the run is not over.
    sql("UPDATE tracked_users SET outdated = 1 WHERE user_id = '@bob:localhost'");
    problems = check_store(*store, hs, checks);
    EXPECT_FALSE(mentions(problems, {"lacks device BOB9"})) << describe(problems);
    EXPECT_TRUE(mentions(problems, {bob, "still outdated"})) << describe(problems);
    checks.expect_all_fresh = false;
    problems = check_store(*store, hs, checks);
    EXPECT_TRUE(problems.empty()) << describe(problems);
}

TEST_F(store_checker_test, a_flag_flipped_to_fresh_before_a_change_was_fetched_is_found) {
    converge_and_stop();
    hs.add_device(alice, "ALICE9");
    // Unsynced, the change is not yet the store's to know.
    auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(problems.empty()) << describe(problems);
    // Synced (outdated) and then, wrongly, cleared without a query.
    restart();
    ASSERT_TRUE(run_until_converged());
    stop();
    sql("UPDATE devices SET deleted_at = 1 WHERE user_id = '@alice:localhost' AND "
        "device_id = 'ALICE9'");
    problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {alice, "lacks device ALICE9"})) << describe(problems);
}

TEST_F(store_checker_test, a_next_batch_ahead_of_the_homeserver_is_found) {
    converge_and_stop();
    sql("UPDATE sync_state SET next_batch = 's" + std::to_string(hs.stream_position() + 5) + "'");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"next_batch", "ahead of the homeserver"}))
        << describe(problems);
}

TEST_F(store_checker_test, a_wrong_tracked_set_is_found) {
    converge_and_stop();
    sql("DELETE FROM tracked_users WHERE user_id = '@bob:localhost'");
    sql("INSERT INTO tracked_users (user_id, server_name, reasons, outdated, generation) "
        "VALUES ('@carol:localhost', 'localhost', 2, 0, 1)");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {bob, "is not tracked"})) << describe(problems);
    EXPECT_TRUE(mentions(problems, {carol, "is tracked but shares no encrypted room"}))
        << describe(problems);
}

TEST_F(store_checker_test, a_lost_or_altered_private_key_is_found) {
    converge_and_stop();
    auto keys = store->one_time_keys().all();
    ASSERT_TRUE(keys);
    ASSERT_GE(keys->size(), 3u);
    const auto& lost = (*keys)[0];
    const auto& swapped = (*keys)[1];
    const auto& broken = (*keys)[2];
    sql("DELETE FROM one_time_keys WHERE key_id = '" + lost.key_id + "'");
    sql("UPDATE one_time_keys SET public_key = 'x' || public_key WHERE key_id = '" +
        swapped.key_id + "'");
    // Another key's sealed secret: it does not open under this key's context.
    sql("UPDATE one_time_keys SET sealed_private = (SELECT sealed_private FROM one_time_keys "
        "WHERE key_id = '" +
        swapped.key_id + "') WHERE key_id = '" + broken.key_id + "'");
    sql("DELETE FROM fallback_keys");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(
        mentions(problems, {"one-time key signed_curve25519:" + lost.key_id, "no private part"}))
        << describe(problems);
    EXPECT_TRUE(
        mentions(problems, {"one-time key signed_curve25519:" + swapped.key_id, "in the store"}))
        << describe(problems);
    EXPECT_TRUE(
        mentions(problems, {"one-time key signed_curve25519:" + broken.key_id, "does not open"}))
        << describe(problems);
    EXPECT_TRUE(mentions(problems, {"fallback key", "no private part"})) << describe(problems);
}

TEST_F(store_checker_test, a_claimed_key_may_be_missing_only_beyond_the_pruning_cap) {
    converge_and_stop();
    auto claimed = hs.claim_one_time_key(bot, device);
    ASSERT_TRUE(claimed);
    const std::string id = claimed->as_object().begin()->first;
    sql("DELETE FROM one_time_keys WHERE key_id = '" + id.substr(id.find(':') + 1) + "'");
    auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"claimed one-time key " + id, "no private part"}))
        << describe(problems);
    checks.one_time_keys_kept = 49;  // the store pruned down to its cap: allowed
    problems = check_store(*store, hs, checks);
    EXPECT_TRUE(problems.empty()) << describe(problems);
}

TEST_F(store_checker_test, a_key_id_used_twice_is_found) {
    converge_and_stop();
    auto keys = store->one_time_keys().all();
    ASSERT_TRUE(keys);
    auto fallback = store->fallback_keys().current();
    ASSERT_TRUE(fallback && *fallback);
    // The fallback key takes the ID of a published one-time key.
    sql("UPDATE fallback_keys SET key_id = '" + keys->back().key_id + "'");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"key ID " + keys->back().key_id, "fallback key"}))
        << describe(problems);
}

TEST_F(store_checker_test, a_device_announced_twice_or_never_is_found) {
    converge_and_stop();
    // A second device_added for BOB1, which the consumer then reads.
    auto bob1 = store->devices().find(bob, "BOB1");
    ASSERT_TRUE(bob1 && *bob1);
    ASSERT_TRUE(store->outbox().append_device_event(storage::outbox_type::device_added, **bob1, 1));
    auto problems = check();
    EXPECT_TRUE(mentions(problems, {"announces device BOB1", "2 times"})) << describe(problems);
}

TEST_F(store_checker_test, a_consumer_that_skipped_or_got_an_acknowledged_event_again_is_found) {
    converge_and_stop();
    const auto last = consumer.last_read();
    ASSERT_GT(last, 3);
    auto events = store->outbox().read_after(last - 3, 10);
    ASSERT_TRUE(events);
    ASSERT_EQ(events->size(), 0u);  // acknowledged and pruned
    // A forged history: events handed out again after their acknowledgement, and a gap.
    consumer_view wrong("default");
    storage::outbox_event e1{.cursor = 1, .at = 0, .type = "x", .payload_json = "{}"};
    storage::outbox_event e3{.cursor = 3, .at = 0, .type = "x", .payload_json = "{}"};
    wrong.on_read({e1}, 0);
    wrong.on_acknowledged(1);
    wrong.on_read({e1, e3}, 0);
    checks.consumer = &wrong;
    checks.consumer_drained = false;
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"handed event 1 again after acknowledging 1"}))
        << describe(problems);
    EXPECT_TRUE(mentions(problems, {"read event 3 right after 1"})) << describe(problems);
    EXPECT_TRUE(mentions(problems, {"never saw events 2 to 2"})) << describe(problems);
}

TEST_F(store_checker_test, a_lost_acknowledgement_is_found) {
    converge_and_stop();
    const auto last = consumer.last_read();
    // The store forgets the acknowledgement the consumer was given.
    sql("UPDATE outbox_consumers SET acknowledged = 0 WHERE name = 'default'");
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"had cursor " + std::to_string(last) + " acknowledged"}))
        << describe(problems);
}

TEST_F(store_checker_test, a_server_that_refused_a_reused_key_id_is_found) {
    converge_and_stop();
    auto keys = store->one_time_keys().all();
    ASSERT_TRUE(keys);
    // Another client (same token) uploads another key under one of our IDs; the server refuses
    // it, and the checker reports that a conflict ever happened.
    const testing::session s = hs.login(bot, device);
    json::value body = json::object{
        {"one_time_keys",
         json::object{{"signed_curve25519:" + keys->back().key_id,
                       json::object{{"key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}}}};
    restart();
    sync::http_request request{.method = sync::http_method::post,
                               .target = "/_matrix/client/v3/keys/upload",
                               .body = json::to_canonical(body),
                               .bearer_token = s.access_token};
    std::optional<result<sync::http_response>> answer;
    boost::asio::co_spawn(
        io, http->request(request),
        [&](std::exception_ptr, result<sync::http_response> r) { answer = std::move(r); });
    ASSERT_TRUE(run_until([&] { return answer.has_value(); }));
    ASSERT_TRUE(*answer);
    EXPECT_EQ((*answer)->status, 400u);
    stop();
    const auto problems = check_store(*store, hs, checks);
    EXPECT_TRUE(mentions(problems, {"refused an upload of a reused one-time key ID"}))
        << describe(problems);
}

}  // namespace
}  // namespace devlist::test
