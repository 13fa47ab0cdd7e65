// Issue 7, "Faults": the engine against the test homeserver while the network and the server
// misbehave. For each fault the engine keeps running, recovers, picks up every change scripted
// meanwhile, and the store checker (tests/support/store_checker.hpp) passes afterwards.
//
// Each test proves its fault struck (the homeserver's fault queue is empty, or its request log
// shows the faulted request), so a fault that silently missed cannot pass for one survived.
// Backoffs are the fixture's short ones; waits are run_until() on the engine's io_context.
#include <algorithm>

#include "checked_engine_fixture.hpp"

namespace devlist::test {
namespace {

using testing::fault;
using testing::request_record;
namespace fault_action = testing::fault_action;
using namespace std::chrono_literals;

constexpr const char* sync_path = "/_matrix/client/v3/sync";
constexpr const char* query_path = "/_matrix/client/v3/keys/query";
constexpr const char* upload_path = "/_matrix/client/v3/keys/upload";

class fault_suite_test : public checked_engine_fixture {
  protected:
    void TearDown() override {
        if (HasFailure()) {
            for (const auto& r : hs.requests()) {
                std::fprintf(stderr, "request: %s %s -> %u\n", r.method.c_str(), r.target.c_str(),
                             r.status);
            }
        }
        checked_engine_fixture::TearDown();
    }

    // Start and converge on the standard rooms, with the checker passing.
    void start_and_converge() {
        start();
        ASSERT_TRUE(run_until_converged()) << "the engine did not converge at the start";
        expect_checker_passes();
    }

    // The engine still runs, has caught up with every change and the checker passes.
    void expect_recovered() {
        ASSERT_FALSE(ended.has_value()) << "the engine stopped";
        ASSERT_TRUE(run_until_converged()) << "the engine did not recover";
        ASSERT_FALSE(ended.has_value()) << "the engine stopped";
        expect_checker_passes();
    }

    void expect_checker_passes() {
        const auto problems = check();
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }

    void inject(const char* path, testing::fault_kind action, int count = 1,
                const char* method = "") {
        hs.inject(fault{path, std::move(action), method, count});
    }

    // Claims n of the bot's one-time keys as other clients would; the next /sync reports the
    // lower count and key maintenance uploads new keys.
    void claim_keys(int n) {
        for (int i = 0; i < n; ++i)
            ASSERT_TRUE(hs.claim_one_time_key(bot, device));
    }

    std::vector<request_record> requests_to(std::string_view path) const {
        std::vector<request_record> out;
        for (auto& r : hs.requests()) {
            if (r.path == path) out.push_back(std::move(r));
        }
        return out;
    }

    std::size_t queries_naming(const std::string& user, unsigned status = 200) const {
        std::size_t n = 0;
        for (const auto& r : requests_to(query_path)) {
            if (r.status == status && r.request_body.find(user) != std::string::npos) ++n;
        }
        return n;
    }

