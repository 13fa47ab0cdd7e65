#include "crypto/ed25519.hpp"

#include "crypto/base64.hpp"
#include "spec_vectors.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace devlist::crypto {
namespace {

using test::from_hex;
using ::testing::HasSubstr;

TEST(ed25519, spec_seed_gives_the_recorded_public_key) {
    const simdjson::dom::element signing_key =
        test::spec_vectors("signing-json.json")["signing_key"].value();
    const auto pair = test::spec_signing_key_pair();
    EXPECT_EQ(test::to_hex(pair.seed().span()), test::string_at(signing_key, "seed_hex"));
    EXPECT_EQ(pair.public_key().to_base64(),
              test::string_at(signing_key, "derived_public_key_base64_NOT_IN_SPEC"));
    EXPECT_EQ(test::to_hex(pair.public_key().bytes),
              test::string_at(signing_key, "derived_public_key_hex_NOT_IN_SPEC"));
}

// RFC 8032 section 7.1, TEST 1 and TEST 2.
TEST(ed25519, rfc8032_known_answers) {
    struct vector {
        const char* secret;
        const char* public_key;
        const char* message;
        const char* signature;
    };
    const vector vectors[] = {
        {"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
         "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
         "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39"
         "701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
        {"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
         "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
         "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f36"
         "13d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
    };
    for (const auto& v : vectors) {
        const auto pair = ed25519_key_pair::from_seed(from_hex(v.secret)).value();
        EXPECT_EQ(test::to_hex(pair.public_key().bytes), v.public_key);
        const auto message = from_hex(v.message);
        const auto signature = pair.sign(message);
        EXPECT_EQ(test::to_hex(signature.bytes), v.signature);
        const std::string text(message.begin(), message.end());
        EXPECT_TRUE(ed25519_verify(pair.public_key(), text, signature));
    }
}

TEST(ed25519, sign_and_verify) {
    const auto pair = ed25519_key_pair::generate();
    const auto signature = pair.sign(std::string_view("message"));
    EXPECT_TRUE(ed25519_verify(pair.public_key(), "message", signature));
    EXPECT_FALSE(ed25519_verify(pair.public_key(), "messagE", signature));
    EXPECT_FALSE(ed25519_verify(pair.public_key(), "message ", signature));
    EXPECT_FALSE(ed25519_verify(ed25519_key_pair::generate().public_key(), "message", signature));
    auto flipped = signature;
    flipped.bytes[10] ^= 1;
    EXPECT_FALSE(ed25519_verify(pair.public_key(), "message", flipped));
    EXPECT_EQ(pair.sign(std::string_view("message")), signature);  // deterministic
    EXPECT_EQ(pair.sign(test::as_bytes("message")), signature);
}

TEST(ed25519, generated_keys_differ) {
    const auto a = ed25519_key_pair::generate();
    const auto b = ed25519_key_pair::generate();
    EXPECT_NE(a.public_key(), b.public_key());
    EXPECT_EQ(a.seed().size(), 32u);
    EXPECT_EQ(ed25519_key_pair::from_seed(a.seed().span()).value().public_key(), a.public_key());
}

TEST(ed25519, seed_must_be_32_bytes) {
    const auto r = ed25519_key_pair::from_seed(std::vector<std::uint8_t>(31));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::key_invalid);
    EXPECT_THAT(r.error().detail, HasSubstr("32 bytes, not 31"));
    EXPECT_EQ(ed25519_key_pair::from_seed(std::vector<std::uint8_t>(64)).error(),
              errc::key_invalid);
}

TEST(ed25519, public_key_base64) {
    const auto pair = ed25519_key_pair::generate();
    const std::string text = pair.public_key().to_base64();
    EXPECT_EQ(text.size(), 43u);
    EXPECT_EQ(ed25519_public_key::from_base64(text).value(), pair.public_key());
    EXPECT_EQ(ed25519_public_key::from_base64(text + "=").value(), pair.public_key());
    const auto shorter = ed25519_public_key::from_base64(text.substr(0, 42));
    ASSERT_FALSE(shorter);
    EXPECT_EQ(shorter.error(), errc::key_invalid);
    EXPECT_THAT(shorter.error().detail, HasSubstr("expected 32 bytes, got 31"));
    EXPECT_EQ(ed25519_public_key::from_base64("not base64!").error(), errc::key_invalid);
}

TEST(ed25519, signature_base64) {
    const auto signature = ed25519_key_pair::generate().sign(std::string_view("x"));
    const std::string text = signature.to_base64();
    EXPECT_EQ(text.size(), 86u);
    EXPECT_EQ(ed25519_signature::from_base64(text).value(), signature);
    EXPECT_EQ(ed25519_signature::from_base64(text.substr(0, 85)).error(), errc::signature_invalid);
    EXPECT_EQ(ed25519_signature::from_base64(text + "AAAA").error(), errc::signature_invalid);
}

}  // namespace
}  // namespace devlist::crypto
