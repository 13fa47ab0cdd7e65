#include "crypto/curve25519.hpp"

#include "spec_vectors.hpp"

#include <gtest/gtest.h>

namespace devlist::crypto {
namespace {

// RFC 7748 section 6.1: Alice's and Bob's key pairs.
TEST(curve25519, rfc7748_public_keys) {
    const auto alice = curve25519_key_pair::from_secret(
        test::from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"));
    ASSERT_TRUE(alice);
    EXPECT_EQ(test::to_hex(alice->public_key().bytes),
              "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    const auto bob = curve25519_key_pair::from_secret(
        test::from_hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"));
    ASSERT_TRUE(bob);
    EXPECT_EQ(test::to_hex(bob->public_key().bytes),
              "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
}

TEST(curve25519, generate_and_recreate) {
    const auto a = curve25519_key_pair::generate();
    const auto b = curve25519_key_pair::generate();
    EXPECT_NE(a.public_key(), b.public_key());
    EXPECT_EQ(a.secret().size(), 32u);
    EXPECT_EQ(curve25519_key_pair::from_secret(a.secret().span()).value().public_key(),
              a.public_key());
}

TEST(curve25519, secret_must_be_32_bytes) {
    EXPECT_EQ(curve25519_key_pair::from_secret(std::vector<std::uint8_t>(16)).error(),
              errc::key_invalid);
    EXPECT_EQ(curve25519_key_pair::from_secret({}).error(), errc::key_invalid);
}

TEST(curve25519, public_key_base64) {
    const auto pair = curve25519_key_pair::generate();
    const std::string text = pair.public_key().to_base64();
    EXPECT_EQ(text.size(), 43u);
    EXPECT_EQ(curve25519_public_key::from_base64(text).value(), pair.public_key());
    EXPECT_EQ(curve25519_public_key::from_base64(text.substr(1)).error(), errc::key_invalid);
    EXPECT_EQ(curve25519_public_key::from_base64("").error(), errc::key_invalid);
}

}  // namespace
}  // namespace devlist::crypto
