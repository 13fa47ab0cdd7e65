// include/devlist/json.hpp: the documents of the socket API (README, "Socket API").
#include "sync/api_json.hpp"

#include <cstdint>
#include <optional>
#include <string_view>

namespace devlist {

std::string_view sync::name_of(engine_phase p) {
    switch (p) {
        case engine_phase::starting:
            return "starting";
        case engine_phase::syncing:
            return "syncing";
        case engine_phase::backing_off:
            return "backing_off";
        case engine_phase::stopped:
            return "stopped";
    }
    return "starting";
}

std::string_view sync::name_of(cross_signing_state s) {
    switch (s) {
        case cross_signing_state::off:
            return "off";
        case cross_signing_state::pending:
            return "pending";
        case cross_signing_state::uploaded:
            return "uploaded";
        case cross_signing_state::managed_elsewhere:
            return "managed_elsewhere";
        case cross_signing_state::failed:
            return "failed";
    }
    return "off";
}

namespace {

using sync::name_of;

template <class T>
json::value nullable(const std::optional<T>& v) {
    if (!v) return nullptr;
    return json::value(*v);
}

json::value nonempty(const std::string& s) {
    if (s.empty()) return nullptr;
    return json::value(s);
}

// Counters are unsigned; JSON integers stop at 2^53-1, far beyond any count.
json::value count(std::uint64_t n) {
    return json::value(static_cast<std::int64_t>(n));
}

std::string_view name_of(key_usage u) {
    switch (u) {
        case key_usage::master:
            return "master";
        case key_usage::self_signing:
            return "self_signing";
        case key_usage::user_signing:
            return "user_signing";
    }
    return "master";
}

// A device as listed under its user: without user_id, which the answer says once.
json::object listed_device(const device& d) {
    return json::object{
        {"device_id", d.device_id},       {"ed25519", d.ed25519},
        {"curve25519", d.curve25519},     {"display_name", nullable(d.display_name)},
        {"cross_signed", d.cross_signed}, {"first_seen", d.first_seen},
        {"last_seen", d.last_seen}};
}

// One event as {"at", "cursor", "type", "data"}: the data is spliced as stored, since a
// to-device event's content may hold what the canonical writer refuses (floats), and consumers
// want it verbatim.
void append_event(const event& e, std::string& out) {
    json::value head = json::object{{"cursor", e.cursor}, {"type", e.type}, {"at", e.at}};
    json::append_canonical(head, out);
    out.pop_back();
    out += ",\"data\":";
    out += e.data_json.empty() ? std::string_view("null") : std::string_view(e.data_json);
    out += '}';
}

}  // namespace

namespace sync {

json::value reasons_value(const tracking_reasons& r) {
    json::array a;
    if (r.own) a.emplace_back("own");
    if (r.encrypted_room) a.emplace_back("encrypted_room");
    if (r.explicit_request) a.emplace_back("explicit");
    return a;
}

}  // namespace sync

std::string to_json(const status& s) {
    const auto& k = s.keys;
    json::object keys{
        {"identity_uploaded", k.identity_uploaded},
        {"ed25519", k.ed25519},
        {"curve25519", k.curve25519},
        {"one_time_keys", json::object{{"on_server", k.one_time_keys_on_server},
                                       {"target", k.one_time_key_target},
                                       {"pending", k.one_time_keys_pending},
                                       {"uploaded", count(k.one_time_keys_uploaded)},
                                       {"conflicts", count(k.one_time_key_conflicts)}}},
        {"fallback", json::object{{"supported", k.fallback_supported},
                                  {"key_id", nullable(k.fallback_key_id)},
                                  {"published", k.fallback_published}}},
        {"cross_signing", name_of(k.cross_signing)},
        {"uploads", count(k.uploads)},
        {"upload_failures", count(k.upload_failures)},
        {"last_error", nonempty(k.last_error)},
    };
    json::object o{
        {"version", s.version},
        {"user_id", s.user_id},
        {"device_id", nonempty(s.device_id)},
        {"phase", name_of(s.phase)},
        {"sync", json::object{{"next_batch", nullable(s.next_batch)},
                              {"last_sync_at", nullable(s.last_sync_at)},
                              {"syncs", count(s.syncs)},
                              {"failures", count(s.sync_failures)}}},
        {"tracked", s.tracked},
        {"outdated", s.outdated},
        {"users_in_flight", s.users_in_flight},
        {"queries", count(s.queries)},
        {"query_failures", count(s.query_failures)},
        {"devices_rejected", count(s.devices_rejected)},
        {"keys", std::move(keys)},
        {"last_event_cursor", s.last_event_cursor},
        {"last_error", nonempty(s.last_error)},
    };
    return json::to_canonical(o);
}

std::string to_json(const user_devices& u) {
    json::array list;
    for (const auto& d : u.devices)
        list.push_back(listed_device(d));
    json::object keys;
    for (const auto& c : u.cross_signing_keys) {
        keys[std::string(name_of(c.usage))] = json::object{{"public_key", c.public_key},
                                                           {"verified", c.verified},
                                                           {"first_seen", c.first_seen},
                                                           {"last_seen", c.last_seen}};
    }
    json::object o{
        {"user_id", u.user_id},
        {"tracked", u.tracked},
        {"outdated", u.outdated},
        {"reasons", u.tracked ? sync::reasons_value(u.reasons) : json::value(json::array{})},
        {"last_refreshed_at", nullable(u.last_refreshed_at)},
        {"devices", std::move(list)},
        {"cross_signing_keys", std::move(keys)},
    };
    return json::to_canonical(o);
}

std::string to_json(const device& d) {
    json::object o = listed_device(d);
    o["user_id"] = d.user_id;
    o["deleted"] = d.deleted_at.has_value();
    o["deleted_at"] = nullable(d.deleted_at);
    return json::to_canonical(o);
}

std::string to_json(const std::vector<tracked_user>& users) {
    json::array list;
    for (const auto& u : users) {
        list.push_back(json::object{{"user_id", u.user_id},
                                    {"outdated", u.outdated},
                                    {"reasons", sync::reasons_value(u.reasons)},
                                    {"last_refreshed_at", nullable(u.last_refreshed_at)}});
    }
    return json::to_canonical(json::object{{"users", std::move(list)}});
}

std::string to_json(const event_batch& batch) {
    std::string body = "{\"events\":[";
    for (std::size_t i = 0; i < batch.events.size(); ++i) {
        if (i) body += ',';
        append_event(batch.events[i], body);
    }
    body += "],\"next\":";
    body += std::to_string(batch.next);
    body += '}';
    return body;
}

std::string to_json(const one_time_key& key) {
    return json::to_canonical(json::object{
        {"key_id", key.key_id}, {"public_key", key.public_key}, {"private_key", key.private_key}});
}

std::string to_json(const std::vector<fallback_key>& keys) {
    json::array list;
    for (const auto& k : keys) {
        list.push_back(json::object{{"key_id", k.key_id},
                                    {"public_key", k.public_key},
                                    {"private_key", k.private_key},
                                    {"current", k.current},
                                    {"published", k.published},
                                    {"used_at", nullable(k.used_at)},
                                    {"erase_after", nullable(k.erase_after)}});
    }
    return json::to_canonical(json::object{{"keys", std::move(list)}});
}

}  // namespace devlist
