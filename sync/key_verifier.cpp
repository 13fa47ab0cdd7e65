#include "sync/key_verifier.hpp"

#include <algorithm>
#include <cassert>
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

// The public key of a stored (verified before) cross-signing key.
std::optional<crypto::ed25519_public_key> stored_public_key(const storage::cross_signing_key& k) {
    auto pub = crypto::ed25519_public_key::from_base64(k.public_key);
    if (!pub) return std::nullopt;
    return *pub;
}

// One context per answer: collects events and reuses the canonicalization buffer.
struct verifier {
    storage::timestamp_ms now;
    verification_stats& stats;
    storage::query_result& result;
    std::string scratch;

    // Empty when the signature verifies; otherwise why not, in words for the security event.
    std::string check(std::string_view raw, const signature_entry* sig,
                      const crypto::ed25519_public_key& key) {
        if (!sig) return "missing";
        ++stats.signatures_checked;
        auto r = crypto::verify_json_signature(raw, sig->signature, key, &scratch);
        if (r) return {};
        // An object that has no canonical form (a float, a number out of range, a duplicate
        // key, too deep) has no signature that can be checked.
        const auto& e = r.error();
        if (e == errc::json_syntax || e == errc::json_limit || e == errc::json_number ||
            e == errc::json_duplicate_key || e == errc::json_type) {
            return "uncheckable: " + e.detail;
        }
        return "invalid";
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
        // As with a refused device: what was verified before stays, the whole chain.
        for (const auto& k : known.cross_signing) {
            out.keys.push_back(k);
            out.key_ids.insert(k.public_key);
            if (k.usage == storage::key_usage::self_signing) {
                out.self_signing = stored_public_key(k);
            }
        }
        return out;
    }
    const auto& master = std::get<crypto::ed25519_public_key>(master_shape);
    const std::string master_b64 = master.to_base64();
    bool master_unchanged = false;
    for (const auto& k : known.cross_signing) {
        if (k.usage != storage::key_usage::master) continue;
        if (k.public_key != master_b64) {
            v.record(security_kind::master_key_changed, user_id, std::nullopt,
                     json::object{{"old", k.public_key}, {"new", master_b64}});
        } else {
            master_unchanged = true;
        }
    }
    // A sub-key byte-identical to the stored one, under the same master key, carries the
    // master's signature that was verified when it was stored.
    auto verified_before = [&](const queried_cross_signing_key& k, storage::key_usage kind) {
        if (!master_unchanged) return false;
        return std::any_of(known.cross_signing.begin(), known.cross_signing.end(),
                           [&](const storage::cross_signing_key& stored) {
                               return stored.usage == kind && stored.verified &&
                                      stored.signed_json == k.raw_json;
                           });
    };
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
        } else if (!verified_before(*k, kind)) {
            auto signature =
                v.check(k->raw_json,
                        find_signature(k->signatures, user_id, "ed25519:" + master_b64), master);
            if (!signature.empty()) {
                reason = "not signed by the master key (signature " + signature + ")";
            }
        }
        if (!reason.empty()) {
            ++v.stats.cross_signing_rejected;
            v.record(security_kind::cross_signing_key_rejected, user_id, std::nullopt,
                     json::object{{"usage", std::string(usage)}, {"reason", reason}});
            // Under the same master key, the one verified before stays; a new master key
            // makes it worthless.
            if (!master_unchanged) return std::nullopt;
            for (const auto& stored : known.cross_signing) {
                if (stored.usage != kind) continue;
                out.keys.push_back(stored);
                out.key_ids.insert(stored.public_key);
                return stored_public_key(stored);
            }
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
    auto why =
        v.check(d.raw_json, find_signature(d.signatures, d.user_id, "ed25519:" + d.device_id), ed);
    if (!why.empty()) return "self-signature " + why;
    return std::nullopt;
}

