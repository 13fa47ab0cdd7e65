#include "sync/key_verifier.hpp"

#include <gtest/gtest.h>

#include <map>

#include "sync/parse_keys.hpp"
#include "tests/unit/sync/signed_keys_fixture.hpp"

namespace devlist::sync {
namespace {

class verifier_test : public ::testing::Test {
  protected:
    parse_context ctx;
    verification_stats stats;
    std::vector<std::string> absent;
    std::map<std::string, known_keys> store;

    storage::query_result run(const std::string& body, std::vector<query_ticket> tickets) {
        auto parsed = parse_keys_query_response(ctx, body);
        EXPECT_TRUE(parsed) << parsed.error().message();
        stats = {};
        absent.clear();
        return verify_query_answer(
            *parsed, tickets, [&](const std::string& u) { return store[u]; }, 1000, stats, absent);
    }
    static const storage::user_query_result& only_user(const storage::query_result& r) {
        EXPECT_EQ(r.users.size(), 1u);
        return r.users.at(0);
    }
};

TEST_F(verifier_test, accepts_a_correctly_self_signed_device_and_keeps_its_bytes) {
    fake_device alice{"@alice:hs", "PHONE"};
    std::string raw = alice.signed_json([](json::value& o) {
        o["unsigned"] = json::object{{"device_display_name", "Alice's phone"}};
        o["future_field"] = json::object{{"x", 1}};  // unknown fields are covered by the signature
    });
    auto r = run(answer_body({{"@alice:hs", {{"PHONE", raw}}}}), {{"@alice:hs", 7}});
    const auto& u = only_user(r);
    EXPECT_EQ(u.generation_at_send, 7);
    ASSERT_EQ(u.devices.size(), 1u);
    EXPECT_EQ(u.devices[0].ed25519, alice.ed.public_key().to_base64());
    EXPECT_EQ(u.devices[0].curve25519, alice.curve.public_key().to_base64());
    EXPECT_EQ(u.devices[0].display_name, "Alice's phone");
    EXPECT_EQ(u.devices[0].signed_json, raw);
    EXPECT_FALSE(u.devices[0].cross_signed);
    EXPECT_EQ(stats.devices_accepted, 1u);
    EXPECT_TRUE(r.security_events.empty());
    EXPECT_EQ(r.answered_servers, std::vector<std::string>{"hs"});
}

TEST_F(verifier_test, rejects_forged_tampered_and_mismatched_devices) {
    fake_device a{"@a:hs", "FORGED"}, b{"@a:hs", "TAMPERED"}, c{"@a:hs", "WRONGID"},
        d{"@a:hs", "NOSIG"};
    fake_device other{"@a:hs", "OTHER"};
    std::string forged = other.signed_json();  // signed by another key entirely
    // Put FORGED's keys in, with OTHER's signature.
    json::value forged_obj = a.keys_object();
    forged_obj["signatures"] = json::object{
        {"@a:hs", json::object{{"ed25519:FORGED",
                                a.ed.sign(std::string_view("not the object")).to_base64()}}}};
    std::string tampered = b.signed_json();
    tampered.replace(tampered.find("m.megolm"), 8, "m.evil!!");
    std::string mismatched = c.signed_json([](json::value& o) { o["device_id"] = "ELSE"; });
    std::string unsigned_dev = json::to_canonical(d.keys_object());
    auto r = run(answer_body({{"@a:hs",
                               {{"FORGED", json::to_canonical(forged_obj)},
                                {"TAMPERED", tampered},
                                {"WRONGID", mismatched},
                                {"NOSIG", unsigned_dev}}}}),
                 {{"@a:hs", 1}});
    const auto& u = only_user(r);
    EXPECT_TRUE(u.devices.empty());
    EXPECT_EQ(stats.devices_rejected, 4u);
    ASSERT_EQ(r.security_events.size(), 4u);
    for (const auto& e : r.security_events) {
        EXPECT_EQ(e.kind, security_kind::device_rejected);
        EXPECT_NE(e.detail_json.find("reason"), std::string::npos);
    }
    EXPECT_EQ(r.outbox_events.size(), 4u);
}

TEST_F(verifier_test, a_changed_ed25519_key_is_rejected_and_the_old_device_kept) {
    fake_device original{"@a:hs", "DEV"};
    storage::device_record stored{"@a:hs",
                                  "DEV",
                                  original.ed.public_key().to_base64(),
                                  original.curve.public_key().to_base64(),
                                  std::nullopt,
                                  original.signed_json(),
                                  false,
                                  1,
                                  1,
                                  std::nullopt};
    store["@a:hs"].devices.push_back(stored);
    fake_device replacement{"@a:hs", "DEV"};  // new keys, properly self-signed
    auto r = run(answer_body({{"@a:hs", {{"DEV", replacement.signed_json()}}}}), {{"@a:hs", 2}});
    const auto& u = only_user(r);
    ASSERT_EQ(u.devices.size(), 1u);
    EXPECT_EQ(u.devices[0], stored);
    ASSERT_EQ(r.security_events.size(), 1u);
    EXPECT_EQ(r.security_events[0].kind, security_kind::device_key_changed);
    EXPECT_EQ(r.security_events[0].device_id, "DEV");
}

TEST_F(verifier_test, byte_identical_devices_are_not_verified_again) {
    fake_device dev{"@a:hs", "DEV"};
    std::string raw = dev.signed_json();
    store["@a:hs"].devices.push_back({"@a:hs", "DEV", dev.ed.public_key().to_base64(),
                                      dev.curve.public_key().to_base64(), std::nullopt, raw, false,
                                      1, 1, std::nullopt});
    auto r = run(answer_body({{"@a:hs", {{"DEV", raw}}}}), {{"@a:hs", 2}});
    EXPECT_EQ(only_user(r).devices.size(), 1u);
    EXPECT_EQ(stats.devices_unchanged, 1u);
    EXPECT_EQ(stats.signatures_checked, 0u);
    EXPECT_TRUE(only_user(r).unchanged);  // the store writes nothing but the outdated flag
}

TEST_F(verifier_test, a_user_is_unchanged_only_if_everything_stored_is_repeated_and_recent) {
    fake_device dev{"@a:hs", "DEV"}, other{"@a:hs", "NEW"};
    const std::string raw = dev.signed_json();
    const storage::device_record stored{"@a:hs",
                                        "DEV",
                                        dev.ed.public_key().to_base64(),
                                        dev.curve.public_key().to_base64(),
                                        std::nullopt,
                                        raw,
                                        false,
                                        1,
                                        1,
                                        std::nullopt};
    store["@a:hs"].devices = {stored};
    // A new device beside it.
    auto r =
        run(answer_body({{"@a:hs", {{"DEV", raw}, {"NEW", other.signed_json()}}}}), {{"@a:hs", 2}});
    EXPECT_FALSE(only_user(r).unchanged);
    // A device gone from the answer.
    r = run(answer_body({{"@a:hs", {}}}), {{"@a:hs", 2}});
    EXPECT_FALSE(only_user(r).unchanged);
    // Repeated, but last seen longer ago than the resolution (the answer is at 1000).
    store["@a:hs"].devices[0].last_seen = 1000 - storage::last_seen_resolution_ms;
    r = run(answer_body({{"@a:hs", {{"DEV", raw}}}}), {{"@a:hs", 2}});
    EXPECT_FALSE(only_user(r).unchanged);
    // A cross-signing key stored but no longer served.
    store["@a:hs"].devices = {stored};
    store["@a:hs"].cross_signing.push_back(
        {"@a:hs", storage::key_usage::master, "M", "{}", true, 1, 1});
    r = run(answer_body({{"@a:hs", {{"DEV", raw}}}}), {{"@a:hs", 2}});
    EXPECT_FALSE(only_user(r).unchanged);
}

TEST_F(verifier_test, cross_signing_chain_marks_devices_cross_signed) {
    cross_signing cs{"@a:hs"};
    fake_device dev{"@a:hs", "DEV"}, lone{"@a:hs", "LONE"};
    std::string extra = ",\"master_keys\":{\"@a:hs\":" + cs.key_json(cs.master, "master", nullptr) +
                        "},\"self_signing_keys\":{\"@a:hs\":" +
                        cs.key_json(cs.self_signing, "self_signing", &cs.master) + "}";
    auto r = run(
        answer_body(
            {{"@a:hs", {{"DEV", cs.cross_sign(dev.signed_json())}, {"LONE", lone.signed_json()}}}},
            extra),
        {{"@a:hs", 1}});
    const auto& u = only_user(r);
    ASSERT_EQ(u.devices.size(), 2u);
    for (const auto& d : u.devices)
        EXPECT_EQ(d.cross_signed, d.device_id == "DEV") << d.device_id;
    ASSERT_TRUE(u.cross_signing_keys);
    EXPECT_EQ(u.cross_signing_keys->size(), 2u);
    EXPECT_TRUE(r.security_events.empty());
}

TEST_F(verifier_test, self_signing_key_not_signed_by_master_is_rejected) {
    cross_signing cs{"@a:hs"};
    crypto::ed25519_key_pair impostor = crypto::ed25519_key_pair::generate();
    fake_device dev{"@a:hs", "DEV"};
    std::string extra = ",\"master_keys\":{\"@a:hs\":" + cs.key_json(cs.master, "master", nullptr) +
                        "},\"self_signing_keys\":{\"@a:hs\":" +
                        cs.key_json(cs.self_signing, "self_signing", &impostor) + "}";
    auto r = run(answer_body({{"@a:hs", {{"DEV", cs.cross_sign(dev.signed_json())}}}}, extra),
                 {{"@a:hs", 1}});
    const auto& u = only_user(r);
    ASSERT_EQ(u.devices.size(), 1u);
    EXPECT_FALSE(u.devices[0].cross_signed);
    ASSERT_TRUE(u.cross_signing_keys);
    EXPECT_EQ(u.cross_signing_keys->size(), 1u);  // only the master key
    ASSERT_EQ(r.security_events.size(), 1u);
    EXPECT_EQ(r.security_events[0].kind, security_kind::cross_signing_key_rejected);
}

TEST_F(verifier_test, master_key_change_is_recorded_and_device_id_collision_refused) {
    cross_signing cs{"@a:hs"};
    store["@a:hs"].cross_signing.push_back({"@a:hs", storage::key_usage::master,
                                            "b2xkIG1hc3RlciBrZXkgb2xkIG1hc3RlciBrZXkgISE", "{}",
                                            true, 1, 1});
    std::string ssk_pub = cs.self_signing.public_key().to_base64();
    fake_device colliding{"@a:hs", ssk_pub};
    std::string extra = ",\"master_keys\":{\"@a:hs\":" + cs.key_json(cs.master, "master", nullptr) +
                        "},\"self_signing_keys\":{\"@a:hs\":" +
                        cs.key_json(cs.self_signing, "self_signing", &cs.master) + "}";
    auto r =
        run(answer_body({{"@a:hs", {{ssk_pub, colliding.signed_json()}}}}, extra), {{"@a:hs", 1}});
    const auto& u = only_user(r);
    EXPECT_TRUE(u.devices.empty());
    ASSERT_EQ(r.security_events.size(), 2u);
    EXPECT_EQ(r.security_events[0].kind, security_kind::master_key_changed);
    EXPECT_EQ(r.security_events[1].kind, security_kind::device_rejected);
    EXPECT_NE(r.security_events[1].detail_json.find("collides"), std::string::npos);
}

TEST_F(verifier_test, failed_servers_and_absent_users_are_left_out) {
    fake_device dev{"@a:hs", "DEV"};
    auto r = run(
        answer_body({{"@a:hs", {{"DEV", dev.signed_json()}}}}, ",\"failures\":{\"far.away\":{}}"),
        {{"@a:hs", 1}, {"@z:far.away", 2}, {"@ghost:hs", 3}});
    ASSERT_EQ(r.users.size(), 1u);
    EXPECT_EQ(r.users[0].user_id, "@a:hs");
    EXPECT_EQ(absent, std::vector<std::string>{"@ghost:hs"});
    EXPECT_EQ(r.answered_servers, std::vector<std::string>{"hs"});
}

TEST_F(verifier_test, a_user_present_with_no_devices_loses_them) {
    fake_device dev{"@a:hs", "DEV"};
    store["@a:hs"].devices.push_back({"@a:hs", "DEV", dev.ed.public_key().to_base64(),
                                      dev.curve.public_key().to_base64(), std::nullopt,
                                      dev.signed_json(), false, 1, 1, std::nullopt});
    auto r = run(R"({"device_keys": {"@a:hs": {}}})", {{"@a:hs", 1}});
    EXPECT_TRUE(only_user(r).devices.empty());
}

}  // namespace
}  // namespace devlist::sync
