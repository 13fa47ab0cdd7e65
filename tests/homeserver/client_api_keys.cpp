// The /keys/* endpoints: upload, query, claim, changes, cross-signing and signatures.
#include "tests/homeserver/client_api.hpp"

#include "crypto/ed25519.hpp"
#include "crypto/signed_json.hpp"

#include <algorithm>

namespace devlist::testing {

namespace {

const std::string* string_member(const json::value& object, std::string_view key) {
    const json::value* member = object.is_object() ? object.find(key) : nullptr;
    return member && member->is_string() ? &member->as_string() : nullptr;
}

// "<algorithm>:<key id>", each part non-empty (Synapse refuses other shapes with M_BAD_JSON).
bool is_algorithm_key_id(std::string_view key_id) {
    const auto colon = key_id.find(':');
    return colon != std::string_view::npos && colon > 0 && colon + 1 < key_id.size() &&
           key_id.find(':', colon + 1) == std::string_view::npos;
}

json::value without_signatures(json::value object) {
    if (object.is_object()) {
        object.erase("signatures");
        object.erase("unsigned");
    }
    return object;
}

// The base64 public key of a cross-signing key object ({"keys": {"ed25519:<pk>": "<pk>"}}), if
// it has exactly one, well-formed.
std::optional<std::string> cross_signing_public_key(const json::value& key) {
    const json::value* keys = key.is_object() ? key.find("keys") : nullptr;
    if (!keys || !keys->is_object() || keys->as_object().size() != 1) return std::nullopt;
    const auto& [key_id, public_key] = *keys->as_object().begin();
    if (!public_key.is_string() || key_id != "ed25519:" + public_key.as_string()) {
        return std::nullopt;
    }
    if (!crypto::ed25519_public_key::from_base64(public_key.as_string())) return std::nullopt;
    return public_key.as_string();
}

bool has_usage(const json::value& key, std::string_view usage) {
    const json::value* usages = key.find("usage");
    if (!usages || !usages->is_array()) return false;
    return std::any_of(
        usages->as_array().begin(), usages->as_array().end(),
        [&](const json::value& u) { return u.is_string() && u.as_string() == usage; });
}

// Whether object carries a valid signature by signer's key `ed25519:<public_key_base64>`-style
// key_id, made with public_key_base64.
bool signed_by(const json::value& object, std::string_view signer, std::string_view key_id,
               std::string_view public_key_base64) {
    const auto key = crypto::ed25519_public_key::from_base64(public_key_base64);
    if (!key) return false;
    return crypto::verify_json(json::to_canonical(object), signer, key_id, *key).has_value();
}

// The signatures an object carries from one signer: {key id: signature}.
const json::object& signatures_of(const json::value& object, std::string_view signer) {
    static const json::object none;
    const json::value* all = object.is_object() ? object.find("signatures") : nullptr;
    const json::value* mine = all && all->is_object() ? all->find(signer) : nullptr;
    return mine && mine->is_object() ? mine->as_object() : none;
}

const json::value* find_signature(const json::value& object, std::string_view signer,
                                  std::string_view key_id) {
    const json::object& mine = signatures_of(object, signer);
    const auto it = mine.find(key_id);
    return it == mine.end() ? nullptr : &it->second;
}

json::value uia_challenge(const std::string& session, std::string_view stage) {
    return json::object{{"flows", json::array{json::object{{"stages", json::array{stage}}}}},
                        {"params", json::object{}},
                        {"session", session}};
}

json::value signature_failure(std::string_view errcode, std::string_view message) {
    return json::object{{"errcode", errcode}, {"error", message}};
}

}  // namespace

json::object client_api::one_time_key_counts(const std::string& user_id,
                                             const std::string& device_id) {
    json::object counts;
    for (const auto& [algorithm, count] : model_.one_time_key_counts(user_id, device_id)) {
        counts[algorithm] = count;
    }
    // Synapse always reports signed_curve25519 (element-android#3725, synapse#10456).
    if (!behaviour_.omit_zero_one_time_key_counts) counts.try_emplace("signed_curve25519", 0);
    return counts;
}

http_reply client_api::keys_upload(const api_request& request) {
    const std::string& user_id = request.auth->user_id;
    const std::string& device_id = request.auth->device_id;
    const json::value& body = request.body;

    // The whole body is checked before anything is stored, as Synapse validates it first.
    const json::value* device_keys = body.find("device_keys");
    if (device_keys) {
        if (!device_keys->is_object()) {
            return matrix_error(400, "M_BAD_JSON", "'device_keys' must be an object");
        }
        const std::string* claimed_user = string_member(*device_keys, "user_id");
        const std::string* claimed_device = string_member(*device_keys, "device_id");
        if (!claimed_user || *claimed_user != user_id) {
            return matrix_error(400, "M_BAD_JSON",
                                "Provided `user_id` in `device_keys` does not match that of the "
                                "authenticated user");
        }
        if (!claimed_device || *claimed_device != device_id) {
            return matrix_error(400, "M_BAD_JSON",
                                "Provided `device_id` in `device_keys` does not match that of "
                                "the authenticated user device");
        }
    }
    const std::vector<std::string_view> key_fields{"one_time_keys", "fallback_keys",
                                                   "org.matrix.msc2732.fallback_keys"};
    for (const auto field : key_fields) {
        const json::value* keys = body.find(field);
        if (!keys) continue;
        if (!keys->is_object()) {
            return matrix_error(400, "M_BAD_JSON",
                                "'" + std::string(field) + "' must be an object");
        }
        for (const auto& [key_id, key] : keys->as_object()) {
            if (!is_algorithm_key_id(key_id)) {
                return matrix_error(400, "M_BAD_JSON",
                                    "Invalid " + std::string(field) + " key '" + key_id +
                                        "'. Expected \"<algorithm>:<device_id>\".");
            }
        }
    }

    // Synapse's order: device keys, then one-time keys (a conflict stops here), then fallback.
    if (device_keys) model_.set_device_keys(user_id, device_id, *device_keys, device_id);
    if (const json::value* keys = body.find("one_time_keys")) {
        if (auto added = model_.add_one_time_keys(user_id, device_id, keys->as_object()); !added) {
            return matrix_error(400, "M_UNKNOWN", added.error().detail);
        }
    }
    for (const auto field : {"fallback_keys", "org.matrix.msc2732.fallback_keys"}) {
        if (const json::value* keys = body.find(field)) {
            model_.set_fallback_keys(user_id, device_id, keys->as_object());
        }
    }
    return json_answer(
        200, json::object{{"one_time_key_counts", one_time_key_counts(user_id, device_id)}});
}

http_reply client_api::keys_query(const api_request& request) {
    const json::value* wanted = request.body.find("device_keys");
    if (!wanted || !wanted->is_object()) {
        return matrix_error(400, "M_BAD_JSON", "'device_keys' must be a JSON object");
    }
    for (const auto& [user_id, devices] : wanted->as_object()) {
        const bool strings =
            devices.is_array() && std::all_of(devices.as_array().begin(), devices.as_array().end(),
                                              [](const json::value& d) { return d.is_string(); });
        if (!strings) {
            return matrix_error(400, "M_BAD_JSON",
                                "'device_keys' values must be a list of strings");
        }
    }

    const std::string& viewer = request.auth->user_id;
    json::object device_keys, failures, master_keys, self_signing_keys, user_signing_keys;
    for (const auto& [user_id, devices] : wanted->as_object()) {
        const std::string server(server_name_of(user_id));
        if (!model_.is_reachable(server)) {
            // What Synapse reports for a server it is backing off from.
            failures[server] = json::object{{"status", 503}, {"message", "Not ready for retry"}};
            continue;
        }
        const user_record* user = model_.find_user(user_id);
        if (!user) continue;  // unknown users are simply missing
        const auto& requested = devices.as_array();
        json::object served;
        for (const auto& [device_id, device] : user->devices) {
            const bool is_requested =
                requested.empty() || std::find(requested.begin(), requested.end(),
                                               json::value(device_id)) != requested.end();
            if (is_requested && device.keys) {
                served[device_id] = model_.served_device_keys(user_id, device_id);
            }
        }
        device_keys[user_id] = std::move(served);
        if (user->master_key) {
            master_keys[user_id] =
                server_model::served_cross_signing_key(*user->master_key, user_id, viewer);
        }
        if (user->self_signing_key) {
            self_signing_keys[user_id] =
                server_model::served_cross_signing_key(*user->self_signing_key, user_id, viewer);
        }
        if (user->user_signing_key && user_id == viewer) {
            user_signing_keys[user_id] =
                server_model::served_cross_signing_key(*user->user_signing_key, user_id, viewer);
        }
    }
    return json_answer(200, json::object{{"device_keys", std::move(device_keys)},
                                         {"failures", std::move(failures)},
                                         {"master_keys", std::move(master_keys)},
                                         {"self_signing_keys", std::move(self_signing_keys)},
                                         {"user_signing_keys", std::move(user_signing_keys)}});
}

http_reply client_api::keys_claim(const api_request& request) {
    const json::value* wanted = request.body.find("one_time_keys");
    if (!wanted || !wanted->is_object()) {
        return matrix_error(400, "M_BAD_JSON", "'one_time_keys' must be a JSON object");
    }
    json::object claimed, failures;
    for (const auto& [user_id, by_device] : wanted->as_object()) {
        if (!by_device.is_object()) {
            return matrix_error(400, "M_BAD_JSON", "'one_time_keys' values must be objects");
        }
        const std::string server(server_name_of(user_id));
        if (!model_.is_reachable(server)) {
            failures[server] = json::object{{"status", 503}, {"message", "Not ready for retry"}};
            continue;
        }
        for (const auto& [device_id, algorithm] : by_device.as_object()) {
            if (!algorithm.is_string()) continue;
            if (auto key = model_.claim_key(user_id, device_id, algorithm.as_string())) {
                claimed[user_id][device_id][key->first] = std::move(key->second);
            }
        }
    }
    return json_answer(200, json::object{{"one_time_keys", std::move(claimed)},
                                         {"failures", std::move(failures)}});
}

http_reply client_api::keys_changes(const api_request& request) {
    const std::string* from = request.query_param("from");
    if (!from) {
        return matrix_error(400, "M_MISSING_PARAM", "Missing string query parameter 'from'");
    }
    const auto since = parse_sync_token(*from);
    if (!since) return matrix_error(400, "M_UNKNOWN", "Invalid stream token");
    // Like Synapse, `to` is only a hint: changes up to now are reported.
    const stream_position now = model_.position();
    const auto delta = model_.device_lists(request.auth->user_id, request.auth->device_id,
                                           std::min(*since, now), now);
    json::array changed(delta.changed.begin(), delta.changed.end());
    json::array left(delta.left.begin(), delta.left.end());
    return json_answer(200,
                       json::object{{"changed", std::move(changed)}, {"left", std::move(left)}});
}

std::optional<reply::answer> client_api::check_password_auth(const json::value& auth,
                                                             const std::string& user_id) {
    std::string session;
    if (const std::string* given = string_member(auth, "session")) {
        const std::string* owner = model_.find_uia_session(*given);
        if (!owner || *owner != user_id) {
            return matrix_error(400, "M_UNKNOWN", "Unknown session ID: " + *given);
        }
        session = *given;
    } else {
        session = model_.start_uia_session(user_id);
    }
    const auto retry = [&](std::string_view errcode, std::string_view message) {
        json::value body = uia_challenge(session, behaviour_.uia_stage);
        body["completed"] = json::array{};
        body["errcode"] = errcode;
        body["error"] = message;
        return json_answer(401, body);
    };

    const std::string* type = string_member(auth, "type");
    if (!type) return json_answer(401, uia_challenge(session, behaviour_.uia_stage));
    if (*type != behaviour_.uia_stage) return retry("M_UNRECOGNIZED", "Unrecognised login type");
    if (*type == "m.login.dummy") {
        model_.finish_uia_session(session);
        return std::nullopt;
    }
    if (*type != "m.login.password") return retry("M_UNRECOGNIZED", "Unrecognised login type");
    const std::string* name = string_member(auth, "user");
    if (const json::value* identifier = auth.find("identifier")) {
        name = string_member(*identifier, "user");
    }
    if (!name) return retry("M_MISSING_PARAM", "Missing parameter: identifier");
    if (model_.qualify_user_id(*name) != user_id) {
        return matrix_error(403, "M_FORBIDDEN", "Invalid auth");
    }
    const std::string* password = string_member(auth, "password");
    const user_record* user = model_.find_user(user_id);
    if (!password || user->password.empty() || *password != user->password) {
        return retry("M_FORBIDDEN", "Invalid password");
    }
    model_.finish_uia_session(session);
    return std::nullopt;
}

http_reply client_api::device_signing_upload(const api_request& request) {
    const std::string& user_id = request.auth->user_id;
    user_record* user = model_.find_user(user_id);
    const json::value* master = request.body.find("master_key");
    const json::value* self_signing = request.body.find("self_signing_key");
    const json::value* user_signing = request.body.find("user_signing_key");

    // A retry of an upload that succeeded needs no UIA (spec: "the request contains no new keys").
    const auto is_new = [](const json::value* uploaded,
                           const std::optional<cross_signing_key_record>& stored) {
        return uploaded && (!stored || stored->key != *uploaded);
    };
    const bool anything_new = is_new(master, user->master_key) ||
                              is_new(self_signing, user->self_signing_key) ||
                              is_new(user_signing, user->user_signing_key);
    if (!anything_new) return json_answer(200, json::object{});

    // With no master key yet, the first upload is free (spec since v1.11, MSC3967).
    if (user->master_key || behaviour_.uia_for_first_cross_signing_upload) {
        const json::value* auth = request.body.find("auth");
        if (!auth || !auth->is_object()) {
            return json_answer(
                401, uia_challenge(model_.start_uia_session(user_id), behaviour_.uia_stage));
        }
        if (auto refusal = check_password_auth(*auth, user_id)) return std::move(*refusal);
    }

    struct upload {
        const json::value* key;
        std::string_view usage;
        std::optional<std::string> public_key;
    };
    std::array<upload, 3> uploads{{{master, "master", {}},
                                   {self_signing, "self_signing", {}},
                                   {user_signing, "user_signing", {}}}};
    for (auto& u : uploads) {
        if (!u.key) continue;
        u.public_key = cross_signing_public_key(*u.key);
        const std::string* owner = string_member(*u.key, "user_id");
        if (!u.public_key || !owner || *owner != user_id || !has_usage(*u.key, u.usage)) {
            return matrix_error(400, "M_INVALID_PARAM", "Invalid " + std::string(u.usage) + " key");
        }
        if (user->devices.contains(*u.public_key)) {
            return matrix_error(403, "M_FORBIDDEN", "Key ID in use");
        }
    }
    std::optional<std::string> master_public =
        master
            ? uploads[0].public_key
            : (user->master_key ? cross_signing_public_key(user->master_key->key) : std::nullopt);
    for (const auto& u : {uploads[1], uploads[2]}) {
        if (!u.key) continue;
        if (!master_public) {
            return matrix_error(400, "M_MISSING_PARAM",
                                "No master key available to verify signature.");
        }
        if (!signed_by(*u.key, user_id, "ed25519:" + *master_public, *master_public)) {
            return matrix_error(400, "M_INVALID_SIGNATURE", "Invalid signature");
        }
    }
    const auto optional_copy = [](const json::value* v) {
        return v ? std::optional<json::value>(*v) : std::nullopt;
    };
    model_.set_cross_signing_keys(user_id, optional_copy(master), optional_copy(self_signing),
                                  optional_copy(user_signing), request.auth->device_id);
    return json_answer(200, json::object{});
}

http_reply client_api::signatures_upload(const api_request& request) {
    const std::string& signer = request.auth->user_id;
    const user_record* me = model_.find_user(signer);
    json::object failures;

    for (const auto& [user_id, by_key] : request.body.as_object()) {
        if (!by_key.is_object()) continue;
        for (const auto& [key_id, signed_object] : by_key.as_object()) {
            const auto outcome =
                add_signature(*me, signer, request.auth->device_id, user_id, key_id, signed_object);
            if (outcome) failures[user_id][key_id] = *outcome;
        }
    }
    return json_answer(200, json::object{{"failures", std::move(failures)}});
}

std::optional<json::value> client_api::add_signature(
    const user_record& me, const std::string& signer, const std::string& by_device,
    const std::string& user_id, const std::string& key_id, const json::value& signed_object) {
    // What was signed: one of my devices (by my self-signing key), my master key (by one of my
    // devices), or someone else's master key (by my user-signing key).
    const json::value* stored = nullptr;
    std::optional<std::string> signing_key_id, signing_public_key;
    const user_record* owner = model_.find_user(user_id);
    const auto* master = owner && owner->master_key ? &*owner->master_key : nullptr;
    const auto master_public = master ? cross_signing_public_key(master->key) : std::nullopt;
    const device_record* device = user_id == signer ? model_.find_device(user_id, key_id) : nullptr;
    const bool signs_a_device = device && device->keys;

    if (signs_a_device) {
        stored = &*device->keys;
        if (me.self_signing_key) {
            signing_public_key = cross_signing_public_key(me.self_signing_key->key);
        }
        if (!signing_public_key) return signature_failure("M_NOT_FOUND", "No self-signing key");
        signing_key_id = "ed25519:" + *signing_public_key;
    } else if (master_public && key_id == *master_public) {
        stored = &master->key;
        if (user_id == signer) {
            for (const auto& [id, signature] : signatures_of(signed_object, signer)) {
                if (!id.starts_with("ed25519:")) continue;
                const std::string* pk = device_ed25519_key(signer, id.substr(8));
                if (!pk) continue;
                signing_key_id = id;
                signing_public_key = *pk;
                break;
            }
        } else if (me.user_signing_key) {
            signing_public_key = cross_signing_public_key(me.user_signing_key->key);
            if (signing_public_key) signing_key_id = "ed25519:" + *signing_public_key;
        }
    } else {
        return signature_failure("M_NOT_FOUND", "Unknown key");
    }

    if (without_signatures(signed_object) != without_signatures(*stored)) {
        return signature_failure("M_INVALID_SIGNATURE", "Key does not match");
    }
    const json::value* signature =
        signing_key_id ? find_signature(signed_object, signer, *signing_key_id) : nullptr;
    if (!signature || !signature->is_string()) {
        return signature_failure("M_INVALID_SIGNATURE", "Missing signature");
    }
    if (!signed_by(signed_object, signer, *signing_key_id, *signing_public_key)) {
        return signature_failure("M_INVALID_SIGNATURE", "Invalid signature");
    }
    if (signs_a_device) {
        model_.add_device_signature(user_id, key_id, signer, *signing_key_id,
                                    signature->as_string(), by_device);
    } else {
        model_.add_master_key_signature(user_id, signer, *signing_key_id, signature->as_string(),
                                        by_device);
    }
    return std::nullopt;
}

const std::string* client_api::device_ed25519_key(std::string_view user_id,
                                                  std::string_view device_id) {
    const device_record* device = model_.find_device(user_id, device_id);
    const json::value* keys = device && device->keys ? device->keys->find("keys") : nullptr;
    return keys ? string_member(*keys, "ed25519:" + std::string(device_id)) : nullptr;
}

}  // namespace devlist::testing