// Whether storing `out` would change nothing but a last_seen that is still recent enough: then
// the store writes only the outdated flag (most users of a large answer come back unchanged).
bool same_as_stored(const storage::user_query_result& out, const known_keys& known,
                    storage::timestamp_ms now) {
    auto recent = [now](storage::timestamp_ms seen) {
        return now - seen < storage::last_seen_resolution_ms;
    };
    if (out.devices.size() != known.devices.size()) return false;
    for (const auto& d : out.devices) {
        auto k = std::find_if(known.devices.begin(), known.devices.end(),
                              [&](const auto& stored) { return stored.device_id == d.device_id; });
        if (k == known.devices.end() || k->deleted_at || !recent(k->last_seen) ||
            k->ed25519 != d.ed25519 || k->curve25519 != d.curve25519 ||
            k->display_name != d.display_name || k->signed_json != d.signed_json ||
            k->cross_signed != d.cross_signed) {
            return false;
        }
    }
    static const std::vector<storage::cross_signing_key> none;
    const auto& keys = out.cross_signing_keys ? *out.cross_signing_keys : none;
    if (keys.size() != known.cross_signing.size()) return false;
    for (const auto& key : keys) {
        auto k = std::find_if(known.cross_signing.begin(), known.cross_signing.end(),
                              [&](const auto& stored) { return stored.usage == key.usage; });
        if (k == known.cross_signing.end() || !recent(k->last_seen) ||
            k->public_key != key.public_key || k->signed_json != key.signed_json ||
            k->verified != key.verified) {
            return false;
        }
    }
    return true;
}

storage::user_query_result verify_user(verifier& v, const query_ticket& ticket,
                                       const user_answer& answer, const known_keys& known) {
    storage::user_query_result out;
    out.user_id = ticket.user_id;
    out.generation_at_send = ticket.generation;
    const std::size_t events_before = v.result.security_events.size();
    const std::size_t rejected_before = v.stats.devices_rejected + v.stats.cross_signing_rejected;

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
                        *cross.self_signing)
                    .empty();
        }
        out.devices.push_back(std::move(rec));
    }
    out.unchanged = same_as_stored(out, known, v.now);
    // Only a part accepted whole stands for what is stored: a refused device or key, or any
    // event, means a later identical part must be looked at again.
    if (v.result.security_events.size() == events_before &&
        v.stats.devices_rejected + v.stats.cross_signing_rejected == rejected_before) {
        out.digest = answer.digest;
    }
    return out;
}

}  // namespace

query_answer_index::query_answer_index(const keys_query_response& answer) : answer_(answer) {
    for (std::size_t i = 0; i < answer.users.size(); ++i) {
        auto& part = by_user_[answer.users[i]];
        if (i < answer.digests.size()) part.digest = answer.digests[i];
    }
    for (const auto& d : answer.devices)
        by_user_[d.user_id].devices.push_back(&d);
    // Cross-signing keys of users the answer does not list under device_keys do not make the
    // answer cover them: such a user stays absent.
    auto file = [&](const std::vector<queried_cross_signing_key>& keys,
                    const queried_cross_signing_key* user_answer::*slot) {
        for (const auto& k : keys) {
            if (auto u = by_user_.find(k.user_id); u != by_user_.end()) u->second.*slot = &k;
        }
    };
    file(answer.master_keys, &user_answer::master);
    file(answer.self_signing_keys, &user_answer::self_signing);
    file(answer.user_signing_keys, &user_answer::user_signing);
}

bool query_answer_index::server_failed(const std::string& user_id) const {
    return answer_.failures.contains(server_name_of(user_id).value_or(""));
}

const user_answer* query_answer_index::find(const std::string& user_id) const {
    auto u = by_user_.find(user_id);
    return u == by_user_.end() ? nullptr : &u->second;
}

void verify_query_users(const query_answer_index& index, std::span<const query_ticket> tickets,
                        const std::function<known_keys(const std::string& user_id)>& known,
                        storage::timestamp_ms now, verification_stats& stats,
                        storage::query_result& result) {
    verifier v{now, stats, result, {}};
    for (const auto& ticket : tickets) {
        const user_answer* part = index.find(ticket.user_id);
        assert(part && !index.server_failed(ticket.user_id) && "a user the answer does not cover");
        if (!part) continue;
        result.users.push_back(verify_user(v, ticket, *part, known(ticket.user_id)));
    }
}

storage::query_result verify_query_answer(
    const keys_query_response& answer, const std::vector<query_ticket>& tickets,
    const std::function<known_keys(const std::string& user_id)>& known, storage::timestamp_ms now,
    verification_stats& stats, std::vector<std::string>& absent) {
    storage::query_result result;
    result.at = now;
    query_answer_index index(answer);
    std::vector<query_ticket> covered;
    std::unordered_set<std::string> answered;
    for (const auto& ticket : tickets) {
        if (index.server_failed(ticket.user_id)) continue;
        answered.emplace(server_name_of(ticket.user_id).value_or(""));
        if (!index.find(ticket.user_id)) {
            absent.push_back(ticket.user_id);
            continue;
        }
        covered.push_back(ticket);
    }
    verify_query_users(index, covered, known, now, stats, result);
    result.answered_servers.assign(answered.begin(), answered.end());
    std::sort(result.answered_servers.begin(), result.answered_servers.end());
    return result;
}

}  // namespace devlist::sync
