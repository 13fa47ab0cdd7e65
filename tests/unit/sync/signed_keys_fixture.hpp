// Signed device and cross-signing keys with real signatures, and /keys/query bodies built from
// them, for the verifier's tests.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <string>

#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"

namespace devlist::sync {

struct fake_device {
    std::string user_id, device_id;
    crypto::ed25519_key_pair ed = crypto::ed25519_key_pair::generate();
    crypto::curve25519_key_pair curve = crypto::curve25519_key_pair::generate();

    json::value keys_object() const {
        return json::object{
            {"user_id", user_id},
            {"device_id", device_id},
            {"algorithms", json::array{"m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"}},
            {"keys", json::object{{"ed25519:" + device_id, ed.public_key().to_base64()},
                                  {"curve25519:" + device_id, curve.public_key().to_base64()}}}};
    }
    // Self-signed device keys, optionally changed before signing.
    std::string signed_json(const std::function<void(json::value&)>& edit = {}) const {
        json::value obj = keys_object();
        if (edit) edit(obj);
        crypto::sign_json(obj, user_id, "ed25519:" + device_id, ed);
        return json::to_canonical(obj);
    }
};

struct cross_signing {
    std::string user_id;
    crypto::ed25519_key_pair master = crypto::ed25519_key_pair::generate();
    crypto::ed25519_key_pair self_signing = crypto::ed25519_key_pair::generate();

    std::string key_json(const crypto::ed25519_key_pair& k, const char* usage,
                         const crypto::ed25519_key_pair* signer) const {
        std::string pub = k.public_key().to_base64();
        json::value obj = json::object{{"user_id", user_id},
                                       {"usage", json::array{usage}},
                                       {"keys", json::object{{"ed25519:" + pub, pub}}}};
        if (signer) {
            crypto::sign_json(obj, user_id, "ed25519:" + signer->public_key().to_base64(), *signer);
        }
        return json::to_canonical(obj);
    }
    // Adds the self-signing key's signature to a device's signed JSON.
    std::string cross_sign(const std::string& device_json) const {
        auto signed_json = crypto::sign_json(
            device_json, user_id, "ed25519:" + self_signing.public_key().to_base64(), self_signing);
        EXPECT_TRUE(signed_json);
        return *signed_json;
    }
};

// Builds a /keys/query body: user -> {device_id -> raw json}.
inline std::string answer_body(
    const std::map<std::string, std::map<std::string, std::string>>& devices,
    const std::string& extra = "") {
    std::string body = "{\"device_keys\":{";
    bool first_user = true;
    for (const auto& [user, devs] : devices) {
        if (!first_user) body += ",";
        first_user = false;
        body += "\"" + user + "\":{";
        bool first = true;
        for (const auto& [id, raw] : devs) {
            if (!first) body += ",";
            first = false;
            body += "\"" + id + "\":" + raw;
        }
        body += "}";
    }
    body += "}" + extra + "}";
    return body;
}

}  // namespace devlist::sync
