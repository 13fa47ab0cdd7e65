// Curve25519 (X25519) identity, one-time and fallback keys of an Olm device. devlistd only
// creates and publishes these; Olm sessions are not its job. Backed by libsodium.
//
// Thread-safety: key pairs are immutable after construction; const members may be called
// concurrently.
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

struct curve25519_public_key {
    std::array<std::uint8_t, 32> bytes{};

    // Unpadded base64, as in Matrix key maps.
    std::string to_base64() const;
    // errc::key_invalid unless text is the base64 (padded or not) of exactly 32 bytes.
    static result<curve25519_public_key> from_base64(std::string_view text);
    bool operator==(const curve25519_public_key&) const = default;
};

class curve25519_key_pair {
  public:
    // A new key pair from the operating system's random generator.
    static curve25519_key_pair generate();
    // The key pair of a 32-byte X25519 secret; errc::key_invalid otherwise.
    static result<curve25519_key_pair> from_secret(std::span<const std::uint8_t> secret32);

    const curve25519_public_key& public_key() const noexcept { return public_key_; }
    // The 32-byte secret: what to seal and store to recreate this key pair.
    const secure_bytes& secret() const noexcept { return secret_; }

  private:
    curve25519_key_pair(secure_bytes secret, const curve25519_public_key& pk)
        : secret_(std::move(secret)), public_key_(pk) {}

    secure_bytes secret_;
    curve25519_public_key public_key_;
};

}  // namespace devlist::crypto
