// The test homeserver, tested over HTTP on 127.0.0.1 as a client would use it.
#include "tests/homeserver/http_test_client.hpp"
#include "tests/homeserver/test_homeserver.hpp"

#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/signed_json.hpp"

#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string_view>
#include <thread>

// Readable JSON in assertion messages.
namespace devlist::json {
void PrintTo(const value& v, std::ostream* os) {
    *os << to_canonical(v);
}
}  // namespace devlist::json

namespace devlist::testing {
namespace {

using namespace std::chrono_literals;

const std::string alice = "@alice:localhost";
const std::string bob = "@bob:localhost";
const std::string carol = "@carol:localhost";
const std::string zoe = "@zoe:remote.test";

// ---- JSON helpers ----

// The value at a path of object keys, or null.
json::value at(const json::value& root, std::initializer_list<std::string_view> path) {
    const json::value* v = &root;
    for (const auto key : path) {
        v = v->is_object() ? v->find(key) : nullptr;
        if (!v) return nullptr;
    }
    return *v;
}

bool has(const json::value& root, std::initializer_list<std::string_view> path) {
    const json::value* v = &root;
    for (const auto key : path) {
        v = v->is_object() ? v->find(key) : nullptr;
        if (!v) return false;
    }
    return true;
}

std::vector<std::string> strings(const json::value& array) {
    std::vector<std::string> out;
    if (!array.is_array()) return out;
    for (const auto& v : array.as_array()) {
        out.push_back(v.is_string() ? v.as_string() : "?");
    }
    return out;
}

// The types of an array of events.
std::vector<std::string> event_types(const json::value& events) {
    std::vector<std::string> types;
    if (!events.is_array()) return types;
    for (const auto& event : events.as_array()) {
        types.push_back(at(event, {"type"}).as_string());
    }
    return types;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
    return std::find(list.begin(), list.end(), item) != list.end();
}

std::string errcode(const http_response& response) {
    const json::value code = at(response.json(), {"errcode"});
    return code.is_string() ? code.as_string() : "";
}

// ---- a client's keys, made with the project's crypto ----

struct client_keys {
    crypto::ed25519_key_pair device = crypto::ed25519_key_pair::generate();
    crypto::curve25519_key_pair identity = crypto::curve25519_key_pair::generate();

    json::value device_keys(const std::string& user_id, const std::string& device_id) const {
        json::value keys = json::object{
            {"user_id", user_id},
            {"device_id", device_id},
            {"algorithms", json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"}},
            {"keys", json::object{{"curve25519:" + device_id, identity.public_key().to_base64()},
                                  {"ed25519:" + device_id, device.public_key().to_base64()}}},
            // A field this server does not know must survive the round trip.
            {"org.example.extra", json::object{{"nested", json::array{1, "x"}}}}};
        crypto::sign_json(keys, user_id, "ed25519:" + device_id, device);
        return keys;
    }

    json::value one_time_key(const std::string& user_id, const std::string& device_id,
                             bool fallback = false) const {
        json::value key =
            json::object{{"key", crypto::curve25519_key_pair::generate().public_key().to_base64()}};
        if (fallback) key["fallback"] = true;
        crypto::sign_json(key, user_id, "ed25519:" + device_id, device);
        return key;
    }
};

json::value cross_signing_key(const std::string& user_id, const std::string& usage,
                              const crypto::ed25519_key_pair& key,
                              const crypto::ed25519_key_pair& master) {
    const std::string pk = key.public_key().to_base64();
    json::value object = json::object{{"user_id", user_id},
                                      {"usage", json::array{usage}},
                                      {"keys", json::object{{"ed25519:" + pk, pk}}}};
    if (&key != &master) {
        crypto::sign_json(object, user_id, "ed25519:" + master.public_key().to_base64(), master);
    }
    return object;
}

// Whether `object` (as served) carries a valid signature by signer/key_id made with public_key.
bool verifies(const json::value& object, const std::string& signer, const std::string& key_id,
              const std::string& public_key) {
    const auto key = crypto::ed25519_public_key::from_base64(public_key);
    return key && crypto::verify_json(json::to_canonical(object), signer, key_id, *key);
}

// The POST /login body of a password login; every test user's password is "<name>-password".
json::value login_body(const std::string& user, const std::string& device_id,
                       const std::string& display_name = {}) {
    const std::string name = user.starts_with('@') ? user.substr(1, user.find(':') - 1) : user;
    json::value body =
        json::object{{"type", "m.login.password"},
                     {"identifier", json::object{{"type", "m.id.user"}, {"user", user}}},
                     {"password", name + "-password"},
                     {"device_id", device_id}};
    if (!display_name.empty()) body["initial_device_display_name"] = display_name;
    return body;
}

// ---- the fixture ----

class HomeserverTest : public ::testing::Test {
  protected:
    void SetUp() override { start({}); }

    void start(homeserver_options options) {
        if (hs) hs->stop();
        hs = std::make_unique<test_homeserver>(std::move(options));
        ASSERT_TRUE(hs->start());
        hs->add_user(alice, "alice-password");
        hs->add_user(bob, "bob-password");
        hs->add_user(carol, "carol-password");
        hs->add_user(zoe);
    }

    http_test_client client() const { return http_test_client(hs->port()); }

    // A session through POST /login.
    session login(http_test_client& c, const std::string& user, const std::string& device_id) {
        const auto response = c.post("/_matrix/client/v3/login", login_body(user, device_id));
        EXPECT_EQ(response.status, 200u) << response.body;
        const auto body = response.json();
        return {.user_id = at(body, {"user_id"}).as_string(),
                .device_id = at(body, {"device_id"}).as_string(),
                .access_token = at(body, {"access_token"}).as_string()};
    }

    json::value sync(http_test_client& c, const session& s, const std::string& since = {},
                     int timeout_ms = 0) {
        std::string target = "/_matrix/client/v3/sync?timeout=" + std::to_string(timeout_ms);
        if (!since.empty()) target += "&since=" + since;
        const auto response = c.get(target, s.access_token);
        EXPECT_EQ(response.status, 200u) << response.body;
        return response.json();
    }

    std::string next_batch(const json::value& sync_body) {
        return at(sync_body, {"next_batch"}).as_string();
    }

