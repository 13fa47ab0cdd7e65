// Ed25519 (RFC 8032) keys and signatures, as Matrix uses them for device keys, cross-signing and
// JSON signing. Backed by libsodium.
//
// Thread-safety: key pairs are immutable after construction; all const members, and the free
// functions, may be called concurrently.
#pragma once

#include "crypto/secure_bytes.hpp"

#include <devlist/error.hpp>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace devlist::crypto {

struct ed25519_public_key {
    std::array<std::uint8_t, 32> bytes{};

    // Unpadded base64, as in Matrix key maps.
    std::string to_base64() const;
    // errc::key_invalid unless text is the base64 (padded or not) of exactly 32 bytes.
    static result<ed25519_public_key> from_base64(std::string_view text);
    bool operator==(const ed25519_public_key&) const = default;
};

struct ed25519_signature {
    std::array<std::uint8_t, 64> bytes{};

    std::string to_base64() const;
    // errc::signature_invalid unless text is the base64 (padded or not) of exactly 64 bytes.
    static result<ed25519_signature> from_base64(std::string_view text);
    bool operator==(const ed25519_signature&) const = default;
};

class ed25519_key_pair {
  public:
    // A new key pair from the operating system's random generator.
    static ed25519_key_pair generate();
    // The key pair of a 32-byte seed (the RFC 8032 private key); errc::key_invalid otherwise.
    static result<ed25519_key_pair> from_seed(std::span<const std::uint8_t> seed32);

    const ed25519_public_key& public_key() const noexcept { return public_key_; }
    ed25519_signature sign(std::span<const std::uint8_t> message) const;
    ed25519_signature sign(std::string_view message) const;
    // The 32-byte seed: what to seal and store to recreate this key pair.
    const secure_bytes& seed() const noexcept { return seed_; }

  private:
    ed25519_key_pair(secure_bytes seed, secure_bytes expanded, const ed25519_public_key& pk)
        : seed_(std::move(seed)), expanded_(std::move(expanded)), public_key_(pk) {}

    secure_bytes seed_;
    secure_bytes expanded_;  // libsodium's 64-byte secret key (seed || public key)
    ed25519_public_key public_key_;
};

// Whether signature is a valid signature of message by key.
bool ed25519_verify(const ed25519_public_key& key, std::string_view message,
                    const ed25519_signature& signature);

}  // namespace devlist::crypto
