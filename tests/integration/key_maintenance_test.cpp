// Key maintenance against the spec-faithful test homeserver: each behaviour of issue 4.
#include <algorithm>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/signed_json.hpp"
#include "engine_fixture.hpp"
#include "sync/own_keys.hpp"
#include "tests/homeserver/http_test_client.hpp"

namespace devlist::test {
namespace {

using testing::fault;
namespace fault_action = testing::fault_action;
using namespace std::chrono_literals;

constexpr const char* device = "BOTDEVICE";
constexpr std::string_view keys_upload = "/_matrix/client/v3/keys/upload";
constexpr std::string_view device_signing = "/_matrix/client/v3/keys/device_signing/upload";

class key_maintenance_test : public engine_fixture {
  protected:
    std::int64_t now_ms = 1'700'000'000'000;

    void SetUp() override {
        engine_fixture::SetUp();
        options.clock = [this] { return now_ms; };
    }

    sync::key_status keys() const { return engine->status().keys; }

    // The server has target one-time keys, a published fallback key, nothing pending.
    bool settled() const {
        if (!engine) return false;
        auto k = engine->status().keys;
        return k.identity_uploaded && k.one_time_keys_on_server == 50 &&
               k.one_time_keys_pending == 0 && k.fallback_published &&
               hs.one_time_key_count(bot, device) == 50;
    }

    std::vector<testing::request_record> requests_to(std::string_view path) const {
        std::vector<testing::request_record> out;
        for (auto& r : hs.requests()) {
            if (r.path == path) out.push_back(std::move(r));
        }
        return out;
    }
    std::size_t uploads_with(std::string_view field) const {
        std::size_t n = 0;
        for (const auto& r : requests_to(keys_upload)) {
            if (r.request_body.find(field) != std::string::npos) ++n;
        }
        return n;
    }

    // Wakes the engine's long-poll with a change, so that a sync reports the new key state.
    void nudge() {
        static int n = 0;
        hs.add_user("@nudge" + std::to_string(++n) + ":localhost", "pw");
        hs.create_room("@nudge" + std::to_string(n) + ":localhost", false);
    }
};

TEST_F(key_maintenance_test, first_start_creates_identity_and_publishes_keys) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    auto identity = store->account().load();
    ASSERT_TRUE(identity && *identity);
    const auto& id = **identity;
    EXPECT_EQ(id.device_id, device);
    EXPECT_TRUE(id.device_keys_uploaded);
    // The server holds exactly our signed device keys, with a valid self-signature.
    auto uploaded = hs.uploaded_device_keys(bot, device);
    ASSERT_TRUE(uploaded);
    EXPECT_EQ((*uploaded)["keys"]["ed25519:BOTDEVICE"].as_string(), id.ed25519_public);
    EXPECT_EQ((*uploaded)["keys"]["curve25519:BOTDEVICE"].as_string(), id.curve25519_public);
    auto pub = crypto::ed25519_public_key::from_base64(id.ed25519_public);
    ASSERT_TRUE(pub);
    EXPECT_TRUE(crypto::verify_json(json::to_canonical(*uploaded), bot, "ed25519:BOTDEVICE", *pub));
    // Every published key has its private part, sealed: 50 one-time keys, one fallback key.
    EXPECT_EQ(*store->one_time_keys().count(storage::key_state::published), 50);
    auto handed = engine->fallback_keys();
    ASSERT_TRUE(handed);
    ASSERT_EQ(handed->size(), 1u);
    EXPECT_TRUE((*handed)[0].current);
    EXPECT_EQ(hs.unused_fallback_key_types(bot, device),
              std::vector<std::string>{"signed_curve25519"});
    EXPECT_EQ(keys().one_time_keys_uploaded, 50u);
    EXPECT_EQ(keys().ed25519, id.ed25519_public);
    // One upload of the identity, one of the fallback key, one of the 50 keys (plus at most
    // the empty upload that asks for the counts): nothing repeated.
    EXPECT_EQ(uploads_with("device_keys"), 1u);
    EXPECT_EQ(uploads_with("\"fallback_keys\""), 1u);
    EXPECT_EQ(uploads_with("one_time_keys"), 1u);
}

TEST_F(key_maintenance_test, a_restart_with_the_matching_identity_uploads_nothing_new) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    const auto before = requests_to(keys_upload).size();
    const auto ed25519 = keys().ed25519;
    restart();
    ASSERT_TRUE(run_until([&] { return settled() && engine->status().syncs > 0; }));
    EXPECT_EQ(keys().ed25519, ed25519);
    // At most the empty upload that reads the counts; no keys.
    auto after = requests_to(keys_upload);
    for (std::size_t i = before; i < after.size(); ++i)
        EXPECT_EQ(after[i].request_body, "{}");
    EXPECT_EQ(uploads_with("device_keys"), 1u);
}

