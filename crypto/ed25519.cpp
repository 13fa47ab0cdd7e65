#include "crypto/ed25519.hpp"

#include "crypto/base64.hpp"
#include "crypto/fixed_size_base64.hpp"
#include "crypto/sodium_init.hpp"

#include <sodium.h>

static_assert(crypto_sign_PUBLICKEYBYTES == 32);
static_assert(crypto_sign_SEEDBYTES == 32);
static_assert(crypto_sign_BYTES == 64);
static_assert(crypto_sign_SECRETKEYBYTES == 64);

namespace devlist::crypto {

std::string ed25519_public_key::to_base64() const {
    return base64_encode(bytes);
}

result<ed25519_public_key> ed25519_public_key::from_base64(std::string_view text) {
    return decode_fixed_size<ed25519_public_key>(text, errc::key_invalid, "ed25519 public key");
}

std::string ed25519_signature::to_base64() const {
    return base64_encode(bytes);
}

result<ed25519_signature> ed25519_signature::from_base64(std::string_view text) {
    return decode_fixed_size<ed25519_signature>(text, errc::signature_invalid, "ed25519 signature");
}

ed25519_key_pair ed25519_key_pair::generate() {
    return from_seed(secure_bytes::random(crypto_sign_SEEDBYTES).span()).value();
}

result<ed25519_key_pair> ed25519_key_pair::from_seed(std::span<const std::uint8_t> seed32) {
    if (seed32.size() != crypto_sign_SEEDBYTES) {
        return error{errc::key_invalid,
                     "an ed25519 seed is 32 bytes, not " + std::to_string(seed32.size())};
    }
    ensure_sodium_initialized();
    secure_bytes expanded(crypto_sign_SECRETKEYBYTES);
    ed25519_public_key pk;
    crypto_sign_seed_keypair(pk.bytes.data(), expanded.data(), seed32.data());
    return ed25519_key_pair(secure_bytes(seed32), std::move(expanded), pk);
}

ed25519_signature ed25519_key_pair::sign(std::span<const std::uint8_t> message) const {
    ed25519_signature signature;
    crypto_sign_detached(signature.bytes.data(), nullptr, message.data(), message.size(),
                         expanded_.data());
    return signature;
}

ed25519_signature ed25519_key_pair::sign(std::string_view message) const {
    return sign(std::span(reinterpret_cast<const std::uint8_t*>(message.data()), message.size()));
}

bool ed25519_verify(const ed25519_public_key& key, std::string_view message,
                    const ed25519_signature& signature) {
    ensure_sodium_initialized();
    return crypto_sign_verify_detached(signature.bytes.data(),
                                       reinterpret_cast<const unsigned char*>(message.data()),
                                       message.size(), key.bytes.data()) == 0;
}

}  // namespace devlist::crypto