    std::uint64_t sync_failures() const { return engine->status().sync_failures; }
};

TEST_F(fault_suite_test, connection_refused_while_the_homeserver_is_down) {
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    hs.stop();
    more_changes("3");
    claim_keys(5);
    const auto failures = sync_failures();
    // The long-poll is cut, then every new connection is refused: the engine backs off.
    ASSERT_TRUE(run_until([&] { return sync_failures() >= failures + 2; }));
    EXPECT_EQ(engine->status().phase, sync::engine_phase::backing_off);
    ASSERT_TRUE(hs.resume());
    expect_recovered();
}

TEST_F(fault_suite_test, a_connection_reset_in_the_middle_of_a_body) {
    // The first /sync, the first /keys/query and the first /keys/upload (the identity keys,
    // which the server stores before the answer is cut) all lose half their answer.
    inject(sync_path, fault_action::truncate_body{});
    inject(query_path, fault_action::truncate_body{});
    inject(upload_path, fault_action::truncate_body{});
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    EXPECT_EQ(hs.pending_faults(), 0u);
    // Again mid-run, on a long-poll that had news, its queries, and a top-up of one-time keys.
    inject(sync_path, fault_action::truncate_body{});
    inject(query_path, fault_action::truncate_body{});
    inject(upload_path, fault_action::truncate_body{});
    more_changes("3");
    claim_keys(10);
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
}

TEST_F(fault_suite_test, a_long_poll_answered_long_after_its_timeout) {
    options.sync_timeout = 200ms;
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    // The server holds the next long-polls well past the 200 ms asked for (but within the
    // client's slack), while changes pile up; queries and uploads go on beside them.
    inject(sync_path, fault_action::delay{900ms}, 2);
    more_changes("3");
    claim_keys(5);
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
}

// The client gives up on a long-poll only after its timeout plus matrix_api.cpp's fixed slack
// of 15 s, so this test takes about 15 s (see the report: the slack is not configurable).
TEST_F(fault_suite_test, a_long_poll_that_hangs_past_its_timeout_is_abandoned) {
    options.sync_timeout = 100ms;
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    inject(sync_path, fault_action::hang{});
    hs.add_device(bob, "BOB3");  // the first answer of the hung request would have carried it
    const auto failures = sync_failures();
    ASSERT_TRUE(run_until([&] { return sync_failures() > failures; }, 20s))
        << "the engine never gave up on the hung long-poll";
    // Meanwhile nothing else stood still: key maintenance went on beside the hung request.
    more_changes("4");
    expect_recovered();
}

TEST_F(fault_suite_test, bursts_of_server_errors) {
    inject(sync_path, fault_action::server_error{500}, 4);
    inject(query_path, fault_action::server_error{502}, 3);
    inject(upload_path, fault_action::server_error{503}, 3);
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    EXPECT_EQ(hs.pending_faults(), 0u);
    inject(sync_path, fault_action::server_error{504}, 3);
    inject(query_path, fault_action::server_error{500}, 3);
    inject(upload_path, fault_action::server_error{500}, 3);
    more_changes("3");
    claim_keys(10);
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
}

TEST_F(fault_suite_test, rate_limited_with_retry_after) {
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    inject(sync_path, fault_action::rate_limit{100ms});
    inject(query_path, fault_action::rate_limit{100ms});
    inject(upload_path, fault_action::rate_limit{100ms});
    more_changes("3");
    claim_keys(10);
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
    for (const char* path : {sync_path, query_path, upload_path}) {
        const auto all = requests_to(path);
        EXPECT_TRUE(std::any_of(all.begin(), all.end(),
                                [](const request_record& r) { return r.status == 429; }))
            << path << " was never rate-limited";
    }
}

TEST_F(fault_suite_test, truncated_and_malformed_json) {
    const char* truncated = R"({"next_batch": "s1", "rooms": {"join": {)";
    inject(sync_path, fault_action::raw_response{200, truncated});
    inject(sync_path, fault_action::raw_response{200, "not json at all"});
    inject(sync_path, fault_action::raw_response{200, "[1, 2, 3]"});
    inject(sync_path, fault_action::raw_response{200, R"({"next_batch": 17})"});
    inject(query_path, fault_action::raw_response{200, R"({"device_keys": {"@alice:local)"});
    inject(query_path, fault_action::raw_response{200, R"({"device_keys": []})"});
    inject(upload_path, fault_action::raw_response{200, R"({"one_time_key_counts": {)"});
    inject(upload_path, fault_action::raw_response{200, R"({"one_time_key_counts": "many"})"});
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    EXPECT_EQ(hs.pending_faults(), 0u);
    // Mid-run too: a long-poll with news, the queries it causes, a top-up.
    inject(sync_path, fault_action::raw_response{200, truncated});
    inject(sync_path, fault_action::raw_response{200, "\xff\xfe{}"});
    inject(query_path, fault_action::raw_response{200, "{"});
    inject(upload_path, fault_action::raw_response{200, ""});
    more_changes("3");
    claim_keys(10);
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
}

TEST_F(fault_suite_test, a_revoked_access_token_is_replaced_by_a_new_login) {
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    const auto logins = requests_to("/_matrix/client/v3/login").size();
    inject(sync_path, fault_action::revoke_access_token{});
    more_changes("3");
    ASSERT_TRUE(run_until([&] { return logged("revoked the access token"); }));
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
    EXPECT_GT(requests_to("/_matrix/client/v3/login").size(), logins);
    // The new token keeps serving the same device: its keys are untouched (the checker
    // compared them), and key maintenance works with it.
    claim_keys(10);
    expect_recovered();
}

TEST_F(fault_suite_test, a_rejected_sync_token_is_caught_up_with_keys_changes) {
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    inject(sync_path, fault_action::reject_sync_token{});
    more_changes("3");
    hs.leave(room, bob);
    ASSERT_TRUE(run_until([&] { return logged("rejected sync token"); }));
    // The catch-up's marks are committed with the initial batch; until then the old token
    // stays stored and the store is consistent with it, so wait for the catch-up itself.
    ASSERT_TRUE(run_until([&] { return logged("catch-up: /keys/changes marked"); }));
    expect_recovered();
    EXPECT_EQ(hs.pending_faults(), 0u);
    EXPECT_FALSE(requests_to("/_matrix/client/v3/keys/changes").empty());
}

TEST_F(fault_suite_test, the_homeserver_restarted) {
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    // Restarted under a long-poll...
    hs.stop();
    ASSERT_TRUE(hs.resume());
    more_changes("3");
    expect_recovered();
    // ...and under a /keys/query it held without answering.
    inject(query_path, fault_action::hang{});
    more_changes("4");
    // The fault is taken when the query arrives; the engine runs on this thread, so the test
    // waits by running it rather than on the homeserver's request log.
    ASSERT_TRUE(run_until([&] { return hs.pending_faults() == 0; }));
    hs.stop();
    ASSERT_TRUE(hs.resume());
    expect_recovered();
}

TEST_F(fault_suite_test, a_server_in_failures_for_a_long_time) {
    const std::string zoe = "@zoe:remote.test";
    hs.add_user(zoe);
    hs.add_device(zoe, "ZOE1");
    hs.join(room, zoe);
    hs.set_server_reachable("remote.test", false);
    checks.unreachable_servers = {"remote.test"};
    start();
    // Everyone else converges; zoe stays outdated, asked again and again with backoff.
    auto others_settled = [&](const char* newest_bob_device) {
        const auto s = engine->status();
        return s.keys.fallback_published && hs.one_time_key_count(bot, device) == 50 &&
               is_fresh(alice) && is_fresh(bob) && has_device(bob, newest_bob_device) &&
               !is_fresh(zoe);
    };
    ASSERT_TRUE(run_until([&] { return others_settled("BOB1") && queries_naming(zoe) >= 3; }));
    EXPECT_TRUE(devices_of(zoe).empty());
    expect_checker_passes();
    // Changes of others are not held up by zoe's server.
    hs.add_device(bob, "BOB3");
    hs.add_device(zoe, "ZOE2");
    const auto asked = queries_naming(zoe);
    ASSERT_TRUE(run_until([&] { return others_settled("BOB3") && queries_naming(zoe) > asked; }));
    EXPECT_FALSE(is_fresh(zoe));
    expect_checker_passes();
    // The server comes back: zoe is fetched on the next retry.
    hs.set_server_reachable("remote.test", true);
    checks.unreachable_servers.clear();
    expect_recovered();
    EXPECT_TRUE(has_device(zoe, "ZOE2"));
}

TEST_F(fault_suite_test, the_fallback_key_fields_switch_between_unstable_and_stable) {
    testing::server_behaviour b;
    b.fallback_key_types = testing::fallback_key_types_field::unstable;
    hs.set_behaviour(b);
    ASSERT_NO_FATAL_FAILURE(start_and_converge());
    std::string fallback_id = *engine->status().keys.fallback_key_id;
    // Each time every one-time key and then the fallback key is claimed: the server reports it
    // used (in whichever field it now speaks) and the engine rotates it.
    for (auto field :
         {testing::fallback_key_types_field::stable, testing::fallback_key_types_field::unstable,
          testing::fallback_key_types_field::both}) {
        b.fallback_key_types = field;
        hs.set_behaviour(b);
        claim_keys(51);
        ASSERT_TRUE(run_until([&] {
            const auto k = engine->status().keys;
            return k.fallback_key_id && *k.fallback_key_id != fallback_id;
        })) << "the fallback key was not rotated";
        fallback_id = *engine->status().keys.fallback_key_id;
        expect_recovered();
    }
    // Every fallback key the server ever handed out kept its private part (the checker looked).
    EXPECT_EQ(hs.keys_published_by(bot, device).fallback_keys.size(), 4u);
}

}  // namespace
}  // namespace devlist::test
