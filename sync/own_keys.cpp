#include "sync/own_keys.hpp"

#include "crypto/base64.hpp"
#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"

#include <algorithm>
#include <array>
#include <cassert>

namespace devlist::sync {

namespace {

std::string context(std::string_view prefix, std::string_view public_key) {
    std::string c(prefix);
    c += public_key;
    return c;
}

std::string device_key_id(const device_identity_keys& identity) {
    return "ed25519:" + identity.device_id;
}

// The canonical JSON of an object that is all JSON text already: used to splice signed
// objects, which must go out byte for byte as stored, into a request body.
std::string splice_object(std::span<const std::pair<std::string, std::string>> members) {
    std::string out = "{";
    for (const auto& [key, raw] : members) {
        if (out.size() > 1) out += ',';
        out += json::to_canonical(json::value(key));
        out += ':';
        out += raw;
    }
    out += '}';
    return out;
}

result<crypto::ed25519_key_pair> open_ed25519(const storage::sealed_bytes& sealed,
                                              const std::string& ctx,
                                              const crypto::sealing_key& sealing) {
    auto seed = sealing.open(sealed, ctx);
    if (!seed) return seed.error();
    return crypto::ed25519_key_pair::from_seed(seed->span());
}

}  // namespace

std::string_view usage_name(storage::key_usage usage) {
    switch (usage) {
        case storage::key_usage::master:
            return "master";
        case storage::key_usage::self_signing:
            return "self_signing";
        case storage::key_usage::user_signing:
            return "user_signing";
    }
    return "master";
}

new_identity create_identity(std::string user_id, std::string device_id,
                             const crypto::sealing_key& sealing, storage::timestamp_ms now) {
    auto signing = crypto::ed25519_key_pair::generate();
    auto exchange = crypto::curve25519_key_pair::generate();
    storage::account_identity record;
    record.user_id = user_id;
    record.device_id = device_id;
    record.ed25519_public = signing.public_key().to_base64();
    record.curve25519_public = exchange.public_key().to_base64();
    record.ed25519_sealed = sealing.seal(
        signing.seed().span(), context(seal_context::identity_ed25519, record.ed25519_public));
    record.curve25519_sealed =
        sealing.seal(exchange.secret().span(),
                     context(seal_context::identity_curve25519, record.curve25519_public));
    record.created_at = now;
    return {std::move(record),
            {std::move(user_id), std::move(device_id), std::move(signing), std::move(exchange)}};
}

result<device_identity_keys> open_identity(const storage::account_identity& record,
                                           const crypto::sealing_key& sealing) {
    const auto refuse = [&](const error& e) {
        return error{e.code, "the identity keys of device " + record.device_id +
                                 " in the database do not open with the configured sealing key (" +
                                 e.detail +
                                 ") — use the sealing key this database was created with"};
    };
    auto signing =
        open_ed25519(record.ed25519_sealed,
                     context(seal_context::identity_ed25519, record.ed25519_public), sealing);
    if (!signing) return refuse(signing.error());
    auto secret = sealing.open(record.curve25519_sealed, context(seal_context::identity_curve25519,
                                                                 record.curve25519_public));
    if (!secret) return refuse(secret.error());
    auto exchange = crypto::curve25519_key_pair::from_secret(secret->span());
    if (!exchange) return refuse(exchange.error());
    if (signing->public_key().to_base64() != record.ed25519_public ||
        exchange->public_key().to_base64() != record.curve25519_public) {
        return error{errc::key_invalid, "the stored identity keys of device " + record.device_id +
                                            " do not match their public keys"};
    }
    return device_identity_keys{record.user_id, record.device_id, std::move(*signing),
                                std::move(*exchange)};
}

std::string signed_device_keys(const device_identity_keys& identity) {
    json::value keys = json::object{
        {"user_id", identity.user_id},
        {"device_id", identity.device_id},
        {"algorithms", json::array{std::string(olm_algorithm), std::string(megolm_algorithm)}},
        {"keys",
         json::object{
             {"curve25519:" + identity.device_id, identity.exchange.public_key().to_base64()},
             {device_key_id(identity), identity.signing.public_key().to_base64()}}},
    };
    crypto::sign_json(keys, identity.user_id, device_key_id(identity), identity.signing);
    return json::to_canonical(keys);
}

storage::new_key make_signed_curve25519_key(const device_identity_keys& identity, bool fallback,
                                            const crypto::sealing_key& sealing) {
    auto pair = crypto::curve25519_key_pair::generate();
    storage::new_key key;
    key.algorithm = std::string(signed_curve25519);
    key.public_key = pair.public_key().to_base64();
    json::value object = json::object{{"key", key.public_key}};
    if (fallback) object["fallback"] = true;
    crypto::sign_json(object, identity.user_id, device_key_id(identity), identity.signing);
    key.signed_json = json::to_canonical(object);
    key.sealed_private =
        sealing.seal(pair.secret().span(),
                     context(fallback ? seal_context::fallback_key : seal_context::one_time_key,
                             key.public_key));
    return key;
}

std::string format_key_id(std::int64_t counter) {
    assert(counter >= 0);
    const auto value = static_cast<std::uint64_t>(counter);
    const std::size_t width = value > 0xFFFFFFFFu ? 8 : 4;
    std::array<std::uint8_t, 8> be{};
    for (std::size_t i = 0; i < width; ++i)
        be[i] = static_cast<std::uint8_t>(value >> (8 * (width - 1 - i)));
    return crypto::base64_encode(std::span<const std::uint8_t>(be.data(), width));
}

std::string one_time_keys_upload_body(std::span<const storage::one_time_key> keys) {
    std::vector<std::pair<std::string, std::string>> members;
    members.reserve(keys.size());
    for (const auto& k : keys)
        members.emplace_back(k.algorithm + ':' + k.key_id, k.signed_json);
    // Canonical JSON: members sorted by their names (code points, as std::string compares).
    std::sort(members.begin(), members.end());
    const std::pair<std::string, std::string> body[] = {{"one_time_keys", splice_object(members)}};
    return splice_object(body);
}

std::string fallback_key_upload_body(const storage::fallback_key& key) {
    const std::pair<std::string, std::string> entry[] = {
        {key.algorithm + ':' + key.key_id, key.signed_json}};
    const std::string keys = splice_object(entry);
    const std::pair<std::string, std::string> body[] = {{"fallback_keys", keys},
                                                        {"org.matrix.msc2732.fallback_keys", keys}};
    return splice_object(body);
}

std::string device_keys_upload_body(std::string_view signed_device_keys) {
    const std::pair<std::string, std::string> body[] = {
        {"device_keys", std::string(signed_device_keys)}};
    return splice_object(body);
}

std::string seal_context_of(const storage::own_cross_signing_key& key) {
    std::string c(seal_context::cross_signing);
    c += usage_name(key.usage);
    c += ':';
    c += key.public_key;
    return c;
}

std::vector<storage::own_cross_signing_key> create_cross_signing_keys(
    const device_identity_keys& identity, const crypto::sealing_key& sealing,
    storage::timestamp_ms now) {
    auto master = crypto::ed25519_key_pair::generate();
    const std::string master_public = master.public_key().to_base64();
    std::vector<storage::own_cross_signing_key> out;
    const auto add = [&](storage::key_usage usage, const crypto::ed25519_key_pair& pair) {
        storage::own_cross_signing_key key;
        key.usage = usage;
        key.public_key = pair.public_key().to_base64();
        json::value object = json::object{
            {"user_id", identity.user_id},
            {"usage", json::array{std::string(usage_name(usage))}},
            {"keys", json::object{{"ed25519:" + key.public_key, key.public_key}}},
        };
        if (usage == storage::key_usage::master) {
            // The device vouches for the master key it made (as Element does); peers may use it.
            crypto::sign_json(object, identity.user_id, device_key_id(identity), identity.signing);
        } else {
            crypto::sign_json(object, identity.user_id, "ed25519:" + master_public, master);
        }
        key.signed_json = json::to_canonical(object);
        key.sealed_private = sealing.seal(pair.seed().span(), seal_context_of(key));
        key.created_at = now;
        out.push_back(std::move(key));
    };
    add(storage::key_usage::master, master);
    add(storage::key_usage::self_signing, crypto::ed25519_key_pair::generate());
    add(storage::key_usage::user_signing, crypto::ed25519_key_pair::generate());
    return out;
}

std::string cross_signing_upload_body(std::span<const storage::own_cross_signing_key> keys) {
    std::vector<std::pair<std::string, std::string>> members;
    for (const auto& k : keys)
        members.emplace_back(std::string(usage_name(k.usage)) + "_key", k.signed_json);
    std::sort(members.begin(), members.end());
    return splice_object(members);
}

result<std::string> device_signature_upload_body(const device_identity_keys& identity,
                                                 const storage::own_cross_signing_key& self_signing,
                                                 const crypto::sealing_key& sealing) {
    auto key = open_ed25519(self_signing.sealed_private, seal_context_of(self_signing), sealing);
    if (!key) {
        return error{key.error().code,
                     "the own self-signing key does not open: " + key.error().detail};
    }
    auto signed_keys = crypto::sign_json(signed_device_keys(identity), identity.user_id,
                                         "ed25519:" + self_signing.public_key, *key);
    if (!signed_keys) return signed_keys.error();
    const std::pair<std::string, std::string> device[] = {{identity.device_id, *signed_keys}};
    const std::pair<std::string, std::string> body[] = {{identity.user_id, splice_object(device)}};
    return splice_object(body);
}

}  // namespace devlist::sync
