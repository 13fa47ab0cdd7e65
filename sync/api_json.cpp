// include/devlist/json.hpp: the documents of the socket API (README, "Socket API").
#include "sync/api_json.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string_view>

#include "crypto/canonical_writer.hpp"

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

std::string_view sync::name_of(key_usage u) {
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

// Writes one object's members straight into `out` (the closing brace when it goes out of scope),
// for the answers asked for most (a user's devices, a device by key): building them as json::value
// trees first cost about twice the SQLite reads behind them. Members must come in canonical order
// (keys sorted by byte), and keys are literals that need no escaping; asserted in debug builds.
class object_writer {
  public:
    explicit object_writer(std::string& out) : out_(out) { out_ += '{'; }
    object_writer(const object_writer&) = delete;
    object_writer& operator=(const object_writer&) = delete;
    ~object_writer() { out_ += '}'; }

    // The member's key and colon; its value is the caller's to write.
    std::string& member(std::string_view key) {
        assert((first_ || last_key_ < key) && "members out of canonical order");
        if (!first_) out_ += ',';
        first_ = false;
#ifndef NDEBUG
        last_key_ = key;
#endif
        out_ += '"';
        out_ += key;
        out_ += "\":";
        return out_;
    }
    void string(std::string_view key, std::string_view v) {
        json::append_canonical_string(v, member(key));
    }
    void integer(std::string_view key, std::int64_t v) {
        json::append_canonical_integer(v, member(key));
    }
    void boolean(std::string_view key, bool v) {
        member(key) += v ? "true" : "false";
    }
    void nullable_string(std::string_view key, const std::optional<std::string>& v) {
        if (v)
            string(key, *v);
        else
            member(key) += "null";
    }
    void nullable_integer(std::string_view key, const std::optional<std::int64_t>& v) {
        if (v)
            integer(key, *v);
        else
            member(key) += "null";
    }

  private:
    std::string& out_;
    bool first_ = true;
#ifndef NDEBUG
    std::string_view last_key_;
#endif
};

// A device's members in canonical order; with_owner adds user_id, deleted and deleted_at (a
// device listed under its user goes without them: the answer names the user once).
void append_device(const device& d, bool with_owner, std::string& out) {
    object_writer o(out);
    o.boolean("cross_signed", d.cross_signed);
    o.string("curve25519", d.curve25519);
    if (with_owner) {
        o.boolean("deleted", d.deleted_at.has_value());
        o.nullable_integer("deleted_at", d.deleted_at);
    }
    o.string("device_id", d.device_id);
    o.nullable_string("display_name", d.display_name);
    o.string("ed25519", d.ed25519);
    o.integer("first_seen", d.first_seen);
    o.integer("last_seen", d.last_seen);
    if (with_owner) o.string("user_id", d.user_id);
}

void append_reasons(const tracking_reasons& r, std::string& out) {
    out += '[';
    const std::size_t start = out.size();
    auto add = [&](std::string_view name) {
        if (out.size() != start) out += ',';
        out += '"';
        out += name;
        out += '"';
    };
    if (r.own) add("own");
    if (r.encrypted_room) add("encrypted_room");
    if (r.explicit_request) add("explicit");
    out += ']';
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
    // Cross-signing keys by usage name; a usage given twice keeps the last, as an object would.
    std::vector<const cross_signing_key*> keys;
    for (const auto& c : u.cross_signing_keys) {
        auto same = std::find_if(keys.begin(), keys.end(),
                                 [&](const cross_signing_key* k) { return k->usage == c.usage; });
        if (same != keys.end())
            *same = &c;
        else
            keys.push_back(&c);
    }
    std::sort(keys.begin(), keys.end(), [](const cross_signing_key* a, const cross_signing_key* b) {
        return name_of(a->usage) < name_of(b->usage);
    });

    std::string out;
    out.reserve(256 + u.devices.size() * 320);
    {
        object_writer o(out);
        {
            object_writer by_usage(o.member("cross_signing_keys"));
            for (const cross_signing_key* c : keys) {
                object_writer k(by_usage.member(name_of(c->usage)));
                k.integer("first_seen", c->first_seen);
                k.integer("last_seen", c->last_seen);
                k.string("public_key", c->public_key);
                k.boolean("verified", c->verified);
            }
        }
        std::string& list = o.member("devices");
        list += '[';
        for (std::size_t i = 0; i < u.devices.size(); ++i) {
            if (i != 0) list += ',';
            append_device(u.devices[i], false, list);
        }
        list += ']';
        o.nullable_integer("last_refreshed_at", u.last_refreshed_at);
        o.boolean("outdated", u.outdated);
        if (u.tracked)
            append_reasons(u.reasons, o.member("reasons"));
        else
            o.member("reasons") += "[]";
        o.boolean("tracked", u.tracked);
        o.string("user_id", u.user_id);
    }  // closes the object
    return out;
}

std::string to_json(const device& d) {
    std::string out;
    out.reserve(384);
    append_device(d, true, out);
    return out;
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
