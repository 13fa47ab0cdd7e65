#include "tests/homeserver/simulated_keys.hpp"

#include "crypto/base64.hpp"
#include "crypto/signed_json.hpp"

#include <array>
#include <cstdint>

namespace devlist::testing {

namespace {

// libolm names one-time keys by the unpadded base64 of a 32-bit big-endian counter: "AAAAAQ".
std::string next_key_id(simulated_device& device) {
    const auto n = static_cast<std::uint32_t>(device.next_key_number++);
    const std::array<std::uint8_t, 4> bytes{
        static_cast<std::uint8_t>(n >> 24), static_cast<std::uint8_t>(n >> 16),
        static_cast<std::uint8_t>(n >> 8), static_cast<std::uint8_t>(n)};
    return crypto::base64_encode(bytes);
}

json::value signed_curve25519_key(const std::string& user_id, const std::string& device_id,
                                  const simulated_device& device, bool fallback) {
    json::value key =
        json::object{{"key", crypto::curve25519_key_pair::generate().public_key().to_base64()}};
    if (fallback) key["fallback"] = true;
    crypto::sign_json(key, user_id, "ed25519:" + device_id, device.signing_key);
    return key;
}

}  // namespace

json::value make_device_keys(const std::string& user_id, const std::string& device_id,
                             const simulated_device& device,
                             const crypto::ed25519_key_pair& signer) {
    json::value keys = json::object{
        {"user_id", user_id},
        {"device_id", device_id},
        {"algorithms", json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"}},
        {"keys", json::object{
                     {"curve25519:" + device_id, device.identity_key.public_key().to_base64()},
                     {"ed25519:" + device_id, device.signing_key.public_key().to_base64()},
                 }}};
    crypto::sign_json(keys, user_id, "ed25519:" + device_id, signer);
    return keys;
}

json::object make_one_time_keys(const std::string& user_id, const std::string& device_id,
                                simulated_device& device, int count) {
    json::object keys;
    for (int i = 0; i < count; ++i) {
        keys["signed_curve25519:" + next_key_id(device)] =
            signed_curve25519_key(user_id, device_id, device, false);
    }
    return keys;
}

json::object make_fallback_key(const std::string& user_id, const std::string& device_id,
                               simulated_device& device) {
    return json::object{{"signed_curve25519:" + next_key_id(device),
                         signed_curve25519_key(user_id, device_id, device, true)}};
}

json::value make_cross_signing_key(const std::string& user_id, const std::string& usage,
                                   const crypto::ed25519_key_pair& key,
                                   const crypto::ed25519_key_pair& master) {
    const std::string public_key = key.public_key().to_base64();
    json::value object =
        json::object{{"user_id", user_id},
                     {"usage", json::array{usage}},
                     {"keys", json::object{{"ed25519:" + public_key, public_key}}}};
    if (usage != "master") crypto::sign_json(object, user_id, key_id_of(master), master);
    return object;
}

std::string cross_signature(const json::value& object, const std::string& user_id,
                            const crypto::ed25519_key_pair& signer) {
    json::value copy = object;
    crypto::sign_json(copy, user_id, key_id_of(signer), signer);
    return copy["signatures"][user_id][key_id_of(signer)].as_string();
}

}  // namespace devlist::testing