TEST_F(key_maintenance_test, a_mismatching_identity_on_the_server_stops_with_a_clear_error) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    stop();
    // Another client took over the device ID and uploaded other keys.
    auto other = *hs.uploaded_device_keys(bot, device);
    other["keys"]["ed25519:BOTDEVICE"] = "SGFja2VyIGtleSBmb3IgQk9UREVWSUNFIHRha2VvdmVyIQ";
    hs.set_device_keys_json(bot, device, other);
    const auto uploads = requests_to(keys_upload).size();
    restart();
    ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
    ASSERT_FALSE(*ended);
    EXPECT_NE(ended->error().detail.find("other identity keys for device BOTDEVICE"),
              std::string::npos)
        << ended->error().detail;
    EXPECT_EQ(requests_to(keys_upload).size(), uploads);  // nothing uploaded over them
}

TEST_F(key_maintenance_test, a_lost_database_for_a_device_with_keys_is_refused) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    stop();
    engine.reset();
    http.reset();
    store.reset();
    std::filesystem::remove(dir / "devlistd.db");
    const auto uploads = requests_to(keys_upload).size();
    io.restart();
    start();
    ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
    ASSERT_FALSE(*ended);
    EXPECT_NE(ended->error().detail.find("already has identity keys"), std::string::npos);
    EXPECT_NE(ended->error().detail.find("never uploads new identity keys"), std::string::npos);
    EXPECT_EQ(requests_to(keys_upload).size(), uploads);
}

TEST_F(key_maintenance_test, claimed_keys_are_topped_up_exactly) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    for (int i = 0; i < 12; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, device));
    nudge();
    ASSERT_TRUE(run_until([&] { return keys().one_time_keys_uploaded == 62 && settled(); }));
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);
    // Claims hand keys out oldest first; their private parts are still here (kept until taken).
    EXPECT_EQ(*store->one_time_keys().count(storage::key_state::published), 62);
}

TEST_F(key_maintenance_test, a_new_target_applies_while_running) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    engine->set_one_time_key_target(60);
    ASSERT_TRUE(run_until([&] {
        return hs.one_time_key_count(bot, device) == 60 && keys().one_time_keys_uploaded == 60;
    }));
    EXPECT_EQ(keys().one_time_key_target, 60u);
}

TEST_F(key_maintenance_test, a_missing_count_means_zero) {
    testing::server_behaviour b;
    b.omit_zero_one_time_key_counts = true;
    hs.set_behaviour(b);
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, device));
    nudge();
    // The server now leaves signed_curve25519 out: devlistd reads 0 and tops up to 50.
    ASSERT_TRUE(run_until([&] { return keys().one_time_keys_uploaded == 100 && settled(); }));
}

TEST_F(key_maintenance_test, a_lost_upload_answer_is_retried_with_the_same_keys) {
    hs.inject({.path_prefix = std::string(keys_upload),
               .action = fault_action::lose_answer{},
               .method = "POST",
               .count = 3});
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    // Every upload whose answer was lost was sent again byte for byte, and accepted.
    auto uploads = requests_to(keys_upload);
    for (std::size_t i = 0; i < 3; ++i) {
        ASSERT_EQ(uploads[i].status, 0u);
        EXPECT_EQ(uploads[i].request_body, uploads[i + 1].request_body);
    }
    for (const auto& r : uploads) {
        if (r.status != 0) {
            EXPECT_EQ(r.status, 200u) << r.response_body;
        }
    }
    EXPECT_EQ(keys().one_time_key_conflicts, 0u);
}

