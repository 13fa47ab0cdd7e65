// The socket API's handlers on plain request objects, against a real store.
#include <gtest/gtest.h>

#include <chrono>

#include "tests/unit/daemon/api_fixture.hpp"

namespace devlist::daemon::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

const std::string alice = "@alice:example.org";
const std::string alice_path = "%40alice%3Aexample.org";

class socket_api_test : public api_fixture {
  protected:
    const json::value* member(const json::value& v, std::string_view key) { return v.find(key); }
    std::string errcode(const reply& r) {
        const auto* e = r.json.find("errcode");
        return e && e->is_string() ? e->as_string() : std::string("<none>");
    }
    std::int64_t integer(const json::value& v, std::string_view key) {
        const auto* m = v.find(key);
        EXPECT_TRUE(m && m->is_integer()) << key;
        return m && m->is_integer() ? m->as_integer() : -1;
    }
    storage::outbox_event event(std::string type, std::string payload) {
        return {0, 1700000000000, std::move(type), std::move(payload)};
    }
    std::int64_t append(std::string type, std::string payload) {
        auto c = store->outbox().append(event(std::move(type), std::move(payload)));
        EXPECT_TRUE(c) << c.error().message();
        return c ? *c : -1;
    }
    std::vector<std::int64_t> cursors(const reply& r) {
        std::vector<std::int64_t> out;
        const auto* events = r.json.find("events");
        if (!events || !events->is_array()) return out;
        for (const auto& e : events->as_array())
            out.push_back(e.find("cursor")->as_integer());
        return out;
    }
};

TEST_F(socket_api_test, status_reports_the_account_the_engine_and_the_keys) {
    auto r = call("GET", "/v1/status");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.json["user_id"].as_string(), bot);
    EXPECT_EQ(r.json["phase"].as_string(), "starting");
    EXPECT_EQ(r.json["version"].as_string(), "test");
    EXPECT_TRUE(r.json["sync"]["next_batch"].is_null());
    EXPECT_EQ(integer(r.json["sync"], "syncs"), 0);
    EXPECT_TRUE(r.json["keys"]["one_time_keys"].is_object());
    EXPECT_TRUE(r.json["keys"]["fallback"].is_object());
    EXPECT_EQ(r.json["keys"]["cross_signing"].as_string(), "off");
    EXPECT_EQ(integer(r.json, "last_event_cursor"), 0);
    EXPECT_TRUE(r.json["last_error"].is_null());

    track(alice);
    auto after = call("GET", "/v1/status");
    EXPECT_EQ(integer(after.json, "tracked"), 1);
    EXPECT_EQ(integer(after.json, "outdated"), 1);
}

TEST_F(socket_api_test, a_users_devices_carry_keys_names_cross_signing_and_freshness) {
    track(alice);
    storage::cross_signing_key master{alice, storage::key_usage::master, new_ed_key(), "{}", true};
    auto laptop = device(alice, "LAPTOP", "Alice's laptop", true);
    auto phone = device(alice, "PHONE");
    store_devices(alice, {laptop, phone}, std::vector<storage::cross_signing_key>{master});

    auto r = call("GET", "/v1/users/" + alice_path + "/devices");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json["user_id"].as_string(), alice);
    EXPECT_FALSE(r.json["outdated"].as_bool());
    EXPECT_TRUE(r.json["tracked"].as_bool());
    EXPECT_EQ(r.json["reasons"], json::value(json::array{"explicit"}));
    EXPECT_EQ(integer(r.json, "last_refreshed_at"), 1700000001000);
    const auto& devices = r.json["devices"].as_array();
    ASSERT_EQ(devices.size(), 2u);
    const auto& l = devices[0];
    EXPECT_EQ(l.find("device_id")->as_string(), "LAPTOP");
    EXPECT_EQ(l.find("ed25519")->as_string(), laptop.ed25519);
    EXPECT_EQ(l.find("curve25519")->as_string(), laptop.curve25519);
    EXPECT_EQ(l.find("display_name")->as_string(), "Alice's laptop");
    EXPECT_TRUE(l.find("cross_signed")->as_bool());
    EXPECT_EQ(integer(l, "first_seen"), 1700000001000);
    EXPECT_EQ(integer(l, "last_seen"), 1700000001000);
    EXPECT_TRUE(devices[1].find("display_name")->is_null());
    EXPECT_FALSE(devices[1].find("cross_signed")->as_bool());
    EXPECT_EQ(r.json["cross_signing_keys"]["master"]["public_key"].as_string(), master.public_key);
    EXPECT_TRUE(r.json["cross_signing_keys"]["master"]["verified"].as_bool());
}

