#include "crypto/signed_json.hpp"

#include "crypto/canonical_json.hpp"
#include "crypto/canonical_writer.hpp"

#include <string>

namespace devlist::crypto {
namespace {

std::string path_of(std::string_view entity, std::string_view key_id) {
    std::string path = "signatures";
    json::append_canonical_string(entity, path.append("."));
    json::append_canonical_string(key_id, path.append("."));
    return path;
}

// Signing adds to "signatures" and to its entry for the entity; either may be missing, but one
// that is there and is not an object is refused rather than silently replaced.
bool is_absent_or_object(const json::value* v) {
    return v == nullptr || v->is_object();
}

}  // namespace

void sign_json(json::value& object, std::string_view entity, std::string_view key_id,
               const ed25519_key_pair& key) {
    auto& members = object.as_object();
    auto signatures = members.extract("signatures");
    auto unsigned_data = members.extract("unsigned");
    const ed25519_signature signature = key.sign(json::to_canonical(object));

    json::value all = signatures ? std::move(signatures.mapped()) : json::value(json::object{});
    if (!all.is_object()) all = json::object{};
    json::value& by_entity = all[entity];
    if (!by_entity.is_object()) by_entity = json::object{};
    by_entity[key_id] = signature.to_base64();

    members.insert_or_assign("signatures", std::move(all));
    if (unsigned_data) members.insert(std::move(unsigned_data));
}

result<std::string> sign_json(std::string_view raw_object, std::string_view entity,
                              std::string_view key_id, const ed25519_key_pair& key) {
    auto parsed = json::parse(raw_object);
    if (!parsed) return parsed.error();
    if (!parsed->is_object()) return error{errc::json_type, "only a JSON object can be signed"};
    const json::value* signatures = parsed->find("signatures");
    if (!is_absent_or_object(signatures)) {
        return error{errc::json_type, "\"signatures\" of the object to sign is not an object"};
    }
    if (signatures != nullptr && !is_absent_or_object(signatures->find(entity))) {
        return error{errc::json_type, "signatures." + std::string(entity) +
                                          " of the object to sign is not an object"};
    }
    sign_json(*parsed, entity, key_id, key);
    return json::to_canonical(*parsed);
}

result<void> verify_json(std::string_view raw_object, std::string_view entity,
                         std::string_view key_id, const ed25519_public_key& key) {
    auto parsed = json::parse(raw_object);
    if (!parsed) return parsed.error();
    if (!parsed->is_object())
        return error{errc::json_type, "a signed JSON value must be an object"};
    const json::value* signatures = parsed->find("signatures");
    const json::value* by_entity = signatures == nullptr ? nullptr : signatures->find(entity);
    const json::value* signature = by_entity == nullptr ? nullptr : by_entity->find(key_id);
    if (signature == nullptr) {
        return error{errc::signature_missing, "no signature at " + path_of(entity, key_id)};
    }
    if (!signature->is_string()) {
        return error{errc::signature_invalid,
                     "the signature at " + path_of(entity, key_id) + " is not a string"};
    }
    return verify_json_signature(raw_object, signature->as_string(), key);
}

result<void> verify_json_signature(std::string_view raw_object, std::string_view signature_base64,
                                   const ed25519_public_key& key, std::string* scratch) {
    // The spec's order: decode the signature, then canonicalise, then verify.
    auto signature = ed25519_signature::from_base64(signature_base64);
    if (!signature) return signature.error();
    std::string local;
    std::string& canonical = scratch != nullptr ? *scratch : local;
    canonical_options options;
    options.strip_signatures_and_unsigned = true;
    if (auto r = canonicalize(raw_object, canonical, options); !r) return r.error();
    if (!ed25519_verify(key, canonical, *signature)) {
        return error{errc::signature_invalid, "ed25519 signature does not match the object"};
    }
    return {};
}

}  // namespace devlist::crypto