TEST_F(key_maintenance_test, a_conflicting_key_id_is_reported_dropped_and_not_retried_in_a_storm) {
    // Someone else put a key under the ID devlistd will give its first one-time key (the
    // fallback key, created first, takes AAAAAQ from the same counter).
    auto other = hs.login(bot, device);
    testing::http_test_client client(hs.port());
    auto put = client.post(
        std::string(keys_upload),
        json::object{{"one_time_keys", json::object{{"signed_curve25519:AAAAAg",
                                                     json::object{{"key", "c29tZW9uZSBlbHNl"}}}}}},
        other.access_token);
    ASSERT_EQ(put.status, 200u);
    start();
    ASSERT_TRUE(run_until([&] { return keys().one_time_key_conflicts == 1 && settled(); }));
    // Recorded for people and programs, and the refused key is gone (never published).
    auto events = security_events();
    ASSERT_TRUE(std::any_of(events.begin(), events.end(), [](const auto& e) {
        return e.kind == "one_time_key_conflict" &&
               e.detail_json.find("AAAAAg") != std::string::npos;
    }));
    EXPECT_FALSE(*store->one_time_keys().find("AAAAAg"));
    EXPECT_TRUE(logged("refused one-time key AAAAAg"));
    // One refused upload; the rest went through after one backoff.
    std::size_t refused = 0;
    for (const auto& r : requests_to(keys_upload)) {
        if (r.status == 400) ++refused;
    }
    EXPECT_EQ(refused, 1u);
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);  // 49 of ours and the other one
}

TEST_F(key_maintenance_test, a_used_fallback_key_is_rotated_once_and_the_previous_kept_an_hour) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    const auto first = *keys().fallback_key_id;
    // Claims exhaust the one-time keys; the next claim hands out the fallback key.
    for (int i = 0; i < 51; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, device));
    nudge();
    ASSERT_TRUE(run_until([&] {
        return keys().fallback_key_id != first && settled() &&
               hs.unused_fallback_key_types(bot, device).size() == 1;
    }));
    auto handed = engine->fallback_keys();
    ASSERT_TRUE(handed);
    ASSERT_EQ(handed->size(), 2u);
    EXPECT_FALSE((*handed)[1].current);
    EXPECT_EQ((*handed)[1].key.key_id, first);
    ASSERT_TRUE((*handed)[1].erase_after);
    EXPECT_EQ(*(*handed)[1].erase_after, now_ms + 3600 * 1000);
    // More syncs with the same state rotate nothing more.
    const auto fallback_uploads = uploads_with("\"fallback_keys\"");
    nudge();
    const auto syncs = engine->status().syncs;
    ASSERT_TRUE(run_until([&] { return engine->status().syncs >= syncs + 2; }));
    nudge();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs >= syncs + 3; }));
    EXPECT_EQ(uploads_with("\"fallback_keys\""), fallback_uploads);
    // An hour after the successor's publication the old private key is erased.
    now_ms += 3600 * 1000;
    nudge();
    ASSERT_TRUE(run_until([&] {
        auto h = engine->fallback_keys();
        return h && h->size() == 1;
    }));
}

TEST_F(key_maintenance_test, the_fallback_key_is_rotated_weekly) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    const auto first = *keys().fallback_key_id;
    now_ms += 6LL * 24 * 3600 * 1000;
    nudge();
    const auto syncs = engine->status().syncs;
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > syncs; }));
    EXPECT_EQ(*keys().fallback_key_id, first);
    now_ms += 1LL * 24 * 3600 * 1000;
    nudge();
    ASSERT_TRUE(run_until([&] { return keys().fallback_key_id != first && settled(); }));
    EXPECT_EQ(hs.unused_fallback_key_types(bot, device),
              std::vector<std::string>{"signed_curve25519"});
}

TEST_F(key_maintenance_test, no_fallback_key_where_the_server_does_not_support_them) {
    testing::server_behaviour b;
    b.fallback_key_types = testing::fallback_key_types_field::neither;
    hs.set_behaviour(b);
    start();
    ASSERT_TRUE(run_until(
        [&] { return engine->status().syncs > 1 && keys().one_time_keys_on_server == 50; }));
    EXPECT_FALSE(keys().fallback_supported);
    EXPECT_FALSE(keys().fallback_key_id);
    EXPECT_EQ(uploads_with("fallback_keys"), 0u);
}

