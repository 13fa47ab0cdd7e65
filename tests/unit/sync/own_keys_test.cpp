#include "sync/own_keys.hpp"

#include <gtest/gtest.h>

#include "crypto/base64.hpp"
#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"

namespace devlist::sync {
namespace {

class own_keys_test : public ::testing::Test {
  protected:
    crypto::sealing_key sealing = crypto::sealing_key::generate();
    new_identity made = create_identity("@bot:example.org", "BOTDEV", sealing, 1234);

    json::value parse(const std::string& text) {
        auto v = json::parse(text);
        EXPECT_TRUE(v) << text;
        return v ? *v : json::value{};
    }
    bool signed_by_device(const std::string& text) {
        return static_cast<bool>(crypto::verify_json(text, "@bot:example.org", "ed25519:BOTDEV",
                                                     made.keys.signing.public_key()));
    }
};

TEST_F(own_keys_test, an_identity_is_sealed_and_opens_again_only_with_its_key) {
    EXPECT_EQ(made.record.user_id, "@bot:example.org");
    EXPECT_EQ(made.record.device_id, "BOTDEV");
    EXPECT_EQ(made.record.created_at, 1234);
    EXPECT_EQ(made.record.ed25519_public, made.keys.signing.public_key().to_base64());
    auto opened = open_identity(made.record, sealing);
    ASSERT_TRUE(opened) << opened.error().message();
    EXPECT_EQ(opened->signing.public_key(), made.keys.signing.public_key());
    EXPECT_EQ(opened->exchange.public_key(), made.keys.exchange.public_key());

    auto other = crypto::sealing_key::generate();
    auto refused = open_identity(made.record, other);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().detail.find("do not open with the configured sealing key"),
              std::string::npos);
    // A sealed part moved to the other key's column does not open either.
    auto swapped = made.record;
    std::swap(swapped.ed25519_sealed, swapped.curve25519_sealed);
    EXPECT_FALSE(open_identity(swapped, sealing));
}

TEST_F(own_keys_test, device_keys_are_self_signed_and_complete) {
    const std::string text = signed_device_keys(made.keys);
    EXPECT_TRUE(signed_by_device(text));
    auto v = parse(text);
    EXPECT_EQ(v["user_id"].as_string(), "@bot:example.org");
    EXPECT_EQ(v["device_id"].as_string(), "BOTDEV");
    EXPECT_EQ(v["keys"]["curve25519:BOTDEV"].as_string(), made.record.curve25519_public);
    EXPECT_EQ(v["algorithms"].as_array().size(), 2u);
    EXPECT_EQ(text, signed_device_keys(made.keys));  // byte-identical every time
    EXPECT_EQ(json::to_canonical(v), text);          // canonical JSON
}

TEST_F(own_keys_test, one_time_and_fallback_keys_are_signed_and_their_secret_sealed) {
    auto otk = make_signed_curve25519_key(made.keys, false, sealing);
    EXPECT_TRUE(signed_by_device(otk.signed_json));
    auto v = parse(otk.signed_json);
    EXPECT_EQ(v["key"].as_string(), otk.public_key);
    EXPECT_FALSE(v.find("fallback"));
    auto secret =
        sealing.open(otk.sealed_private, std::string(seal_context::one_time_key) + otk.public_key);
    ASSERT_TRUE(secret);
    auto pair = crypto::curve25519_key_pair::from_secret(secret->span());
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->public_key().to_base64(), otk.public_key);
    // Not under the fallback context: a blob cannot change kind.
    EXPECT_FALSE(
        sealing.open(otk.sealed_private, std::string(seal_context::fallback_key) + otk.public_key));

    auto fallback = make_signed_curve25519_key(made.keys, true, sealing);
    EXPECT_TRUE(signed_by_device(fallback.signed_json));
    EXPECT_TRUE(parse(fallback.signed_json)["fallback"].as_bool());
    EXPECT_TRUE(sealing.open(fallback.sealed_private,
                             std::string(seal_context::fallback_key) + fallback.public_key));
}

