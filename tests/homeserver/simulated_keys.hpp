// Real keys for simulated devices and users: device keys self-signed with the device's Ed25519
// key, signed one-time and fallback keys, and cross-signing keys, all made the way a Matrix
// client makes them, so that a client under test verifies genuine signatures.
#pragma once

#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"

#include <string>

namespace devlist::testing {

struct simulated_device {
    crypto::ed25519_key_pair signing_key = crypto::ed25519_key_pair::generate();
    crypto::curve25519_key_pair identity_key = crypto::curve25519_key_pair::generate();
    int next_key_number = 1;  // for libolm-style one-time key IDs
    bool forged = false;      // its self-signature was made with another key
};

struct simulated_cross_signing {
    crypto::ed25519_key_pair master = crypto::ed25519_key_pair::generate();
    crypto::ed25519_key_pair self_signing = crypto::ed25519_key_pair::generate();
    crypto::ed25519_key_pair user_signing = crypto::ed25519_key_pair::generate();
};

// The device_keys object of a device, signed by `signer` (the device's own key, except when
// forging).
json::value make_device_keys(const std::string& user_id, const std::string& device_id,
                             const simulated_device& device,
                             const crypto::ed25519_key_pair& signer);

// `count` signed_curve25519 one-time keys: {"signed_curve25519:<id>": {key, signatures}}.
json::object make_one_time_keys(const std::string& user_id, const std::string& device_id,
                                simulated_device& device, int count);

// One signed_curve25519 fallback key (with "fallback": true, covered by the signature).
json::object make_fallback_key(const std::string& user_id, const std::string& device_id,
                               simulated_device& device);

// A cross-signing key object for `usage` ("master", "self_signing", "user_signing"), signed by
// the master key unless it is the master key.
json::value make_cross_signing_key(const std::string& user_id, const std::string& usage,
                                   const crypto::ed25519_key_pair& key,
                                   const crypto::ed25519_key_pair& master);

// The signature `signer` (key ID "ed25519:<public key>") makes over object.
std::string cross_signature(const json::value& object, const std::string& user_id,
                            const crypto::ed25519_key_pair& signer);

inline std::string key_id_of(const crypto::ed25519_key_pair& key) {
    return "ed25519:" + key.public_key().to_base64();
}

}  // namespace devlist::testing