TEST_F(key_maintenance_test, the_unstable_fallback_field_alone_is_understood) {
    testing::server_behaviour b;
    b.fallback_key_types = testing::fallback_key_types_field::unstable;
    hs.set_behaviour(b);
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    EXPECT_TRUE(keys().fallback_supported);
}

TEST_F(key_maintenance_test, a_taken_one_time_key_opens_to_its_public_key_and_is_erased) {
    start();
    ASSERT_TRUE(run_until([&] { return settled(); }));
    auto claimed = hs.claim_one_time_key(bot, device);
    ASSERT_TRUE(claimed);
    const auto& [full_id, key] = *claimed->as_object().begin();
    const std::string key_id = full_id.substr(full_id.find(':') + 1);
    const std::string public_key = key.find("key")->as_string();
    auto taken = engine->take_one_time_key(key_id);
    ASSERT_TRUE(taken && *taken);
    EXPECT_EQ((*taken)->public_key, public_key);
    auto secret = crypto::base64_decode((*taken)->private_key);
    ASSERT_TRUE(secret);
    auto pair = crypto::curve25519_key_pair::from_secret(*secret);
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->public_key().to_base64(), public_key);
    EXPECT_FALSE(*engine->take_one_time_key(key_id));  // erased when handed out
    // By public key too.
    auto another = hs.claim_one_time_key(bot, device);
    const std::string pub = another->as_object().begin()->second.find("key")->as_string();
    auto by_pub = engine->take_one_time_key_by_public_key(pub);
    ASSERT_TRUE(by_pub && *by_pub);
    EXPECT_EQ((*by_pub)->public_key, pub);
}

class cross_signing_test : public key_maintenance_test {
  protected:
    void SetUp() override {
        key_maintenance_test::SetUp();
        options.bootstrap_cross_signing = true;
        testing::server_behaviour b;
        b.uia_for_first_cross_signing_upload = true;  // so that UIA is exercised
        hs.set_behaviour(b);
    }
    bool cross_signing_is(sync::cross_signing_state s) const {
        return engine && engine->status().keys.cross_signing == s;
    }
};

TEST_F(cross_signing_test, keys_are_created_uploaded_with_uia_and_the_device_signed) {
    start();
    ASSERT_TRUE(run_until([&] { return cross_signing_is(sync::cross_signing_state::uploaded); }));
    auto own = store->own_cross_signing().load();
    ASSERT_TRUE(own);
    ASSERT_EQ(own->size(), 3u);
    auto master = hs.cross_signing_key(bot, testing::cross_signing_key_kind::master);
    ASSERT_TRUE(master);
    EXPECT_EQ((*master)["keys"]["ed25519:" + (*own)[0].public_key].as_string(),
              (*own)[0].public_key);
    // The own device carries a valid signature of the self-signing key.
    auto served = hs.served_device_keys(bot, device);
    ASSERT_TRUE(served);
    const auto& ssk = (*own)[1].public_key;
    auto ssk_key = crypto::ed25519_public_key::from_base64(ssk);
    ASSERT_TRUE(ssk_key);
    EXPECT_TRUE(crypto::verify_json(json::to_canonical(*served), bot, "ed25519:" + ssk, *ssk_key));
    // The first try had no auth and got the challenge; the second passed it.
    auto uploads = requests_to(device_signing);
    ASSERT_EQ(uploads.size(), 2u);
    EXPECT_EQ(uploads[0].status, 401u);
    EXPECT_EQ(uploads[1].status, 200u);
    EXPECT_NE(uploads[1].request_body.find("m.login.password"), std::string::npos);
    // And the engine's own /keys/query sees its device as cross-signed by itself.
    ASSERT_TRUE(run_until([&] {
        auto d = devices_of(bot);
        return d.size() == 1 && d[0].cross_signed;
    }));
}