TEST_F(socket_api_test, an_untracked_user_is_answered_as_possibly_stale_not_as_an_error) {
    auto r = call("GET", "/v1/users/" + alice_path + "/devices?fresh=true&timeout_ms=5000");
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_FALSE(r.json["tracked"].as_bool());
    EXPECT_TRUE(r.json["outdated"].as_bool());
    EXPECT_TRUE(r.json["devices"].as_array().empty());
}

TEST_F(socket_api_test, bad_user_ids_and_parameters_are_400_invalid_param) {
    for (const char* target :
         {"/v1/users/alice/devices", "/v1/users/%40alice/devices",
          "/v1/users/"
          "%40alice%3Aexample.org"
          "/devices?fresh=yes",
          "/v1/users/%40alice%3Aexample.org/devices?timeout_ms=-1",
          "/v1/users/%40alice%3Aexample.org/devices?timeout_ms=1e3", "/v1/users/%zz/devices"}) {
        auto r = call("GET", target);
        EXPECT_EQ(r.status, 400u) << target;
        EXPECT_EQ(errcode(r), "M_INVALID_PARAM") << target;
    }
    EXPECT_EQ(call("PUT", "/v1/tracked/not-a-user").status, 400u);
}

// answer_now is how the server answers most requests without a coroutine each: it must answer
// (and count) exactly the requests that cannot wait, and leave the others untouched for handle().
TEST_F(socket_api_test, answer_now_answers_what_cannot_wait_and_leaves_waiting_requests_alone) {
    track(alice);
    store_devices(alice, {device(alice, "PHONE")});
    auto immediate = [&](std::string method, std::string target) {
        return api->answer_now(api_request{std::move(method), std::move(target), {}, me});
    };
    auto devices = immediate("GET", "/v1/users/" + alice_path + "/devices");
    ASSERT_TRUE(devices);
    EXPECT_EQ(devices->status, 200u);
    // The same bytes as handle() gives.
    EXPECT_EQ(devices->body, call("GET", "/v1/users/" + alice_path + "/devices").body);
    auto bad = immediate("GET", "/v1/users/nobody/devices?fresh=true");
    ASSERT_TRUE(bad);  // refused at once: nothing to wait for
    EXPECT_EQ(bad->status, 400u);
    auto wrong_method = immediate("POST", "/v1/events");
    ASSERT_TRUE(wrong_method);
    EXPECT_EQ(wrong_method->status, 405u);
    EXPECT_EQ(api->counters().responses.at(200), 2u);

    const auto before = api->counters().responses;
    EXPECT_FALSE(immediate("GET", "/v1/users/" + alice_path + "/devices?fresh=true"));
    EXPECT_FALSE(immediate("GET", "/v1/events?after=0&timeout_ms=0"));
    EXPECT_FALSE(immediate("GET", "/v1/events?consumer=never-registered"));
    EXPECT_EQ(api->counters().responses, before);
    // Leaving a waiting request alone means not registering its consumer either.
    auto consumers = call("GET", "/v1/events/consumers");
    EXPECT_EQ(consumers.body.find("never-registered"), std::string::npos) << consumers.body;
}

