#include "crypto/curve25519.hpp"

#include "crypto/base64.hpp"
#include "crypto/fixed_size_base64.hpp"
#include "crypto/sodium_init.hpp"

#include <sodium.h>

static_assert(crypto_scalarmult_BYTES == 32);
static_assert(crypto_scalarmult_SCALARBYTES == 32);

namespace devlist::crypto {

std::string curve25519_public_key::to_base64() const {
    return base64_encode(bytes);
}

result<curve25519_public_key> curve25519_public_key::from_base64(std::string_view text) {
    return decode_fixed_size<curve25519_public_key>(text, errc::key_invalid,
                                                    "curve25519 public key");
}

curve25519_key_pair curve25519_key_pair::generate() {
    return from_secret(secure_bytes::random(crypto_scalarmult_SCALARBYTES).span()).value();
}

result<curve25519_key_pair> curve25519_key_pair::from_secret(
    std::span<const std::uint8_t> secret32) {
    if (secret32.size() != crypto_scalarmult_SCALARBYTES) {
        return error{errc::key_invalid,
                     "a curve25519 secret is 32 bytes, not " + std::to_string(secret32.size())};
    }
    ensure_sodium_initialized();
    curve25519_public_key pk;
    // libsodium clamps the scalar itself; a clamped scalar never yields the all-zero point,
    // so a failure here would mean a broken libsodium.
    if (crypto_scalarmult_base(pk.bytes.data(), secret32.data()) != 0) {
        return error{errc::key_invalid, "curve25519 secret gives no valid public key"};
    }
    return curve25519_key_pair(secure_bytes(secret32), pk);
}

}  // namespace devlist::crypto