TEST_F(cross_signing_test, a_wrong_password_is_a_clear_error_and_no_loop) {
    auto session = hs.login(bot, device);
    options.access_token = session.access_token;
    options.password = "not-the-password";
    start();
    ASSERT_TRUE(run_until([&] { return cross_signing_is(sync::cross_signing_state::failed); }));
    EXPECT_NE(keys().last_key_error.find("Invalid password"), std::string::npos)
        << keys().last_key_error;
    // Later syncs try nothing more.
    const auto syncs = engine->status().syncs;
    nudge();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > syncs + 1; }));
    EXPECT_EQ(requests_to(device_signing).size(), 2u);
    EXPECT_FALSE(hs.cross_signing_key(bot, testing::cross_signing_key_kind::master));
    EXPECT_FALSE(ended.has_value());  // the rest of devlistd goes on
    EXPECT_TRUE(settled());
}

TEST_F(cross_signing_test, a_lost_answer_is_retried_with_identical_keys_and_no_uia) {
    // The authenticated upload is stored but its answer lost.
    hs.inject({.path_prefix = std::string(device_signing),
               .action = testing::fault_action::lose_answer{},
               .count = 2});
    start();
    ASSERT_TRUE(run_until([&] { return cross_signing_is(sync::cross_signing_state::uploaded); }));
    auto uploads = requests_to(device_signing);
    ASSERT_GE(uploads.size(), 3u);
    // The retry after the lost answer carries the same keys, and the server takes it as is.
    auto strip_auth = [](const std::string& body) {
        auto v = *json::parse(body);
        v.erase("auth");
        return json::to_canonical(v);
    };
    EXPECT_EQ(strip_auth(uploads[1].request_body), strip_auth(uploads.back().request_body));
    EXPECT_EQ(uploads.back().status, 200u);
    auto own = store->own_cross_signing().load();
    auto master = hs.cross_signing_key(bot, testing::cross_signing_key_kind::master);
    ASSERT_TRUE(master && own);
    EXPECT_TRUE(master->find("keys")->find("ed25519:" + (*own)[0].public_key));
}

TEST_F(cross_signing_test, the_dummy_stage_is_completed_where_offered) {
    testing::server_behaviour b;
    b.uia_for_first_cross_signing_upload = true;
    b.uia_stage = "m.login.dummy";
    hs.set_behaviour(b);
    start();
    ASSERT_TRUE(run_until([&] { return cross_signing_is(sync::cross_signing_state::uploaded); }));
    auto uploads = requests_to(device_signing);
    ASSERT_EQ(uploads.size(), 2u);
    EXPECT_NE(uploads[1].request_body.find("\"type\":\"m.login.dummy\""), std::string::npos);
    EXPECT_EQ(uploads[1].request_body.find("password"), std::string::npos);  // never sent
}

TEST_F(cross_signing_test, a_flow_devlistd_cannot_complete_is_a_clear_error_and_no_loop) {
    testing::server_behaviour b;
    b.uia_for_first_cross_signing_upload = true;
    b.uia_stage = "m.login.sso";
    hs.set_behaviour(b);
    start();
    ASSERT_TRUE(run_until([&] { return cross_signing_is(sync::cross_signing_state::failed); }));
    EXPECT_NE(keys().last_key_error.find("cannot give (flows: m.login.sso)"), std::string::npos)
        << keys().last_key_error;
    const auto syncs = engine->status().syncs;
    nudge();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs > syncs + 1; }));
    EXPECT_EQ(requests_to(device_signing).size(), 1u);
}

TEST_F(cross_signing_test, a_master_key_made_elsewhere_is_never_overwritten) {
    hs.bootstrap_cross_signing(bot);
    const auto theirs = hs.cross_signing_key(bot, testing::cross_signing_key_kind::master);
    start();
    ASSERT_TRUE(
        run_until([&] { return cross_signing_is(sync::cross_signing_state::managed_elsewhere); }));
    ASSERT_TRUE(run_until([&] { return settled(); }));
    EXPECT_TRUE(requests_to(device_signing).empty());
    EXPECT_EQ(hs.cross_signing_key(bot, testing::cross_signing_key_kind::master), theirs);
    EXPECT_TRUE(store->own_cross_signing().load()->empty());
}

}  // namespace
}  // namespace devlist::test