TEST_F(socket_api_test, fresh_waits_until_the_list_is_fresh_and_no_longer) {
    track(alice);
    auto p = start("GET", "/v1/users/" + alice_path + "/devices?fresh=true&timeout_ms=30000");
    // It waits: the list is outdated and nothing changes.
    EXPECT_FALSE(run_until([&] { return p->done; }, 100ms));
    // A /keys/query answer lands; the engine wakes waiters with its next commit.
    store_devices(alice, {device(alice, "LAPTOP")});
    track("@bob:example.org");
    auto started = clock::now();
    ASSERT_TRUE(run_until([&] { return p->done; }, 5000ms));
    EXPECT_LT(clock::now() - started, 5000ms);
    ASSERT_TRUE(p->response);
    auto r = to_reply(*p->response);
    EXPECT_FALSE(r.json["outdated"].as_bool());
    EXPECT_EQ(r.json["devices"].as_array().size(), 1u);
}

TEST_F(socket_api_test, fresh_answers_at_the_deadline_saying_the_list_is_still_outdated) {
    track(alice);
    auto started = clock::now();
    auto r = call("GET", "/v1/users/" + alice_path + "/devices?fresh=true&timeout_ms=150");
    EXPECT_GE(clock::now() - started, 150ms);
    ASSERT_EQ(r.status, 200u);
    EXPECT_TRUE(r.json["outdated"].as_bool());
}

TEST_F(socket_api_test, waits_are_cut_to_max_wait) {
    api_options.max_wait = 100ms;
    make_api();
    track(alice);
    auto p = start("GET", "/v1/users/" + alice_path + "/devices?fresh=true&timeout_ms=600000");
    EXPECT_TRUE(run_until([&] { return p->done; }, 3000ms));
    auto events = start("GET", "/v1/events?after=0&timeout_ms=600000");
    EXPECT_TRUE(run_until([&] { return events->done; }, 3000ms));
}

TEST_F(socket_api_test, a_cancelled_wait_ends_without_an_answer) {
    track(alice);
    auto p = start("GET", "/v1/users/" + alice_path + "/devices?fresh=true&timeout_ms=30000");
    EXPECT_FALSE(run_until([&] { return p->done; }, 50ms));
    p->cancel.emit(boost::asio::cancellation_type::terminal);
    ASSERT_TRUE(run_until([&] { return p->done; }, 1000ms));
    EXPECT_FALSE(p->response);
    EXPECT_TRUE(p->error);
}

TEST_F(socket_api_test, the_device_of_a_curve25519_key) {
    track(alice);
    auto laptop = device(alice, "LAPTOP", "laptop");
    store_devices(alice, {laptop});
    auto key = sync::percent_encode_path_segment(laptop.curve25519);
    auto r = call("GET", "/v1/devices/by-curve25519/" + key);
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json["user_id"].as_string(), alice);
    EXPECT_EQ(r.json["device_id"].as_string(), "LAPTOP");
    EXPECT_EQ(r.json["ed25519"].as_string(), laptop.ed25519);
    EXPECT_FALSE(r.json["deleted"].as_bool());

    // Gone from the server's list: still found (an old message may come from it), marked.
    store_devices(alice, {});
    auto gone = call("GET", "/v1/devices/by-curve25519/" + key);
    ASSERT_EQ(gone.status, 200u);
    EXPECT_TRUE(gone.json["deleted"].as_bool());
    EXPECT_TRUE(gone.json["deleted_at"].is_integer());

    auto unknown = call(
        "GET", "/v1/devices/by-curve25519/" + sync::percent_encode_path_segment(new_curve_key()));
    EXPECT_EQ(unknown.status, 404u);
    EXPECT_EQ(errcode(unknown), "M_NOT_FOUND");
    auto garbage = call("GET", "/v1/devices/by-curve25519/not-a-key");
    EXPECT_EQ(garbage.status, 400u);
    EXPECT_EQ(errcode(garbage), "M_INVALID_PARAM");
}