    json::value query(http_test_client& c, const session& s,
                      std::initializer_list<std::string> users) {
        json::object wanted;
        for (const auto& user : users) {
            wanted[user] = json::array{};
        }
        const auto response =
            c.post("/_matrix/client/v3/keys/query",
                   json::object{{"device_keys", std::move(wanted)}}, s.access_token);
        EXPECT_EQ(response.status, 200u) << response.body;
        return response.json();
    }

    std::unique_ptr<test_homeserver> hs;
};

// ---- accounts ----

TEST_F(HomeserverTest, ServesVersionsAndLoginFlows) {
    auto c = client();
    const auto versions = c.get("/_matrix/client/versions");
    EXPECT_EQ(versions.status, 200u);
    EXPECT_TRUE(contains(strings(at(versions.json(), {"versions"})), "v1.11"));
    const auto flows = c.get("/_matrix/client/v3/login").json();
    EXPECT_EQ(at(flows, {"flows"}),
              json::value(json::array{json::object{{"type", "m.login.password"}}}));
    EXPECT_EQ(c.get("/_matrix/client/v3/nowhere").status, 404u);
}

TEST_F(HomeserverTest, LoginHonoursTheRequestedDeviceAndTheLegacyUserField) {
    auto c = client();
    const auto response =
        c.post("/_matrix/client/v3/login", login_body("alice", "ALICEDEV", "Alice's laptop"));
    ASSERT_EQ(response.status, 200u) << response.body;
    const auto body = response.json();
    EXPECT_EQ(at(body, {"user_id"}), json::value(alice));
    EXPECT_EQ(at(body, {"device_id"}), json::value("ALICEDEV"));
    const std::string token = at(body, {"access_token"}).as_string();

    const auto whoami = c.get("/_matrix/client/v3/account/whoami", token);
    EXPECT_EQ(at(whoami.json(), {"user_id"}), json::value(alice));
    EXPECT_EQ(at(whoami.json(), {"device_id"}), json::value("ALICEDEV"));

    const auto legacy = c.post(
        "/_matrix/client/r0/login",
        json::object{{"type", "m.login.password"}, {"user", bob}, {"password", "bob-password"}});
    ASSERT_EQ(legacy.status, 200u) << legacy.body;
    EXPECT_EQ(at(legacy.json(), {"device_id"}).as_string().size(), 10u);

    const auto wrong =
        c.post("/_matrix/client/v3/login",
               json::object{{"type", "m.login.password"}, {"user", "alice"}, {"password", "nope"}});
    EXPECT_EQ(wrong.status, 403u);
    EXPECT_EQ(errcode(wrong), "M_FORBIDDEN");
    const auto remote =
        c.post("/_matrix/client/v3/login",
               json::object{{"type", "m.login.password"}, {"user", zoe}, {"password", ""}});
    EXPECT_EQ(remote.status, 403u);
}

TEST_F(HomeserverTest, UnknownMissingAndRevokedTokensAre401) {
    auto c = client();
    const auto missing = c.get("/_matrix/client/v3/account/whoami");
    EXPECT_EQ(missing.status, 401u);
    EXPECT_EQ(errcode(missing), "M_MISSING_TOKEN");
    const auto unknown = c.get("/_matrix/client/v3/account/whoami", "syt_nonsense");
    EXPECT_EQ(unknown.status, 401u);
    EXPECT_EQ(errcode(unknown), "M_UNKNOWN_TOKEN");

    const session s = login(c, alice, "A");
    EXPECT_EQ(c.get("/_matrix/client/v3/account/whoami", s.access_token).status, 200u);
    hs->revoke_access_token(s.access_token);
    EXPECT_EQ(errcode(c.get("/_matrix/client/v3/account/whoami", s.access_token)),
              "M_UNKNOWN_TOKEN");

    const session again = login(c, alice, "A");
    EXPECT_EQ(c.post("/_matrix/client/v3/logout", json::object{}, again.access_token).status, 200u);
    EXPECT_EQ(c.get("/_matrix/client/v3/account/whoami", again.access_token).status, 401u);
}

TEST_F(HomeserverTest, FiltersAreStoredAndReturned) {
    auto c = client();
    const session s = login(c, alice, "A");
    const json::value filter =
        json::object{{"room", json::object{{"timeline", json::object{{"limit", 1}}}}}};
    const auto created =
        c.post("/_matrix/client/v3/user/%40alice%3Alocalhost/filter", filter, s.access_token);
    ASSERT_EQ(created.status, 200u) << created.body;
    const std::string id = at(created.json(), {"filter_id"}).as_string();
    EXPECT_EQ(c.get("/_matrix/client/v3/user/@alice:localhost/filter/" + id, s.access_token).json(),
              filter);
    EXPECT_EQ(
        c.post("/_matrix/client/v3/user/@bob:localhost/filter", filter, s.access_token).status,
        403u);

    hs->create_room(alice, true);
    const auto limited = c.get("/_matrix/client/v3/sync?filter=" + id, s.access_token).json();
    const json::value& rooms = at(limited, {"rooms", "join"});
    ASSERT_EQ(rooms.as_object().size(), 1u);
    const json::value& room = rooms.as_object().begin()->second;
    EXPECT_EQ(at(room, {"timeline", "events"}).as_array().size(), 1u);
    EXPECT_EQ(at(room, {"timeline", "limited"}), json::value(true));
}

// ---- keys ----

TEST_F(HomeserverTest, UploadAndQueryKeepUnknownFieldsAndAddTheDisplayName) {
    auto c = client();
    const auto login_response =
        c.post("/_matrix/client/v3/login", login_body("alice", "ALICEDEV", "Alice's laptop"));
    const std::string token = at(login_response.json(), {"access_token"}).as_string();
    const client_keys keys;
    const json::value device_keys = keys.device_keys(alice, "ALICEDEV");

    const auto upload =
        c.post("/_matrix/client/v3/keys/upload", json::object{{"device_keys", device_keys}}, token);
    ASSERT_EQ(upload.status, 200u) << upload.body;
    EXPECT_EQ(at(upload.json(), {"one_time_key_counts", "signed_curve25519"}), json::value(0));

    auto b = client();
    const session viewer = login(b, bob, "B");
    const auto answer = query(b, viewer, {alice});
    json::value expected = device_keys;
    expected["unsigned"] = json::object{{"device_display_name", "Alice's laptop"}};
    const json::value served = at(answer, {"device_keys", alice, "ALICEDEV"});
    EXPECT_EQ(served, expected);
    EXPECT_TRUE(verifies(served, alice, "ed25519:ALICEDEV", keys.device.public_key().to_base64()));
    EXPECT_EQ(at(answer, {"failures"}), json::value(json::object{}));
    EXPECT_TRUE(has(answer, {"master_keys"}));

    // Only the uploader's own IDs are accepted.
    const auto mismatched =
        c.post("/_matrix/client/v3/keys/upload",
               json::object{{"device_keys", keys.device_keys(alice, "OTHER")}}, token);
    EXPECT_EQ(mismatched.status, 400u);
    EXPECT_EQ(errcode(mismatched), "M_BAD_JSON");
}

TEST_F(HomeserverTest, SimulatedDevicesCarryRealSignaturesUnlessForged) {
    const auto phone = hs->add_device(bob, "BPHONE", "Bob's phone");
    const auto forged = hs->forge_device(bob, "BFORGED");
    auto c = client();
    const session s = login(c, alice, "A");

    auto answer = query(c, s, {bob});
    EXPECT_TRUE(
        verifies(at(answer, {"device_keys", bob, "BPHONE"}), bob, "ed25519:BPHONE", phone.ed25519));
    EXPECT_EQ(at(answer, {"device_keys", bob, "BPHONE", "unsigned", "device_display_name"}),
              json::value("Bob's phone"));
    EXPECT_FALSE(verifies(at(answer, {"device_keys", bob, "BFORGED"}), bob, "ed25519:BFORGED",
                          forged.ed25519));

    const auto changed = hs->change_device_keys(bob, "BPHONE");
    EXPECT_NE(changed.ed25519, phone.ed25519);
    answer = query(c, s, {bob});
    const json::value served = at(answer, {"device_keys", bob, "BPHONE"});
    EXPECT_EQ(at(served, {"keys", "ed25519:BPHONE"}), json::value(changed.ed25519));
    EXPECT_TRUE(verifies(served, bob, "ed25519:BPHONE", changed.ed25519));

    hs->set_device_keys_json(bob, "HOSTILE", json::object{{"user_id", "@mallory:localhost"}});
    answer = query(c, s, {bob});
    EXPECT_EQ(at(answer, {"device_keys", bob, "HOSTILE", "user_id"}),
              json::value("@mallory:localhost"));
}

TEST_F(HomeserverTest, BootstrappedCrossSigningSignsDevicesAndHidesTheUserSigningKey) {
    hs->add_device(bob, "BPHONE");
    hs->bootstrap_cross_signing(bob);
    auto c = client();
    const session as_alice = login(c, alice, "A");
    const auto answer = query(c, as_alice, {bob});

    const json::value master = at(answer, {"master_keys", bob});
    const json::value self_signing = at(answer, {"self_signing_keys", bob});
    const std::string master_public = master.find("keys")->as_object().begin()->second.as_string();
    const std::string ssk_public =
        self_signing.find("keys")->as_object().begin()->second.as_string();
    EXPECT_TRUE(verifies(self_signing, bob, "ed25519:" + master_public, master_public));
    EXPECT_TRUE(verifies(at(answer, {"device_keys", bob, "BPHONE"}), bob, "ed25519:" + ssk_public,
                         ssk_public));
    EXPECT_FALSE(has(answer, {"user_signing_keys", bob}));

    auto b = client();
    const session as_bob = login(b, bob, "B");
    EXPECT_TRUE(has(query(b, as_bob, {bob}), {"user_signing_keys", bob}));

    hs->change_master_key(bob);
    const auto after = query(c, as_alice, {bob});
    EXPECT_NE(at(after, {"master_keys", bob}), master);
}

TEST_F(HomeserverTest, OneTimeKeyIdReusedWithAnotherKeyIs400) {
    auto c = client();
    const session s = login(c, alice, "A");
    const client_keys keys;
    const json::value first = keys.one_time_key(alice, "A");
    const auto upload = [&](const json::value& key) {
        return c.post(
            "/_matrix/client/v3/keys/upload",
            json::object{{"one_time_keys", json::object{{"signed_curve25519:AAAAAQ", key}}}},
            s.access_token);
    };
    EXPECT_EQ(at(upload(first).json(), {"one_time_key_counts", "signed_curve25519"}),
              json::value(1));
    const auto same = upload(first);  // a retry of a lost response
    EXPECT_EQ(same.status, 200u);
    EXPECT_EQ(at(same.json(), {"one_time_key_counts", "signed_curve25519"}), json::value(1));

    const auto conflict = upload(keys.one_time_key(alice, "A"));
    EXPECT_EQ(conflict.status, 400u);
    EXPECT_EQ(errcode(conflict), "M_UNKNOWN");
    EXPECT_NE(at(conflict.json(), {"error"}).as_string().find("already exists"), std::string::npos);
    EXPECT_EQ(hs->one_time_key_count(alice, "A"), 1u);
}

TEST_F(HomeserverTest, ClaimsGoInUploadOrderThenTheFallbackKeyWhichIsThenUsed) {
    auto a = client();
    const session s = login(a, alice, "A");
    const client_keys keys;
    const auto upload = [&](json::object body) {
        const auto r = a.post("/_matrix/client/v3/keys/upload", body, s.access_token);
        EXPECT_EQ(r.status, 200u) << r.body;
    };
    const json::value fallback = keys.one_time_key(alice, "A", true);
    upload({{"one_time_keys",
             json::object{{"signed_curve25519:AAAAAw", keys.one_time_key(alice, "A")}}}});
    upload({{"one_time_keys",
             json::object{{"signed_curve25519:AAAAAQ", keys.one_time_key(alice, "A")},
                          {"signed_curve25519:AAAAAg", keys.one_time_key(alice, "A")}}},
            {"fallback_keys", json::object{{"signed_curve25519:AAAABA", fallback}}}});
    auto state = sync(a, s);
    EXPECT_EQ(at(state, {"device_one_time_keys_count", "signed_curve25519"}), json::value(3));
    EXPECT_EQ(strings(at(state, {"device_unused_fallback_key_types"})),
              std::vector<std::string>{"signed_curve25519"});

    auto b = client();
    const session claimer = login(b, bob, "B");
    const auto claim = [&] {
        const auto r =
            b.post("/_matrix/client/v3/keys/claim",
                   json::object{{"one_time_keys",
                                 json::object{{alice, json::object{{"A", "signed_curve25519"}}}}}},
                   claimer.access_token);
        const json::value claimed = at(r.json(), {"one_time_keys", alice, "A"});
        return claimed.is_object() && !claimed.as_object().empty()
                   ? claimed.as_object().begin()->first
                   : std::string{};
    };
    EXPECT_EQ(claim(), "signed_curve25519:AAAAAw");  // the earlier upload goes first
    EXPECT_EQ(claim(), "signed_curve25519:AAAAAQ");
    EXPECT_EQ(claim(), "signed_curve25519:AAAAAg");
    EXPECT_EQ(claim(), "signed_curve25519:AAAABA");  // out of one-time keys: the fallback key,
    EXPECT_EQ(claim(), "signed_curve25519:AAAABA");  // which is not consumed

    state = sync(a, s, next_batch(state));
    EXPECT_EQ(at(state, {"device_one_time_keys_count", "signed_curve25519"}), json::value(0));
    EXPECT_TRUE(strings(at(state, {"device_unused_fallback_key_types"})).empty());
    EXPECT_TRUE(
        strings(at(state, {"org.matrix.msc2732.device_unused_fallback_key_types"})).empty());

    // The same fallback key uploaded again stays used (Synapse); a new one is unused.
    upload({{"fallback_keys", json::object{{"signed_curve25519:AAAABA", fallback}}}});
    EXPECT_TRUE(hs->unused_fallback_key_types(alice, "A").empty());
    upload({{"org.matrix.msc2732.fallback_keys",
             json::object{{"signed_curve25519:AAAABQ", keys.one_time_key(alice, "A", true)}}}});
    EXPECT_EQ(hs->unused_fallback_key_types(alice, "A"),
              std::vector<std::string>{"signed_curve25519"});
}

TEST_F(HomeserverTest, ZeroCountsAndFallbackFieldsFollowTheServerBehaviour) {
    auto with = [&](server_behaviour behaviour) {
        start({.behaviour = behaviour});
        auto c = client();
        const session s = login(c, alice, "A");
        return sync(c, s);
    };
    auto state = with({});
    EXPECT_EQ(at(state, {"device_one_time_keys_count"}),
              json::value(json::object{{"signed_curve25519", 0}}));
    EXPECT_TRUE(has(state, {"device_unused_fallback_key_types"}));
    EXPECT_TRUE(has(state, {"org.matrix.msc2732.device_unused_fallback_key_types"}));

    state = with({.omit_zero_one_time_key_counts = true,
                  .fallback_key_types = fallback_key_types_field::stable});
    EXPECT_FALSE(has(state, {"device_one_time_keys_count"}));
    EXPECT_TRUE(has(state, {"device_unused_fallback_key_types"}));
    EXPECT_FALSE(has(state, {"org.matrix.msc2732.device_unused_fallback_key_types"}));

    state = with({.fallback_key_types = fallback_key_types_field::unstable});
    EXPECT_FALSE(has(state, {"device_unused_fallback_key_types"}));
    EXPECT_TRUE(has(state, {"org.matrix.msc2732.device_unused_fallback_key_types"}));

    state = with({.fallback_key_types = fallback_key_types_field::neither});
    EXPECT_FALSE(has(state, {"device_unused_fallback_key_types"}));
    EXPECT_FALSE(has(state, {"org.matrix.msc2732.device_unused_fallback_key_types"}));
}

TEST_F(HomeserverTest, UnreachableServersAreFailuresAndTheirUsersAreLeftOut) {
    hs->add_device(zoe, "ZDEV");
    hs->add_device(bob, "BDEV");
    hs->set_server_reachable("remote.test", false);
    auto c = client();
    const session s = login(c, alice, "A");
    auto answer = query(c, s, {bob, zoe});
    EXPECT_TRUE(has(answer, {"failures", "remote.test"}));
    EXPECT_FALSE(has(answer, {"device_keys", zoe}));
    EXPECT_TRUE(has(answer, {"device_keys", bob, "BDEV"}));

    const auto claim =
        c.post("/_matrix/client/v3/keys/claim",
               json::object{{"one_time_keys",
                             json::object{{zoe, json::object{{"ZDEV", "signed_curve25519"}}}}}},
               s.access_token);
    EXPECT_TRUE(has(claim.json(), {"failures", "remote.test"}));

    hs->set_server_reachable("remote.test", true);
    answer = query(c, s, {zoe});
    EXPECT_EQ(at(answer, {"failures"}), json::value(json::object{}));
    EXPECT_TRUE(has(answer, {"device_keys", zoe, "ZDEV"}));
}

// ---- cross-signing ----

TEST_F(HomeserverTest, CrossSigningUploadFollowsUserInteractiveAuth) {
    auto c = client();
    const session s = login(c, alice, "A");
    const auto master = crypto::ed25519_key_pair::generate();
    const auto self_signing = crypto::ed25519_key_pair::generate();
    const auto user_signing = crypto::ed25519_key_pair::generate();
    const json::object keys{
        {"master_key", cross_signing_key(alice, "master", master, master)},
        {"self_signing_key", cross_signing_key(alice, "self_signing", self_signing, master)},
        {"user_signing_key", cross_signing_key(alice, "user_signing", user_signing, master)}};
    const std::string upload = "/_matrix/client/v3/keys/device_signing/upload";

    // No master key yet: the first upload needs no UIA (spec v1.11).
    auto response = c.post(upload, keys, s.access_token);
    ASSERT_EQ(response.status, 200u) << response.body;
    EXPECT_EQ(hs->cross_signing_key(alice, cross_signing_key_kind::master), keys.at("master_key"));
    // The same keys again: idempotent, no UIA.
    EXPECT_EQ(c.post(upload, keys, s.access_token).status, 200u);

    const auto new_master = crypto::ed25519_key_pair::generate();
    json::object replacement{
        {"master_key", cross_signing_key(alice, "master", new_master, new_master)}};
    response = c.post(upload, replacement, s.access_token);
    ASSERT_EQ(response.status, 401u) << response.body;
    auto challenge = response.json();
    EXPECT_EQ(at(challenge, {"flows"}),
              json::value(json::array{json::object{{"stages", json::array{"m.login.password"}}}}));
    EXPECT_TRUE(has(challenge, {"params"}));
    const std::string session_id = at(challenge, {"session"}).as_string();
    EXPECT_FALSE(has(challenge, {"errcode"}));

    const auto auth = [&](const std::string& password) {
        return json::object{{"type", "m.login.password"},
                            {"identifier", json::object{{"type", "m.id.user"}, {"user", "alice"}}},
                            {"password", password},
                            {"session", session_id}};
    };
    replacement["auth"] = auth("wrong");
    response = c.post(upload, replacement, s.access_token);
    ASSERT_EQ(response.status, 401u) << response.body;
    challenge = response.json();
    EXPECT_EQ(errcode(response), "M_FORBIDDEN");
    EXPECT_EQ(at(challenge, {"session"}), json::value(session_id));
    EXPECT_TRUE(has(challenge, {"flows"}));

    replacement["auth"] = auth("alice-password");
    response = c.post(upload, replacement, s.access_token);
    ASSERT_EQ(response.status, 200u) << response.body;
    EXPECT_EQ(hs->cross_signing_key(alice, cross_signing_key_kind::master),
              replacement.at("master_key"));

    // A self-signing key not signed by the master key is refused even with auth.
    const auto stray = crypto::ed25519_key_pair::generate();
    json::object bad{
        {"self_signing_key", cross_signing_key(alice, "self_signing", self_signing, stray)}};
    response = c.post(upload, bad, s.access_token);
    ASSERT_EQ(response.status, 401u);
    bad["auth"] = auth("alice-password");
    bad["auth"].erase("session");
    response = c.post(upload, bad, s.access_token);
    EXPECT_EQ(response.status, 400u) << response.body;
    EXPECT_EQ(errcode(response), "M_INVALID_SIGNATURE");
}

TEST_F(HomeserverTest, OlderServersDemandAuthForTheFirstCrossSigningUpload) {
    start({.behaviour = {.uia_for_first_cross_signing_upload = true}});
    auto c = client();
    const session s = login(c, alice, "A");
    const auto master = crypto::ed25519_key_pair::generate();
    const auto response =
        c.post("/_matrix/client/v3/keys/device_signing/upload",
               json::object{{"master_key", cross_signing_key(alice, "master", master, master)}},
               s.access_token);
    EXPECT_EQ(response.status, 401u);
    EXPECT_TRUE(has(response.json(), {"session"}));
}

TEST_F(HomeserverTest, SignaturesUploadStoresValidSignaturesAndReportsBadOnes) {
    auto c = client();
    const session s = login(c, alice, "A");
    const client_keys device;
    ASSERT_EQ(c.post("/_matrix/client/v3/keys/upload",
                     json::object{{"device_keys", device.device_keys(alice, "A")}}, s.access_token)
                  .status,
              200u);
    const auto master = crypto::ed25519_key_pair::generate();
    const auto self_signing = crypto::ed25519_key_pair::generate();
    const auto user_signing = crypto::ed25519_key_pair::generate();
    ASSERT_EQ(
        c.post("/_matrix/client/v3/keys/device_signing/upload",
               json::object{{"master_key", cross_signing_key(alice, "master", master, master)},
                            {"self_signing_key",
                             cross_signing_key(alice, "self_signing", self_signing, master)},
                            {"user_signing_key",
                             cross_signing_key(alice, "user_signing", user_signing, master)}},
               s.access_token)
            .status,
        200u);
    hs->bootstrap_cross_signing(bob);

    const std::string ssk_id = "ed25519:" + self_signing.public_key().to_base64();
    json::value my_device = *hs->uploaded_device_keys(alice, "A");
    crypto::sign_json(my_device, alice, ssk_id, self_signing);
    json::value bobs_master = *hs->cross_signing_key(bob, cross_signing_key_kind::master);
    crypto::sign_json(bobs_master, alice, "ed25519:" + user_signing.public_key().to_base64(),
                      user_signing);
    const std::string bobs_master_id =
        bobs_master.find("keys")->as_object().begin()->second.as_string();
    json::value forged = *hs->uploaded_device_keys(alice, "A");
    crypto::sign_json(forged, alice, ssk_id, crypto::ed25519_key_pair::generate());

    auto response = c.post("/_matrix/client/v3/keys/signatures/upload",
                           json::object{{alice, json::object{{"A", my_device}}},
                                        {bob, json::object{{bobs_master_id, bobs_master}}}},
                           s.access_token);
    ASSERT_EQ(response.status, 200u);
    EXPECT_EQ(at(response.json(), {"failures"}), json::value(json::object{}));
    const auto served = *hs->served_device_keys(alice, "A");
    EXPECT_TRUE(verifies(served, alice, ssk_id, self_signing.public_key().to_base64()));

    // Alice's signature on Bob's master key is for Alice's eyes only.
    auto b = client();
    const session as_bob = login(b, bob, "B");
    EXPECT_FALSE(has(query(b, as_bob, {bob}), {"master_keys", bob, "signatures", alice}));
    EXPECT_TRUE(has(query(c, s, {bob}), {"master_keys", bob, "signatures", alice}));

    response = c.post("/_matrix/client/v3/keys/signatures/upload",
                      json::object{{alice, json::object{{"A", forged}, {"NOPE", forged}}}},
                      s.access_token);
    EXPECT_EQ(at(response.json(), {"failures", alice, "A", "errcode"}),
              json::value("M_INVALID_SIGNATURE"));
    EXPECT_EQ(at(response.json(), {"failures", alice, "NOPE", "errcode"}),
              json::value("M_NOT_FOUND"));
}

// ---- /sync ----

TEST_F(HomeserverTest, SyncCarriesRoomStateInvitesAndLeftRooms) {
    const std::string encrypted = hs->create_room(bob, true);
    hs->join(encrypted, alice);
    const std::string invited = hs->create_room(carol, true);
    hs->invite(invited, alice);
    auto c = client();
    const session s = login(c, alice, "A");

    const auto first = sync(c, s);
    EXPECT_FALSE(has(first, {"device_lists"}));  // only in incremental syncs
    const json::value room = at(first, {"rooms", "join", encrypted});
    std::vector<std::string> types = event_types(at(room, {"state", "events"}));
    for (auto& type : event_types(at(room, {"timeline", "events"}))) {
        types.push_back(type);
    }
    EXPECT_TRUE(contains(types, "m.room.create"));
    EXPECT_TRUE(contains(types, "m.room.member"));
    EXPECT_TRUE(contains(types, "m.room.encryption"));
    const auto invite_types =
        event_types(at(first, {"rooms", "invite", invited, "invite_state", "events"}));
    EXPECT_TRUE(contains(invite_types, "m.room.encryption"));
    EXPECT_TRUE(contains(invite_types, "m.room.member"));

    // Nothing new: an incremental sync leaves the room out, unless full_state asks for it.
    EXPECT_FALSE(has(sync(c, s, next_batch(first)), {"rooms", "join", encrypted}));
    const auto full =
        c.get("/_matrix/client/v3/sync?full_state=true&timeout=60000&since=" + next_batch(first),
              s.access_token)
            .json();
    EXPECT_TRUE(contains(event_types(at(full, {"rooms", "join", encrypted, "state", "events"})),
                         "m.room.encryption"));

    hs->leave(encrypted, alice);
    const auto second = sync(c, s, next_batch(first));
    EXPECT_TRUE(has(second, {"rooms", "leave", encrypted}));
    EXPECT_FALSE(has(second, {"rooms", "join"}));
    EXPECT_FALSE(has(second, {"rooms", "invite"}));

    const auto members = c.get("/_matrix/client/v3/rooms/" + invited + "/members", s.access_token);
    EXPECT_EQ(members.status, 403u);
    hs->join(invited, alice);
    const auto joined = c.get("/_matrix/client/v3/rooms/" + invited + "/members", s.access_token);
    EXPECT_EQ(at(joined.json(), {"chunk"}).as_array().size(), 2u);
}

TEST_F(HomeserverTest, DeviceListsNameAUserWhoAddedADevice) {
    const std::string room = hs->create_room(alice, true);
    hs->join(room, bob);
    auto c = client();
    const session s = login(c, alice, "A");
    const auto first = sync(c, s);

    hs->add_device(bob, "BNEW");
    const auto next = sync(c, s, next_batch(first));
    EXPECT_EQ(strings(at(next, {"device_lists", "changed"})), std::vector<std::string>{bob});
    EXPECT_FALSE(has(next, {"device_lists", "left"}));

    // Own devices: another one is news, the syncing device's own upload is not.
    hs->add_device(alice, "ANOTHER");
    const auto own = sync(c, s, next_batch(next));
    EXPECT_EQ(strings(at(own, {"device_lists", "changed"})), std::vector<std::string>{alice});
    const client_keys keys;
    c.post("/_matrix/client/v3/keys/upload",
           json::object{{"device_keys", keys.device_keys(alice, "A")}}, s.access_token);
    EXPECT_FALSE(has(sync(c, s, next_batch(own)), {"device_lists"}));
}

TEST_F(HomeserverTest, DeviceListsNameUsersWhoNewlyShareAnEncryptedRoom) {
    const std::string encrypted = hs->create_room(alice, true);
    const std::string plain = hs->create_room(alice, false);
    hs->join(plain, bob);
    auto c = client();
    const session s = login(c, alice, "A");
    auto state = sync(c, s);

    hs->invite(encrypted, carol);  // invited counts as sharing
    state = sync(c, s, next_batch(state));
    EXPECT_EQ(strings(at(state, {"device_lists", "changed"})), std::vector<std::string>{carol});

    hs->enable_encryption(plain);  // a shared room turned encrypted
    state = sync(c, s, next_batch(state));
    EXPECT_EQ(strings(at(state, {"device_lists", "changed"})), std::vector<std::string>{bob});

    const std::string elsewhere = hs->create_room(carol, true);
    hs->join(elsewhere, alice);  // the user joined one
    state = sync(c, s, next_batch(state));
    EXPECT_TRUE(contains(strings(at(state, {"device_lists", "changed"})), carol));
}

TEST_F(HomeserverTest, DeviceListsLeftOnlyWhenTheLastSharedEncryptedRoomIsLeft) {
    const std::string first_room = hs->create_room(alice, true);
    const std::string second_room = hs->create_room(alice, true);
    hs->join(first_room, bob);
    hs->join(second_room, bob);
    auto c = client();
    const session s = login(c, alice, "A");
    auto state = sync(c, s);

    hs->leave(first_room, bob);  // still shares second_room: stays tracked
    state = sync(c, s, next_batch(state));
    EXPECT_FALSE(has(state, {"device_lists"}));

    hs->leave(second_room, bob);
    state = sync(c, s, next_batch(state));
    EXPECT_EQ(strings(at(state, {"device_lists", "left"})), std::vector<std::string>{bob});
    EXPECT_FALSE(has(state, {"device_lists", "changed"}));

    hs->add_device(bob, "AFTER");  // no longer shared: not news for alice
    EXPECT_FALSE(has(sync(c, s, next_batch(state)), {"device_lists"}));
}

TEST_F(HomeserverTest, LongPollWakesEarlyOnARelevantChange) {
    const std::string room = hs->create_room(alice, true);
    hs->join(room, bob);
    auto c = client();
    const session s = login(c, alice, "A");
    const std::string since = next_batch(sync(c, s));

    json::value woken;
    std::thread poller([&] { woken = sync(c, s, since, 20000); });
    ASSERT_TRUE(hs->wait_for_long_poll(alice, std::chrono::steady_clock::now() + 10s));
    const auto changed_at = std::chrono::steady_clock::now();
    hs->add_device(bob, "WAKE");
    poller.join();
    EXPECT_LT(std::chrono::steady_clock::now() - changed_at, 5s);
    EXPECT_EQ(strings(at(woken, {"device_lists", "changed"})), std::vector<std::string>{bob});
}

TEST_F(HomeserverTest, LongPollTimesOutWhenNothingRelevantChanges) {
    auto c = client();
    const session s = login(c, alice, "A");
    const std::string since = next_batch(sync(c, s));

    const auto started = std::chrono::steady_clock::now();
    json::value empty;
    std::thread poller([&] { empty = sync(c, s, since, 700); });
    ASSERT_TRUE(hs->wait_for_long_poll(alice, started + 10s));
    hs->add_device(carol, "ELSEWHERE");  // wakes the poll, which finds nothing for alice
    poller.join();
    const auto waited = std::chrono::steady_clock::now() - started;
    EXPECT_GE(waited, 700ms);
    EXPECT_LT(waited, 5s);
    EXPECT_FALSE(has(empty, {"device_lists"}));
    EXPECT_FALSE(has(empty, {"rooms"}));
    EXPECT_NE(next_batch(empty), since);  // the stream moved on regardless
}

TEST_F(HomeserverTest, ToDeviceMessagesAreDeliveredOnceAndTransactionsAreIdempotent) {
    auto a = client();
    const session to = login(a, alice, "A");
    auto b = client();
    const session from = login(b, bob, "B");
    const json::value body = json::object{
        {"messages", json::object{{alice, json::object{{"*", json::object{{"hello", 1}}}}}}}};
    EXPECT_EQ(b.put("/_matrix/client/v3/sendToDevice/m.test/txn1", body, from.access_token).status,
              200u);
    EXPECT_EQ(b.put("/_matrix/client/v3/sendToDevice/m.test/txn1", body, from.access_token).status,
              200u);
    hs->send_to_device(carol, alice, "A", "m.other", json::object{});

    const auto first = sync(a, to);
    const json::value events = at(first, {"to_device", "events"});
    ASSERT_EQ(events.as_array().size(), 2u);
    EXPECT_EQ(events.as_array()[0],
              json::value(json::object{
                  {"sender", bob}, {"type", "m.test"}, {"content", json::object{{"hello", 1}}}}));
    EXPECT_FALSE(has(sync(a, to, next_batch(first)), {"to_device"}));
}

TEST_F(HomeserverTest, KeysChangesReportsChangesSinceAToken) {
    const std::string room = hs->create_room(alice, true);
    hs->join(room, bob);
    hs->join(room, carol);
    auto c = client();
    const session s = login(c, alice, "A");
    const std::string from = next_batch(sync(c, s));

    hs->add_device(bob, "BNEW");
    hs->leave(room, carol);
    const auto response = c.get(
        "/_matrix/client/v3/keys/changes?from=" + from + "&to=" + hs->sync_token(), s.access_token);
    ASSERT_EQ(response.status, 200u);
    EXPECT_EQ(strings(at(response.json(), {"changed"})), std::vector<std::string>{bob});
    EXPECT_EQ(strings(at(response.json(), {"left"})), std::vector<std::string>{carol});
    const auto bad = c.get("/_matrix/client/v3/keys/changes?from=nonsense&to=s1", s.access_token);
    EXPECT_EQ(bad.status, 400u);
}

// ---- faults ----

class FaultTest : public HomeserverTest {
  protected:
    static constexpr const char* versions = "/_matrix/client/versions";
};

TEST_F(FaultTest, DelayThenAnswer) {
    hs->inject({.path_prefix = versions, .action = fault_action::delay{300ms}});
    auto c = client();
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(c.get(versions).status, 200u);
    EXPECT_GE(std::chrono::steady_clock::now() - started, 300ms);
}

TEST_F(FaultTest, RateLimitCarriesRetryAfter) {
    hs->inject({.path_prefix = versions, .action = fault_action::rate_limit{1500ms}});
    auto c = client();
    const auto limited = c.get(versions);
    EXPECT_EQ(limited.status, 429u);
    EXPECT_EQ(errcode(limited), "M_LIMIT_EXCEEDED");
    EXPECT_EQ(at(limited.json(), {"retry_after_ms"}), json::value(1500));
    EXPECT_EQ(limited.retry_after, "2");
    EXPECT_EQ(c.get(versions).status, 200u);  // count 1: only the next request
}

TEST_F(FaultTest, ServerErrorsMatchByMethodAndCount) {
    hs->inject({.path_prefix = "/_matrix/client/v3/login",
                .action = fault_action::server_error{503},
                .method = "POST",
                .count = 2});
    auto c = client();
    EXPECT_EQ(c.get("/_matrix/client/v3/login").status, 200u);
    const json::value body = json::object{
        {"type", "m.login.password"}, {"user", "alice"}, {"password", "alice-password"}};
    EXPECT_EQ(c.post("/_matrix/client/v3/login", body).status, 503u);
    EXPECT_EQ(c.post("/_matrix/client/v3/login", body).status, 503u);
    EXPECT_EQ(c.post("/_matrix/client/v3/login", body).status, 200u);
}

TEST_F(FaultTest, DroppedConnectionGivesNoAnswer) {
    hs->inject({.path_prefix = versions, .action = fault_action::drop_connection{}});
    auto c = client();
    EXPECT_TRUE(c.get(versions).error);
    EXPECT_EQ(c.get(versions).status, 200u);
    EXPECT_TRUE(hs->wait_for_request(
        [](const request_record& r) { return r.path == versions && r.status == 0; },
        std::chrono::steady_clock::now()));
}

TEST_F(FaultTest, TruncatedBodyEndsEarly) {
    hs->inject({.path_prefix = versions, .action = fault_action::truncate_body{}});
    auto c = client();
    const auto cut = c.get(versions);
    EXPECT_TRUE(cut.error);
    EXPECT_EQ(c.get(versions).status, 200u);
}

TEST_F(FaultTest, RawResponsesAreSentVerbatim) {
    const std::string deep(10000, '[');
    for (const std::string& body :
         {std::string("{\"next_batch\": "), deep, std::string("\xff\xfe")}) {
        hs->inject({.path_prefix = "/_matrix/client/v3/sync",
                    .action = fault_action::raw_response{.status = 200, .body = body}});
        auto c = client();
        const session s = login(c, alice, "A");
        const auto response = c.get("/_matrix/client/v3/sync", s.access_token);
        EXPECT_EQ(response.status, 200u);
        EXPECT_EQ(response.body, body);
    }
}

TEST_F(FaultTest, HangHoldsTheRequestUntilTheClientGivesUp) {
    hs->inject({.path_prefix = versions, .action = fault_action::hang{}});
    auto c = client();
    const auto hung = c.get(versions, {}, 300ms);
    EXPECT_EQ(hung.error, boost::asio::error::timed_out);
    EXPECT_EQ(c.get(versions).status, 200u);
}

TEST_F(FaultTest, RejectedSyncTokenThenRecoveryThroughKeysChanges) {
    const std::string room = hs->create_room(alice, true);
    hs->join(room, bob);
    auto c = client();
    const session s = login(c, alice, "A");
    const std::string old_token = next_batch(sync(c, s));
    hs->add_device(bob, "WHILE_AWAY");

    hs->inject(
        {.path_prefix = "/_matrix/client/v3/sync", .action = fault_action::reject_sync_token{}});
    const auto rejected = c.get("/_matrix/client/v3/sync?since=" + old_token, s.access_token);
    EXPECT_EQ(rejected.status, 400u);
    EXPECT_EQ(errcode(rejected), "M_UNKNOWN");

    const std::string fresh = next_batch(sync(c, s));
    const auto changes =
        c.get("/_matrix/client/v3/keys/changes?from=" + old_token + "&to=" + fresh, s.access_token);
    EXPECT_EQ(strings(at(changes.json(), {"changed"})), std::vector<std::string>{bob});
    EXPECT_EQ(c.get("/_matrix/client/v3/sync?since=garbage", s.access_token).status, 400u);
}

TEST_F(FaultTest, RevokedAccessTokenStaysRevoked) {
    auto c = client();
    const session s = login(c, alice, "A");
    hs->inject({.path_prefix = "/_matrix/client/v3/account/whoami",
                .action = fault_action::revoke_access_token{}});
    EXPECT_EQ(errcode(c.get("/_matrix/client/v3/account/whoami", s.access_token)),
              "M_UNKNOWN_TOKEN");
    EXPECT_EQ(errcode(c.get("/_matrix/client/v3/account/whoami", s.access_token)),
              "M_UNKNOWN_TOKEN");
}

TEST_F(FaultTest, OversizedRequestBodiesAre413) {
    start({.limits = {.max_request_body_bytes = 1024}});
    auto c = client();
    const auto response = c.send("POST", "/_matrix/client/v3/login", std::string(4096, ' '), {},
                                 std::chrono::seconds(10));
    EXPECT_EQ(response.status, 413u);
}

TEST_F(FaultTest, LargeBodiesAfterExpect100Continue) {
    namespace asio = boost::asio;
    asio::io_context io;
    asio::ip::tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), hs->port()});
    const std::string body = json::to_canonical(login_body("alice", "A"));
    const std::string head =
        "POST /_matrix/client/v3/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Expect: 100-continue\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\n\r\n";
    asio::write(socket, asio::buffer(head));
    std::string received;
    asio::read_until(socket, asio::dynamic_buffer(received), "\r\n\r\n");
    EXPECT_EQ(received.rfind("HTTP/1.1 100 Continue\r\n", 0), 0u) << received;
    received.clear();
    asio::write(socket, asio::buffer(body));
    asio::read_until(socket, asio::dynamic_buffer(received), "\r\n\r\n");
    EXPECT_EQ(received.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << received;
}

// ---- the request log and shutdown ----

TEST_F(HomeserverTest, RequestLogNamesUsersAndWaitsForMatches) {
    hs->add_device(bob, "BDEV");
    auto c = client();
    const session s = login(c, alice, "A");
    const std::size_t mark = hs->request_count();
    std::thread querier([&] { query(c, s, {bob}); });
    const auto seen = hs->wait_for_request(
        [](const request_record& r) {
            return r.path == "/_matrix/client/v3/keys/query" &&
                   r.request_body.find("@bob:localhost") != std::string::npos;
        },
        std::chrono::steady_clock::now() + 10s, mark);
    querier.join();
    ASSERT_TRUE(seen);
    EXPECT_EQ(seen->status, 200u);
    EXPECT_EQ(seen->user_id, alice);
    EXPECT_FALSE(hs->wait_for_request([](const request_record&) { return true; },
                                      std::chrono::steady_clock::now() + 50ms,
                                      hs->request_count()));
}

TEST_F(HomeserverTest, StopEndsIdleHungAndPollingConnections) {
    auto idle = client();
    EXPECT_EQ(idle.get("/_matrix/client/versions").status, 200u);  // stays open (keep-alive)
    hs->inject({.path_prefix = "/_matrix/client/versions", .action = fault_action::hang{}});
    auto hung = client();
    std::thread hanging([&] { hung.get("/_matrix/client/versions", {}, 60s); });
    auto p = client();
    const session s = login(p, alice, "A");
    const std::string since = next_batch(sync(p, s));
    std::thread polling([&] {
        p.get("/_matrix/client/v3/sync?timeout=60000&since=" + since, s.access_token, 60s);
    });
    ASSERT_TRUE(hs->wait_for_long_poll(alice, std::chrono::steady_clock::now() + 10s));
    ASSERT_TRUE(hs->wait_for_request([](const request_record& r) { return r.status == 0; },
                                     std::chrono::steady_clock::now() + 10s));

    const auto started = std::chrono::steady_clock::now();
    hs->stop();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    hanging.join();
    polling.join();
}

// ---- TLS ----

TEST(HomeserverTls, ServesHttpsWithACertificateClientsCanVerify) {
    const auto dir =
        std::filesystem::temp_directory_path() /
        ("devlist-hs-tls-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "-" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(dir);
    const auto cert = dir / "cert.pem";
    const auto key = dir / "key.pem";
    const std::string command =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 "
        "-subj /CN=localhost -addext subjectAltName=DNS:localhost -keyout '" +
        key.string() + "' -out '" + cert.string() + "' 2>/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0);

    test_homeserver hs({.tls = tls_files{cert, key}});
    ASSERT_TRUE(hs.start());
    EXPECT_EQ(hs.base_url().rfind("https://127.0.0.1:", 0), 0u);
    http_test_client trusting(hs.port(), tls_client_options{cert, "localhost"});
    EXPECT_EQ(trusting.get("/_matrix/client/versions").status, 200u);
    http_test_client wrong_name(hs.port(), tls_client_options{cert, "matrix.example.org"});
    EXPECT_TRUE(wrong_name.get("/_matrix/client/versions").error);
    http_test_client untrusting(hs.port(), tls_client_options{{}, "localhost"});
    EXPECT_TRUE(untrusting.get("/_matrix/client/versions").error);
    http_test_client plain(hs.port());
    EXPECT_NE(plain.get("/_matrix/client/versions", {}, 2s).status, 200u);
    hs.stop();
    std::filesystem::remove_all(dir);
}

TEST(HomeserverTls, UnusableCertificateFilesFailToStart) {
    test_homeserver hs({.tls = tls_files{"/nonexistent/cert.pem", "/nonexistent/key.pem"}});
    EXPECT_FALSE(hs.start());
}

}  // namespace
}  // namespace devlist::testing
