#include "sync/key_verifier.hpp"

#include <algorithm>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"
#include "crypto/signed_json.hpp"
#include "sync/matrix_ids.hpp"

namespace devlist::sync {
namespace {

// The signature of `signer` with `key_id` on an object, if present.
const signature_entry* find_signature(const std::vector<signature_entry>& signatures,
                                      std::string_view signer, std::string_view key_id) {
    for (const auto& s : signatures) {
        if (s.signer == signer && s.key_id == key_id) return &s;
    }
    return nullptr;
}

// One context per answer: collects events and reuses the canonicalization buffer.
struct verifier {
    storage::timestamp_ms now;
    verification_stats& stats;
    storage::query_result& result;
    std::string scratch;

    bool check(std::string_view raw, const signature_entry* sig,
               const crypto::ed25519_public_key& key) {
        if (!sig) return false;
        ++stats.signatures_checked;
        return crypto::verify_json_signature(raw, sig->signature, key, &scratch).has_value();
    }

    void record(const char* kind, const std::string& user_id,
                const std::optional<std::string>& device_id, json::value detail) {
        detail["user_id"] = user_id;
        if (device_id) detail["device_id"] = *device_id;
        std::string payload = json::to_canonical(detail);
        result.security_events.push_back({0, now, kind, user_id, device_id, payload});
        result.outbox_events.push_back({0, now, kind, std::move(payload)});
    }
};

// A cross-signing key of the right shape: the user's, for `usage`, with exactly one ed25519
// key whose ID names it. Returns the public key, or a reason.
std::variant<crypto::ed25519_public_key, std::string> check_shape(
    const queried_cross_signing_key& k, std::string_view usage) {
    if (k.problem) return *k.problem;
    if (k.claimed_user_id != k.user_id) return std::string("user_id does not match");
    if (std::find(k.usage.begin(), k.usage.end(), usage) == k.usage.end()) {
        return "usage does not include " + std::string(usage);
    }
    if (k.keys.size() != 1) return std::string("must have exactly one key");
    const auto& [key_id, value] = k.keys.front();
    if (key_id != "ed25519:" + value) return std::string("key ID does not match the key");
    auto pub = crypto::ed25519_public_key::from_base64(value);
    if (!pub) return std::string("key is not a 32-byte base64 ed25519 key");
    return *pub;
}

struct user_answer {
    std::vector<const queried_device*> devices;
    const queried_cross_signing_key* master = nullptr;
    const queried_cross_signing_key* self_signing = nullptr;
    const queried_cross_signing_key* user_signing = nullptr;
};

// The verified cross-signing keys of one user, ready to store, and the self-signing key that
// cross-signs devices.
struct cross_signing_outcome {
    std::vector<storage::cross_signing_key> keys;
    std::optional<crypto::ed25519_public_key> self_signing;
    std::unordered_set<std::string> key_ids;  // public keys, for the device-ID collision rule
};

cross_signing_outcome verify_cross_signing(verifier& v, const std::string& user_id,
                                           const user_answer& answer, const known_keys& known) {
    cross_signing_outcome out;
    if (!answer.master) return out;
    auto master_shape = check_shape(*answer.master, "master");
    if (auto* why = std::get_if<std::string>(&master_shape)) {
        ++v.stats.cross_signing_rejected;
        v.record(security_kind::cross_signing_key_rejected, user_id, std::nullopt,
                 json::object{{"usage", "master"}, {"reason", *why}});
        return out;
    }
    const auto& master = std::get<crypto::ed25519_public_key>(master_shape);
    const std::string master_b64 = master.to_base64();
    for (const auto& k : known.cross_signing) {
        if (k.usage == storage::key_usage::master && k.public_key != master_b64) {
            v.record(security_kind::master_key_changed, user_id, std::nullopt,
                     json::object{{"old", k.public_key}, {"new", master_b64}});
        }
    }
    out.keys.push_back(
        {user_id, storage::key_usage::master, master_b64, answer.master->raw_json, true, 0, 0});
    out.key_ids.insert(master_b64);

    auto sub_key = [&](const queried_cross_signing_key* k, std::string_view usage,
                       storage::key_usage kind) -> std::optional<crypto::ed25519_public_key> {
        if (!k) return std::nullopt;
        auto shape = check_shape(*k, usage);
        std::string reason;
        if (auto* why = std::get_if<std::string>(&shape)) {
            reason = *why;
        } else if (!v.check(k->raw_json,
                            find_signature(k->signatures, user_id, "ed25519:" + master_b64),
                            master)) {
            reason = "not signed by the master key";
        }
        if (!reason.empty()) {
            ++v.stats.cross_signing_rejected;
            v.record(security_kind::cross_signing_key_rejected, user_id, std::nullopt,
                     json::object{{"usage", std::string(usage)}, {"reason", reason}});
            return std::nullopt;
        }
        const auto& pub = std::get<crypto::ed25519_public_key>(shape);
        out.keys.push_back({user_id, kind, pub.to_base64(), k->raw_json, true, 0, 0});
        out.key_ids.insert(pub.to_base64());
        return pub;
    };
    out.self_signing =
        sub_key(answer.self_signing, "self_signing", storage::key_usage::self_signing);
    sub_key(answer.user_signing, "user_signing", storage::key_usage::user_signing);
    return out;
}

// Why a device cannot be accepted, or nullopt.
std::optional<std::string> device_problem(verifier& v, const queried_device& d,
                                          crypto::ed25519_public_key& ed) {
    if (d.problem) return *d.problem;
    if (d.claimed_user_id != d.user_id) return "user_id does not match the map key";
    if (d.claimed_device_id != d.device_id) return "device_id does not match the map key";
    auto ed_key = crypto::ed25519_public_key::from_base64(d.ed25519);
    if (!ed_key) return "missing or malformed ed25519 key";
    if (!crypto::curve25519_public_key::from_base64(d.curve25519)) {
        return "missing or malformed curve25519 key";
    }
    ed = *ed_key;
    if (!v.check(d.raw_json, find_signature(d.signatures, d.user_id, "ed25519:" + d.device_id),
                 ed)) {
        return "self-signature missing or invalid";
    }
    return std::nullopt;
}

storage::user_query_result verify_user(verifier& v, const query_ticket& ticket,
                                       const user_answer& answer, const known_keys& known) {
    storage::user_query_result out;
    out.user_id = ticket.user_id;
    out.generation_at_send = ticket.generation;

    auto cross = verify_cross_signing(v, ticket.user_id, answer, known);
    out.cross_signing_keys = std::move(cross.keys);

    std::unordered_map<std::string_view, const storage::device_record*> stored;
    for (const auto& d : known.devices)
        stored.emplace(d.device_id, &d);

    // A byte-identical device under the same self-signing key keeps its cross-signed verdict:
    // re-verifying it would cost a signature check per device for nothing.
    std::string self_signing_id;
    bool self_signing_unchanged = false;
    if (cross.self_signing) {
        std::string pub = cross.self_signing->to_base64();
        self_signing_id = "ed25519:" + pub;
        for (const auto& k : known.cross_signing) {
            if (k.usage == storage::key_usage::self_signing && k.public_key == pub) {
                self_signing_unchanged = true;
            }
        }
    } else {
        self_signing_unchanged =
            std::none_of(known.cross_signing.begin(), known.cross_signing.end(),
                         [](const auto& k) { return k.usage == storage::key_usage::self_signing; });
    }

    for (const queried_device* d : answer.devices) {
        auto old = stored.find(d->device_id);
        const storage::device_record* previous = old == stored.end() ? nullptr : old->second;
        std::optional<std::string> problem;
        crypto::ed25519_public_key ed{};
        bool unchanged = previous && previous->signed_json == d->raw_json;
        if (cross.key_ids.contains(d->device_id)) {
            problem = "device ID collides with a cross-signing key";
        } else if (!unchanged) {
            problem = device_problem(v, *d, ed);
        }
        if (!problem && previous && !unchanged && previous->ed25519 != d->ed25519) {
            v.record(security_kind::device_key_changed, d->user_id, d->device_id,
                     json::object{{"old_ed25519", previous->ed25519}, {"new_ed25519", d->ed25519}});
            ++v.stats.devices_rejected;
            out.devices.push_back(*previous);
            continue;
        }
        if (problem) {
            ++v.stats.devices_rejected;
            v.record(security_kind::device_rejected, d->user_id, d->device_id,
                     json::object{{"reason", *problem}});
            if (previous) out.devices.push_back(*previous);  // keep what was verified before
            continue;
        }
        storage::device_record rec;
        rec.user_id = d->user_id;
        rec.device_id = d->device_id;
        rec.ed25519 = d->ed25519;
        rec.curve25519 = d->curve25519;
        rec.display_name = d->display_name;
        rec.signed_json = d->raw_json;
        if (unchanged) {
            ++v.stats.devices_unchanged;
        } else {
            ++v.stats.devices_accepted;
        }
        if (unchanged && self_signing_unchanged) {
            rec.cross_signed = previous->cross_signed;
        } else if (cross.self_signing) {
            rec.cross_signed =
                v.check(d->raw_json, find_signature(d->signatures, d->user_id, self_signing_id),
                        *cross.self_signing);
        }
        out.devices.push_back(std::move(rec));
    }
    return out;
}

}  // namespace

storage::query_result verify_query_answer(
    const keys_query_response& answer, const std::vector<query_ticket>& tickets,
    const std::function<known_keys(const std::string& user_id)>& known, storage::timestamp_ms now,
    verification_stats& stats, std::vector<std::string>& absent) {
    storage::query_result result;
    result.at = now;
    verifier v{now, stats, result, {}};

    std::unordered_map<std::string_view, user_answer> by_user;
    for (const auto& u : answer.users)
        by_user[u];
    for (const auto& d : answer.devices)
        by_user[d.user_id].devices.push_back(&d);
    for (const auto& k : answer.master_keys)
        by_user[k.user_id].master = &k;
    for (const auto& k : answer.self_signing_keys)
        by_user[k.user_id].self_signing = &k;
    for (const auto& k : answer.user_signing_keys)
        by_user[k.user_id].user_signing = &k;
    std::unordered_set<std::string_view> present(answer.users.begin(), answer.users.end());

    std::unordered_set<std::string> answered;
    for (const auto& ticket : tickets) {
        auto server = server_name_of(ticket.user_id).value_or("");
        if (answer.failures.contains(server)) continue;
        answered.emplace(server);
        if (!present.contains(ticket.user_id)) {
            absent.push_back(ticket.user_id);
            continue;
        }
        result.users.push_back(
            verify_user(v, ticket, by_user[ticket.user_id], known(ticket.user_id)));
    }
    result.answered_servers.assign(answered.begin(), answered.end());
    std::sort(result.answered_servers.begin(), result.answered_servers.end());
    return result;
}

}  // namespace devlist::sync