TEST_F(socket_api_test, track_untrack_and_the_tracked_list) {
    auto put = call("PUT", "/v1/tracked/" + alice_path);
    ASSERT_EQ(put.status, 200u) << put.body;
    EXPECT_TRUE(put.json["tracked"].as_bool());
    EXPECT_TRUE(put.json["outdated"].as_bool());
    EXPECT_EQ(put.json["reasons"], json::value(json::array{"explicit"}));
    EXPECT_TRUE(logged("tracking @alice:example.org on request"));

    auto list = call("GET", "/v1/tracked");
    ASSERT_EQ(list.status, 200u);
    const auto& users = list.json["users"].as_array();
    ASSERT_EQ(users.size(), 1u);
    EXPECT_EQ(users[0].find("user_id")->as_string(), alice);
    EXPECT_TRUE(users[0].find("outdated")->as_bool());
    EXPECT_TRUE(users[0].find("last_refreshed_at")->is_null());

    auto del = call("DELETE", "/v1/tracked/" + alice_path);
    ASSERT_EQ(del.status, 200u) << del.body;
    EXPECT_TRUE(del.json["was_explicit"].as_bool());
    EXPECT_FALSE(del.json["tracked"].as_bool());
    auto again = call("DELETE", "/v1/tracked/" + alice_path);
    ASSERT_EQ(again.status, 200u);
    EXPECT_FALSE(again.json["was_explicit"].as_bool());
    EXPECT_TRUE(call("GET", "/v1/tracked").json["users"].as_array().empty());
}

TEST_F(socket_api_test, refresh_marks_a_tracked_user_outdated_and_refuses_others) {
    auto unknown = call("POST", "/v1/users/" + alice_path + "/refresh");
    EXPECT_EQ(unknown.status, 404u);
    EXPECT_EQ(errcode(unknown), "M_NOT_FOUND");

    track(alice);
    store_devices(alice, {device(alice, "LAPTOP")});
    ASSERT_FALSE(call("GET", "/v1/users/" + alice_path + "/devices").json["outdated"].as_bool());
    auto r = call("POST", "/v1/users/" + alice_path + "/refresh");
    EXPECT_EQ(r.status, 202u) << r.body;
    EXPECT_TRUE(r.json["outdated"].as_bool());
    EXPECT_TRUE(call("GET", "/v1/users/" + alice_path + "/devices").json["outdated"].as_bool());
}

TEST_F(socket_api_test, events_after_a_cursor_in_order_with_next_and_limit) {
    auto c1 = append("device_added", R"({"user_id":"@a:b","device_id":"D1"})");
    auto c2 = append("to_device", R"({"type":"m.dummy","sender":"@a:b","content":{"x":1.5}})");
    auto c3 = append("master_key_changed", R"({"user_id":"@a:b"})");

    auto all = call("GET", "/v1/events?after=0");
    ASSERT_EQ(all.status, 200u) << all.body;
    // The to-device content is passed on verbatim, float and all.
    EXPECT_NE(all.body.find(R"("data":{"type":"m.dummy","sender":"@a:b","content":{"x":1.5}})"),
              std::string::npos)
        << all.body;
    EXPECT_TRUE(all.body.ends_with(",\"next\":" + std::to_string(c3) + "}")) << all.body;

    auto first = call("GET", "/v1/events?after=0&limit=1");
    EXPECT_EQ(cursors(first), std::vector<std::int64_t>{c1});
    EXPECT_EQ(integer(first.json, "next"), c1);
    const auto& e = first.json["events"].as_array()[0];
    EXPECT_EQ(e.find("type")->as_string(), "device_added");
    EXPECT_EQ(integer(e, "at"), 1700000000000);
    EXPECT_EQ(e.find("data")->find("device_id")->as_string(), "D1");

    auto rest = call("GET", "/v1/events?after=" + std::to_string(c2));
    EXPECT_EQ(cursors(rest), std::vector<std::int64_t>{c3});

    auto none = call("GET", "/v1/events?after=" + std::to_string(c3));
    EXPECT_TRUE(cursors(none).empty());
    EXPECT_EQ(integer(none.json, "next"), c3);

    auto beyond = call("GET", "/v1/events?after=" + std::to_string(c3 + 1));
    EXPECT_EQ(beyond.status, 400u);
    EXPECT_EQ(errcode(beyond), "M_INVALID_PARAM");
    EXPECT_EQ(call("GET", "/v1/events?after=0&limit=0").status, 400u);
    EXPECT_EQ(call("GET", "/v1/events?after=0&limit=100000").status, 400u);
    EXPECT_EQ(call("GET", "/v1/events?consumer=bad%20name").status, 400u);
}

