#include "tests/homeserver/server_model.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

namespace devlist::testing {

namespace {

constexpr std::string_view upper_letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view alphanumerics =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

std::string_view algorithm_of(std::string_view key_id) {
    return key_id.substr(0, key_id.find(':'));
}

// Two one-time keys are the same key when they match apart from their signatures: a client may
// legitimately sign the same key anew when it retries an upload (Synapse compares the same way).
bool same_key_ignoring_signatures(json::value a, json::value b) {
    if (a.is_object()) a.erase("signatures");
    if (b.is_object()) b.erase("signatures");
    return a == b;
}

void merge_signatures(json::value& object, const json::object& added) {
    if (added.empty() || !object.is_object()) return;
    json::value& signatures = object["signatures"];
    if (!signatures.is_object() && !signatures.is_null()) return;  // a hostile shape: leave it
    for (const auto& [signer, by_key] : added) {
        json::value& mine = signatures[signer];
        if (!mine.is_object() && !mine.is_null()) continue;
        for (const auto& [key_id, signature] : by_key.as_object()) {
            mine[key_id] = signature;
        }
    }
}

bool is_member(std::optional<membership> m) {
    return m == membership::join || m == membership::invite;
}

std::string_view to_string(membership m) {
    switch (m) {
        case membership::invite:
            return "invite";
        case membership::join:
            return "join";
        case membership::leave:
            return "leave";
    }
    return "leave";
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::string_view server_name_of(std::string_view user_id) {
    const auto colon = user_id.find(':');
    return colon == std::string_view::npos ? std::string_view{} : user_id.substr(colon + 1);
}

server_model::server_model(std::string server_name) : server_name_(std::move(server_name)) {}

// ---- accounts and tokens ----

user_record& server_model::add_user(const std::string& user_id, std::string password) {
    user_record& user = users_[user_id];
    user.password = std::move(password);
    return user;
}

user_record* server_model::find_user(std::string_view user_id) {
    const auto it = users_.find(user_id);
    return it == users_.end() ? nullptr : &it->second;
}

const user_record* server_model::find_user(std::string_view user_id) const {
    const auto it = users_.find(user_id);
    return it == users_.end() ? nullptr : &it->second;
}

std::string server_model::qualify_user_id(std::string_view name) const {
    if (name.starts_with('@')) return std::string(name);
    return "@" + std::string(name) + ":" + server_name_;
}

std::string server_model::issue_access_token(const std::string& user_id,
                                             const std::string& device_id) {
    std::string token = "syt_" + random_string(32, alphanumerics);
    access_tokens_[token] = {.user_id = user_id, .device_id = device_id};
    return token;
}

access_token_record* server_model::find_access_token(std::string_view token) {
    const auto it = access_tokens_.find(token);
    return it == access_tokens_.end() ? nullptr : &it->second;
}

void server_model::revoke_access_token(std::string_view token) {
    if (auto* record = find_access_token(token)) record->revoked = true;
}

std::string server_model::random_device_id() {
    return random_string(10, upper_letters);
}

// ---- devices and keys ----

device_record& server_model::ensure_device(const std::string& user_id, const std::string& device_id,
                                           const std::string& display_name) {
    user_record* user = find_user(user_id);
    if (!user) throw std::invalid_argument("unknown user " + user_id);
    auto [it, created] = user->devices.try_emplace(device_id);
    if (created) {
        it->second.display_name = display_name;
        announce_device_change(user_id, device_id);
    }
    return it->second;
}

void server_model::remove_device(const std::string& user_id, const std::string& device_id) {
    user_record* user = find_user(user_id);
    if (!user || user->devices.erase(device_id) == 0) return;
    // Like Synapse: deleting a device logs it out.
    for (auto& [token, record] : access_tokens_) {
        if (record.user_id == user_id && record.device_id == device_id) record.revoked = true;
    }
    announce_device_change(user_id, device_id);
}

device_record* server_model::find_device(std::string_view user_id, std::string_view device_id) {
    user_record* user = find_user(user_id);
    if (!user) return nullptr;
    const auto it = user->devices.find(device_id);
    return it == user->devices.end() ? nullptr : &it->second;
}

const device_record* server_model::find_device(std::string_view user_id,
                                               std::string_view device_id) const {
    const user_record* user = find_user(user_id);
    if (!user) return nullptr;
    const auto it = user->devices.find(device_id);
    return it == user->devices.end() ? nullptr : &it->second;
}

void server_model::set_device_keys(const std::string& user_id, const std::string& device_id,
                                   json::value keys, const std::string& by_device) {
    device_record& device = ensure_device(user_id, device_id, {});
    if (device.keys == keys) return;  // Synapse announces only real changes
    device.keys = std::move(keys);
    announce_device_change(user_id, by_device);
}

result<void> server_model::add_one_time_keys(const std::string& user_id,
                                             const std::string& device_id,
                                             const json::object& keys) {
    device_record& device = ensure_device(user_id, device_id, {});
    std::vector<std::pair<std::string, json::value>> fresh;
    for (const auto& [id, key] : keys) {
        const std::string& key_id = id;  // a lambda may not capture a structured binding (C++17)
        const auto held = std::find_if(device.one_time_keys.begin(), device.one_time_keys.end(),
                                       [&](const one_time_key& k) { return k.key_id == key_id; });
        if (held == device.one_time_keys.end()) {
            fresh.emplace_back(key_id, key);
        } else if (!same_key_ignoring_signatures(held->key, key)) {
            std::string message = "One time key " + key_id +
                                  " already exists. Old key: " + json::to_canonical(held->key) +
                                  "; new key: " + json::to_canonical(key);
            device.refused_one_time_key_conflicts.push_back(message);
            return error(errc::invalid_argument, std::move(message));
        }
    }
    if (fresh.empty()) return {};
    const stream_position at = advance();
    for (auto& [key_id, key] : fresh) {
        device.one_time_keys_ever.push_back({key_id, key, at});
        device.one_time_keys.push_back({std::move(key_id), std::move(key), at});
    }
    return {};
}

void server_model::set_fallback_keys(const std::string& user_id, const std::string& device_id,
                                     const json::object& keys) {
    device_record& device = ensure_device(user_id, device_id, {});
    for (const auto& [key_id, key] : keys) {
        const std::string algorithm(algorithm_of(key_id));
        const auto held = device.fallback_keys.find(algorithm);
        if (held != device.fallback_keys.end() && held->second.key_id == key_id &&
            held->second.key == key) {
            continue;
        }
        device.fallback_keys[algorithm] = {.key_id = key_id, .key = key, .used = false};
        device.fallback_keys_ever.push_back({.key_id = key_id, .key = key, .used = false});
        advance();
    }
}

std::map<std::string, std::int64_t, std::less<>> server_model::one_time_key_counts(
    std::string_view user_id, std::string_view device_id) const {
    std::map<std::string, std::int64_t, std::less<>> counts;
    if (const device_record* device = find_device(user_id, device_id)) {
        for (const auto& key : device->one_time_keys) {
            ++counts[std::string(algorithm_of(key.key_id))];
        }
    }
    return counts;
}

std::vector<std::string> server_model::unused_fallback_key_types(std::string_view user_id,
                                                                 std::string_view device_id) const {
    std::vector<std::string> types;
    if (const device_record* device = find_device(user_id, device_id)) {
        for (const auto& [algorithm, key] : device->fallback_keys) {
            if (!key.used) types.push_back(algorithm);
        }
    }
    return types;
}

std::optional<std::pair<std::string, json::value>> server_model::claim_key(
    const std::string& user_id, const std::string& device_id, std::string_view algorithm) {
    device_record* device = find_device(user_id, device_id);
    if (!device) return std::nullopt;
    auto& keys = device->one_time_keys;
    const auto oldest = std::find_if(keys.begin(), keys.end(), [&](const one_time_key& k) {
        return algorithm_of(k.key_id) == algorithm;
    });
    if (oldest != keys.end()) {
        device->claimed_one_time_keys.push_back(*oldest);
        std::pair<std::string, json::value> claimed{std::move(oldest->key_id),
                                                    std::move(oldest->key)};
        keys.erase(oldest);
        device->last_claimed_at = advance();
        return claimed;
    }
    const auto fallback = device->fallback_keys.find(algorithm);
    if (fallback == device->fallback_keys.end()) return std::nullopt;
    if (!fallback->second.used) {
        fallback->second.used = true;
        for (auto& ever : device->fallback_keys_ever) {
            if (ever.key_id == fallback->second.key_id) ever.used = true;
        }
        device->last_claimed_at = advance();
    }
    return std::pair{fallback->second.key_id, fallback->second.key};
}

json::value server_model::served_device_keys(std::string_view user_id,
                                             std::string_view device_id) const {
    const device_record* device = find_device(user_id, device_id);
    if (!device || !device->keys) return nullptr;
    json::value served = *device->keys;
    if (!served.is_object()) return served;
    merge_signatures(served, device->added_signatures);
    // Synapse replaces whatever `unsigned` was uploaded with its own.
    json::object unsigned_info;
    if (!device->display_name.empty()) {
        unsigned_info["device_display_name"] = device->display_name;
    }
    served["unsigned"] = std::move(unsigned_info);
    return served;
}

// ---- cross-signing ----

void server_model::set_cross_signing_keys(const std::string& user_id,
                                          std::optional<json::value> master,
                                          std::optional<json::value> self_signing,
                                          std::optional<json::value> user_signing,
                                          const std::string& by_device) {
    user_record* user = find_user(user_id);
    if (!user) throw std::invalid_argument("unknown user " + user_id);
    // A new key starts without the signatures the old one collected.
    auto replace = [](std::optional<cross_signing_key_record>& slot,
                      std::optional<json::value>& key) {
        if (!key || (slot && slot->key == *key)) return false;
        slot = cross_signing_key_record{.key = std::move(*key), .added_signatures = {}};
        return true;
    };
    const bool master_changed = replace(user->master_key, master);
    const bool self_signing_changed = replace(user->self_signing_key, self_signing);
    const bool user_signing_changed = replace(user->user_signing_key, user_signing);
    if (master_changed || self_signing_changed) {
        announce_device_change(user_id, by_device);
    } else if (user_signing_changed) {
        announce_device_change(user_id, by_device, user_id);
    }
}

json::value server_model::served_cross_signing_key(const cross_signing_key_record& key,
                                                   std::string_view owner_id,
                                                   std::optional<std::string_view> viewer) {
    json::value served = key.key;
    json::object visible;
    for (const auto& [signer, by_key] : key.added_signatures) {
        if (!viewer || signer == owner_id || signer == *viewer) visible.emplace(signer, by_key);
    }
    merge_signatures(served, visible);
    return served;
}

void server_model::add_device_signature(const std::string& user_id, const std::string& device_id,
                                        const std::string& signer, const std::string& key_id,
                                        const std::string& signature,
                                        const std::string& by_device) {
    device_record* device = find_device(user_id, device_id);
    if (!device) return;
    device->added_signatures[signer][key_id] = signature;
    announce_device_change(user_id, by_device);
}

void server_model::add_master_key_signature(const std::string& user_id, const std::string& signer,
                                            const std::string& key_id, const std::string& signature,
                                            const std::string& by_device) {
    user_record* user = find_user(user_id);
    if (!user || !user->master_key) return;
    user->master_key->added_signatures[signer][key_id] = signature;
    // Someone else's signature on a master key is the signer's business only.
    announce_device_change(user_id, by_device, signer == user_id ? std::string{} : signer);
}

// ---- rooms ----

std::string server_model::create_room(const std::string& creator, bool encrypted) {
    std::string room_id = "!" + random_string(18, letters) + ":" + server_name_;
    room_record& room = rooms_[room_id];
    room.room_id = room_id;
    room.creator = creator;
    append_event(room, "m.room.create", creator,
                 json::object{{"creator", creator}, {"room_version", "10"}}, "");
    set_membership(room_id, creator, membership::join, creator);
    append_event(room, "m.room.join_rules", creator, json::object{{"join_rule", "invite"}}, "");
    if (encrypted) enable_encryption(room_id, creator);
    return room_id;
}

room_record* server_model::find_room(std::string_view room_id) {
    const auto it = rooms_.find(room_id);
    return it == rooms_.end() ? nullptr : &it->second;
}

void server_model::set_membership(const std::string& room_id, const std::string& user_id,
                                  membership m, const std::string& sender) {
    room_record* room = find_room(room_id);
    if (!room) throw std::invalid_argument("unknown room " + room_id);
    if (membership_at(*room, user_id, position_) == m) return;
    append_event(*room, "m.room.member", sender,
                 json::object{{"membership", std::string(to_string(m))}}, user_id);
    room->memberships[user_id].emplace_back(position_, m);
}

void server_model::enable_encryption(const std::string& room_id, const std::string& sender) {
    room_record* room = find_room(room_id);
    if (!room) throw std::invalid_argument("unknown room " + room_id);
    if (room->encrypted_since) return;
    append_event(*room, "m.room.encryption", sender,
                 json::object{{"algorithm", "m.megolm.v1.aes-sha2"},
                              {"rotation_period_ms", 604800000},
                              {"rotation_period_msgs", 100}},
                 "");
    room->encrypted_since = position_;
}

std::optional<membership> server_model::membership_at(const room_record& room,
                                                      std::string_view user_id,
                                                      stream_position at) {
    const auto it = room.memberships.find(user_id);
    if (it == room.memberships.end()) return std::nullopt;
    std::optional<membership> result;
    for (const auto& [position, m] : it->second) {
        if (position > at) break;
        result = m;
    }
    return result;
}

stream_position server_model::membership_since(const room_record& room, std::string_view user_id,
                                               stream_position at) {
    const auto it = room.memberships.find(user_id);
    if (it == room.memberships.end()) return 0;
    stream_position since = 0;
    for (const auto& [position, m] : it->second) {
        if (position > at) break;
        since = position;
    }
    return since;
}

bool server_model::is_encrypted_at(const room_record& room, stream_position at) {
    return room.encrypted_since && *room.encrypted_since <= at;
}

std::set<std::string> server_model::encrypted_room_peers(std::string_view user_id,
                                                         stream_position at) const {
    std::set<std::string> peers;
    for (const auto& [room_id, room] : rooms_) {
        if (!is_encrypted_at(room, at) || !is_member(membership_at(room, user_id, at))) continue;
        for (const auto& [member, history] : room.memberships) {
            if (member != user_id && is_member(membership_at(room, member, at))) {
                peers.insert(member);
            }
        }
    }
    return peers;
}

device_list_delta server_model::device_lists(const std::string& user_id,
                                             const std::string& device_id, stream_position from,
                                             stream_position to) const {
    device_list_delta delta;
    const std::set<std::string> peers_now = encrypted_room_peers(user_id, to);
    for (const auto& change : device_changes_) {
        if (change.position <= from) continue;
        if (change.position > to) break;
        if (change.user_id == user_id) {
            if (change.by_device != device_id) delta.changed.insert(user_id);
        } else if (!change.only_for.empty()) {
            if (change.only_for == user_id) delta.changed.insert(change.user_id);
        } else if (peers_now.contains(change.user_id)) {
            delta.changed.insert(change.user_id);
        }
    }
    // Newly sharing an encrypted room: someone joined or was invited, the user joined, or the
    // room turned encrypted. Their device list may have changed while we shared nothing.
    for (const auto& [room_id, room] : rooms_) {
        if (!is_encrypted_at(room, to) || !is_member(membership_at(room, user_id, to))) continue;
        const bool shared_before =
            is_encrypted_at(room, from) && is_member(membership_at(room, user_id, from));
        for (const auto& [member, history] : room.memberships) {
            if (member == user_id || !is_member(membership_at(room, member, to))) continue;
            if (!shared_before || !is_member(membership_at(room, member, from))) {
                delta.changed.insert(member);
            }
        }
    }
    for (const auto& peer : encrypted_room_peers(user_id, from)) {
        if (!peers_now.contains(peer)) delta.left.insert(peer);
    }
    return delta;
}

// ---- to-device ----

void server_model::send_to_device(const std::string& sender, const std::string& user_id,
                                  const std::string& device_id, const std::string& type,
                                  const json::value& content) {
    user_record* user = find_user(user_id);
    if (!user) return;
    for (auto& [id, device] : user->devices) {
        if (device_id != "*" && device_id != id) continue;
        device.inbox.push_back(
            {advance(), json::object{{"sender", sender}, {"type", type}, {"content", content}}});
    }
}

bool server_model::seen_transaction(const std::string& access_token, const std::string& txn_id) {
    return !transactions_.emplace(access_token, txn_id).second;
}

// ---- federation ----

void server_model::set_server_reachable(const std::string& server_name, bool reachable) {
    if (reachable) {
        unreachable_servers_.erase(server_name);
    } else {
        unreachable_servers_.insert(server_name);
    }
}

bool server_model::is_reachable(std::string_view server_name) const {
    return !unreachable_servers_.contains(server_name);
}

// ---- user-interactive auth ----

std::string server_model::start_uia_session(const std::string& user_id) {
    std::string session = random_string(24, letters);
    uia_sessions_[session] = user_id;
    return session;
}

const std::string* server_model::find_uia_session(std::string_view session) const {
    const auto it = uia_sessions_.find(session);
    return it == uia_sessions_.end() ? nullptr : &it->second;
}

void server_model::finish_uia_session(std::string_view session) {
    if (const auto it = uia_sessions_.find(session); it != uia_sessions_.end()) {
        uia_sessions_.erase(it);
    }
}

std::string server_model::random_string(std::size_t length, std::string_view alphabet) {
    std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
    std::string s(length, ' ');
    for (auto& c : s) {
        c = alphabet[pick(random_)];
    }
    return s;
}

// ---- private ----

void server_model::announce_device_change(const std::string& user_id, const std::string& by_device,
                                          const std::string& only_for) {
    device_changes_.push_back({advance(), user_id, by_device, only_for});
}

void server_model::append_event(room_record& room, const std::string& type,
                                const std::string& sender, json::value content,
                                std::optional<std::string> state_key) {
    const stream_position at = advance();
    json::object event{{"type", type},
                       {"sender", sender},
                       {"content", std::move(content)},
                       {"event_id", "$" + random_string(43, alphanumerics)},
                       {"origin_server_ts", now_ms()}};
    if (state_key) event["state_key"] = *state_key;
    room.events.push_back({.position = at,
                           .event = std::move(event),
                           .is_state = state_key.has_value(),
                           .type = type,
                           .state_key = state_key.value_or("")});
}

}  // namespace devlist::testing