TEST_F(own_keys_test, key_ids_are_libolm_style_base64_counters) {
    EXPECT_EQ(format_key_id(1), "AAAAAQ");
    EXPECT_EQ(format_key_id(2), "AAAAAg");
    EXPECT_EQ(format_key_id(256), "AAABAA");
    EXPECT_EQ(format_key_id(0xFFFFFFFFLL), "/////w");
    EXPECT_EQ(format_key_id(0x100000000LL), "AAAAAQAAAAA");
}

TEST_F(own_keys_test, upload_bodies_carry_the_stored_bytes_unchanged) {
    storage::one_time_key a, b;
    a.key_id = "AAAAAg";
    a.algorithm = "signed_curve25519";
    a.signed_json = make_signed_curve25519_key(made.keys, false, sealing).signed_json;
    b.key_id = "AAAAAQ";
    b.algorithm = "signed_curve25519";
    b.signed_json = make_signed_curve25519_key(made.keys, false, sealing).signed_json;
    const std::vector<storage::one_time_key> keys{a, b};
    const std::string body = one_time_keys_upload_body(keys);
    EXPECT_NE(body.find("\"signed_curve25519:AAAAAg\":" + a.signed_json), std::string::npos);
    auto v = parse(body);
    EXPECT_EQ(json::to_canonical(v), body);  // valid canonical JSON, members sorted
    EXPECT_EQ(v["one_time_keys"].as_object().size(), 2u);

    storage::fallback_key f;
    f.key_id = "AAAAAw";
    f.algorithm = "signed_curve25519";
    f.signed_json = make_signed_curve25519_key(made.keys, true, sealing).signed_json;
    auto fb = parse(fallback_key_upload_body(f));
    EXPECT_EQ(fb["fallback_keys"], fb["org.matrix.msc2732.fallback_keys"]);
    EXPECT_TRUE(fb["fallback_keys"].find("signed_curve25519:AAAAAw"));

    auto dk = parse(device_keys_upload_body(signed_device_keys(made.keys)));
    EXPECT_EQ(json::to_canonical(dk["device_keys"]), signed_device_keys(made.keys));
}

TEST_F(own_keys_test, cross_signing_keys_chain_to_the_master_and_sign_the_device) {
    auto keys = create_cross_signing_keys(made.keys, sealing, 99);
    ASSERT_EQ(keys.size(), 3u);
    const auto& master = keys[0];
    ASSERT_EQ(master.usage, storage::key_usage::master);
    auto master_pub = crypto::ed25519_public_key::from_base64(master.public_key);
    ASSERT_TRUE(master_pub);
    EXPECT_TRUE(signed_by_device(master.signed_json));  // the device vouches for its master
    for (std::size_t i = 1; i < 3; ++i) {
        EXPECT_TRUE(crypto::verify_json(keys[i].signed_json, "@bot:example.org",
                                        "ed25519:" + master.public_key, *master_pub))
            << keys[i].signed_json;
        auto v = parse(keys[i].signed_json);
        EXPECT_EQ(v["keys"]["ed25519:" + keys[i].public_key].as_string(), keys[i].public_key);
    }
    EXPECT_EQ(parse(keys[1].signed_json)["usage"].as_array()[0].as_string(), "self_signing");
    auto body = parse(cross_signing_upload_body(keys));
    EXPECT_TRUE(body.find("master_key"));
    EXPECT_TRUE(body.find("self_signing_key"));
    EXPECT_TRUE(body.find("user_signing_key"));

    auto signature = device_signature_upload_body(made.keys, keys[1], sealing);
    ASSERT_TRUE(signature) << signature.error().message();
    auto sv = parse(*signature);
    const std::string device = json::to_canonical(sv["@bot:example.org"]["BOTDEV"]);
    auto ssk = crypto::ed25519_public_key::from_base64(keys[1].public_key);
    EXPECT_TRUE(
        crypto::verify_json(device, "@bot:example.org", "ed25519:" + keys[1].public_key, *ssk));
    EXPECT_TRUE(signed_by_device(device));  // the self-signature is still there
    auto other = crypto::sealing_key::generate();
    EXPECT_FALSE(device_signature_upload_body(made.keys, keys[1], other));
}

}  // namespace
}  // namespace devlist::sync