TEST_F(socket_api_test, a_consumer_reads_from_its_acknowledgement_and_acks_prune) {
    auto c1 = append("device_added", R"({"n":1})");
    auto c2 = append("device_added", R"({"n":2})");
    // The default consumer exists from the start and sees both.
    EXPECT_EQ(cursors(call("GET", "/v1/events")), (std::vector<std::int64_t>{c1, c2}));

    auto ack = call("POST", "/v1/events/ack", json::to_canonical(json::object{{"cursor", c1}}));
    ASSERT_EQ(ack.status, 200u) << ack.body;
    EXPECT_EQ(ack.json["consumer"].as_string(), "default");
    EXPECT_EQ(integer(ack.json, "acknowledged"), c1);
    EXPECT_EQ(cursors(call("GET", "/v1/events")), std::vector<std::int64_t>{c2});
    // Acknowledged by every consumer: pruned, so even after=0 no longer has it.
    EXPECT_EQ(cursors(call("GET", "/v1/events?after=0")), std::vector<std::int64_t>{c2});

    // A named consumer is registered by its first read and starts after the last event.
    auto fresh = call("GET", "/v1/events?consumer=bot-1");
    EXPECT_TRUE(cursors(fresh).empty());
    EXPECT_EQ(integer(fresh.json, "next"), c2);
    auto c3 = append("device_removed", R"({"n":3})");
    EXPECT_EQ(cursors(call("GET", "/v1/events?consumer=bot-1")), std::vector<std::int64_t>{c3});
    auto consumers = call("GET", "/v1/events/consumers");
    ASSERT_EQ(consumers.status, 200u);
    EXPECT_EQ(consumers.json["consumers"].as_array().size(), 2u);

    // Acknowledging never goes back.
    call("POST", "/v1/events/ack",
         json::to_canonical(json::object{{"cursor", c3}, {"consumer", "bot-1"}}));
    auto back = call("POST", "/v1/events/ack",
                     json::to_canonical(json::object{{"cursor", c1}, {"consumer", "bot-1"}}));
    EXPECT_EQ(integer(back.json, "acknowledged"), c3);

    EXPECT_EQ(call("DELETE", "/v1/events/consumers/bot-1").status, 200u);
    EXPECT_EQ(call("DELETE", "/v1/events/consumers/bot-1").status, 404u);
    EXPECT_EQ(call("DELETE", "/v1/events/consumers/default").status, 400u);
}

TEST_F(socket_api_test, acknowledgement_errors) {
    auto c1 = append("device_added", "{}");
    auto check = [&](const std::string& body, unsigned status, const std::string& code) {
        auto r = call("POST", "/v1/events/ack", body);
        EXPECT_EQ(r.status, status) << body << " -> " << r.body;
        EXPECT_EQ(errcode(r), code) << body;
    };
    check("", 400, "M_NOT_JSON");
    check("{", 400, "M_NOT_JSON");
    check("[1]", 400, "M_BAD_JSON");
    check("{}", 400, "M_MISSING_PARAM");
    check(R"({"cursor":"1"})", 400, "M_BAD_JSON");
    check(R"({"cursor":-1})", 400, "M_BAD_JSON");
    check(R"({"cursor":1,"consumer":7})", 400, "M_BAD_JSON");
    check(R"({"cursor":1,"consumer":"nobody"})", 404, "M_NOT_FOUND");
    check(R"({"cursor":)" + std::to_string(c1 + 1) + "}", 400, "M_INVALID_PARAM");
}

TEST_F(socket_api_test, the_event_long_poll_wakes_on_a_committed_change) {
    track(alice);
    auto last = store->outbox().last_cursor();
    ASSERT_TRUE(last);
    auto p = start("GET", "/v1/events?after=" + std::to_string(*last) + "&timeout_ms=30000");
    EXPECT_FALSE(run_until([&] { return p->done; }, 100ms));
    // Untracking commits a user_untracked event and wakes the waiters.
    ASSERT_TRUE(engine->untrack_user(alice));
    ASSERT_TRUE(run_until([&] { return p->done; }, 5000ms));
    ASSERT_TRUE(p->response);
    auto r = to_reply(*p->response);
    ASSERT_EQ(r.json["events"].as_array().size(), 1u) << r.body;
    EXPECT_EQ(r.json["events"].as_array()[0].find("type")->as_string(), "user_untracked");
}

TEST_F(socket_api_test, the_event_long_poll_ends_empty_at_its_timeout) {
    auto started = clock::now();
    auto r = call("GET", "/v1/events?after=0&timeout_ms=150");
    EXPECT_GE(clock::now() - started, 150ms);
    EXPECT_TRUE(cursors(r).empty());
    EXPECT_EQ(integer(r.json, "next"), 0);
}

TEST_F(socket_api_test, one_time_keys_are_taken_once_by_id_or_public_key) {
    auto k1 = add_one_time_key();
    auto k2 = add_one_time_key();
    auto r = call("POST", "/v1/keys/one-time/take",
                  json::to_canonical(json::object{{"key_id", "signed_curve25519:" + k1.key_id}}));
    ASSERT_EQ(r.status, 200u) << r.body;
    EXPECT_EQ(r.json["key_id"].as_string(), k1.key_id);
    EXPECT_EQ(r.json["public_key"].as_string(), k1.public_key);
    EXPECT_EQ(r.json["private_key"].as_string(), k1.private_key);
    EXPECT_TRUE(logged("one-time key " + k1.key_id + " handed to uid "));

    auto twice = call("POST", "/v1/keys/one-time/take",
                      json::to_canonical(json::object{{"key_id", k1.key_id}}));
    EXPECT_EQ(twice.status, 404u);
    EXPECT_EQ(errcode(twice), "M_NOT_FOUND");

    auto by_public = call("POST", "/v1/keys/one-time/take",
                          json::to_canonical(json::object{{"public_key", k2.public_key}}));
    ASSERT_EQ(by_public.status, 200u) << by_public.body;
    EXPECT_EQ(by_public.json["private_key"].as_string(), k2.private_key);

    for (const char* body : {"{}", R"({"key_id":"a","public_key":"b"})", R"({"key_id":1})"}) {
        auto bad = call("POST", "/v1/keys/one-time/take", body);
        EXPECT_EQ(bad.status, 400u) << body;
        EXPECT_EQ(errcode(bad), "M_BAD_JSON") << body;
    }
    auto metrics = call("GET", "/metrics");
    EXPECT_NE(metrics.body.find("devlistd_private_keys_handed_out_total 2\n"), std::string::npos);
}

TEST_F(socket_api_test, fallback_keys_are_listed_with_their_private_parts) {
    EXPECT_TRUE(call("GET", "/v1/keys/fallback").json["keys"].as_array().empty());
    auto k = add_fallback_key();
    auto r = call("GET", "/v1/keys/fallback");
    ASSERT_EQ(r.status, 200u) << r.body;
    const auto& keys = r.json["keys"].as_array();
    ASSERT_EQ(keys.size(), 1u);
    EXPECT_EQ(keys[0].find("key_id")->as_string(), k.key_id);
    EXPECT_EQ(keys[0].find("private_key")->as_string(), k.private_key);
    EXPECT_TRUE(keys[0].find("current")->as_bool());
    EXPECT_FALSE(keys[0].find("published")->as_bool());
    EXPECT_TRUE(keys[0].find("used_at")->is_null());
}

TEST_F(socket_api_test, peers_off_the_allow_list_get_403_and_a_log_line) {
    peer_credentials stranger;
    stranger.uid = ::geteuid() + 4242;
    stranger.gid = 4242;
    stranger.pid = 77;
    auto r = call("GET", "/v1/status", {}, stranger);
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(errcode(r), "M_FORBIDDEN");
    EXPECT_TRUE(
        logged("denied uid " + std::to_string(stranger.uid) + " gid 4242 pid 77: GET /v1/status"));
    // Denied before anything else: a malformed target is not even looked at.
    EXPECT_EQ(call("GET", "/v1/%zz", {}, stranger).status, 403u);

    api_options.access.allowed_gids = {4242};
    make_api();
    EXPECT_EQ(call("GET", "/v1/status", {}, stranger).status, 200u);
    EXPECT_EQ(call("GET", "/v1/keys/fallback", {}, stranger).status, 403u);
}

TEST_F(socket_api_test, key_endpoints_need_the_key_allow_list_even_for_the_daemons_own_uid) {
    auto k = add_one_time_key();
    api_options.access =
        make_access_policy(::geteuid(), {}, {}, std::vector<std::uint32_t>{}, std::nullopt);
    make_api();
    auto r = call("POST", "/v1/keys/one-time/take",
                  json::to_canonical(json::object{{"key_id", k.key_id}}));
    EXPECT_EQ(r.status, 403u);
    EXPECT_EQ(errcode(r), "M_FORBIDDEN");
    EXPECT_TRUE(logged("denied private keys to uid " + std::to_string(::geteuid())));
    EXPECT_EQ(call("GET", "/v1/keys/fallback").status, 403u);
    // The key is still there for someone allowed.
    api_options.access.key_uids = {::geteuid()};
    make_api();
    EXPECT_EQ(call("POST", "/v1/keys/one-time/take",
                   json::to_canonical(json::object{{"key_id", k.key_id}}))
                  .status,
              200u);
    // Other endpoints stay open to the own uid.
    EXPECT_EQ(call("GET", "/v1/status").status, 200u);
}

TEST_F(socket_api_test, unknown_endpoints_are_404_and_wrong_methods_405_with_allow) {
    for (const char* target : {"/", "/v2/status", "/v1/status/", "/v1/nothing", "/metrics/x"}) {
        auto r = call("GET", target);
        EXPECT_EQ(r.status, 404u) << target;
        EXPECT_EQ(errcode(r), "M_UNRECOGNIZED") << target;
    }
    auto post = call("POST", "/v1/status");
    EXPECT_EQ(post.status, 405u);
    EXPECT_EQ(post.allow, "GET");
    EXPECT_EQ(errcode(post), "M_UNRECOGNIZED");
    EXPECT_EQ(call("GET", "/v1/tracked/" + alice_path).allow, "PUT, DELETE");
    EXPECT_EQ(call("GET", "/v1/keys/one-time/take").allow, "POST");
}

TEST_F(socket_api_test, metrics_are_prometheus_text_with_the_apis_own_counters) {
    call("GET", "/v1/nothing");
    auto r = call("GET", "/metrics");
    ASSERT_EQ(r.status, 200u);
    EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
    EXPECT_NE(r.body.find("# TYPE devlistd_syncs_total counter\ndevlistd_syncs_total 0\n"),
              std::string::npos);
    EXPECT_NE(r.body.find("devlistd_socket_responses_total{code=\"404\"} 1\n"), std::string::npos)
        << r.body;
}

TEST_F(socket_api_test, security_events_newest_first_with_their_detail) {
    storage::security_event e{0,     1700000000000, "device_key_changed",
                              alice, "LAPTOP",      R"({"old":"a","new":"b"})"};
    ASSERT_TRUE(store->security().append(e));
    e.kind = "master_key_changed";
    e.user_id = "@bob:example.org";
    e.device_id.reset();
    ASSERT_TRUE(store->security().append(e));
    auto all = call("GET", "/v1/security-events");
    ASSERT_EQ(all.status, 200u) << all.body;
    const auto& events = all.json["events"].as_array();
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].find("kind")->as_string(), "master_key_changed");
    EXPECT_TRUE(events[0].find("device_id")->is_null());
    auto of_alice = call("GET", "/v1/security-events?user_id=" + alice_path + "&limit=5");
    ASSERT_EQ(of_alice.json["events"].as_array().size(), 1u);
    EXPECT_EQ(of_alice.json["events"].as_array()[0].find("detail")->find("new")->as_string(), "b");
}

}  // namespace
}  // namespace devlist::daemon::test
