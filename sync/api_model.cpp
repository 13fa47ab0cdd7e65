#include "sync/api_model.hpp"

#include <algorithm>
#include <utility>

namespace devlist::sync {

namespace {

devlist::key_usage to_public(storage::key_usage u) {
    switch (u) {
        case storage::key_usage::master:
            return devlist::key_usage::master;
        case storage::key_usage::self_signing:
            return devlist::key_usage::self_signing;
        case storage::key_usage::user_signing:
            return devlist::key_usage::user_signing;
    }
    return devlist::key_usage::master;
}

}  // namespace

devlist::engine_phase to_public(engine_phase p) {
    switch (p) {
        case engine_phase::starting:
            return devlist::engine_phase::starting;
        case engine_phase::syncing:
            return devlist::engine_phase::syncing;
        case engine_phase::backing_off:
            return devlist::engine_phase::backing_off;
        case engine_phase::stopped:
            return devlist::engine_phase::stopped;
    }
    return devlist::engine_phase::starting;
}

devlist::cross_signing_state to_public(cross_signing_state s) {
    switch (s) {
        case cross_signing_state::off:
            return devlist::cross_signing_state::off;
        case cross_signing_state::pending:
            return devlist::cross_signing_state::pending;
        case cross_signing_state::uploaded:
            return devlist::cross_signing_state::uploaded;
        case cross_signing_state::managed_elsewhere:
            return devlist::cross_signing_state::managed_elsewhere;
        case cross_signing_state::failed:
            return devlist::cross_signing_state::failed;
    }
    return devlist::cross_signing_state::off;
}

bool is_valid_consumer_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

devlist::device to_public(const storage::device_record& d) {
    return {d.user_id,      d.device_id,  d.ed25519,   d.curve25519, d.display_name,
            d.cross_signed, d.first_seen, d.last_seen, d.deleted_at};
}

devlist::tracking_reasons to_public(const storage::tracking_reasons& r) {
    return {r.own, r.encrypted_room, r.explicit_request};
}

devlist::tracked_user to_public(const storage::tracked_user& u) {
    return {u.user_id, u.outdated, to_public(u.reasons), u.last_refreshed_at};
}

devlist::event to_public(const storage::outbox_event& e) {
    return {e.cursor, e.type, e.at, e.payload_json};
}

devlist::one_time_key to_public(const private_key_handout& k) {
    return {k.key_id, k.public_key, k.private_key};
}

devlist::fallback_key to_public(const fallback_key_handout& k) {
    return {k.key.key_id, k.key.public_key, k.key.private_key, k.current,
            k.published,  k.used_at,        k.erase_after};
}

devlist::status to_public(const engine_status& s, std::int64_t last_event_cursor,
                          std::string version) {
    const auto& k = s.keys;
    devlist::status out;
    out.version = std::move(version);
    out.user_id = s.user_id;
    out.device_id = s.device_id;
    out.phase = to_public(s.phase);
    out.next_batch = s.next_batch;
    out.last_sync_at = s.last_sync_at;
    out.syncs = s.syncs;
    out.sync_failures = s.sync_failures;
    out.tracked = s.tracked;
    out.outdated = s.outdated;
    out.users_in_flight = s.users_in_flight;
    out.queries = s.queries;
    out.query_failures = s.query_failures;
    out.devices_rejected = s.devices_rejected;
    out.keys.identity_uploaded = k.identity_uploaded;
    out.keys.ed25519 = k.ed25519;
    out.keys.curve25519 = k.curve25519;
    out.keys.one_time_keys_on_server = k.one_time_keys_on_server;
    out.keys.one_time_key_target = k.one_time_key_target;
    out.keys.one_time_keys_pending = k.one_time_keys_pending;
    out.keys.one_time_keys_uploaded = k.one_time_keys_uploaded;
    out.keys.one_time_key_conflicts = k.one_time_key_conflicts;
    out.keys.fallback_supported = k.fallback_supported;
    out.keys.fallback_key_id = k.fallback_key_id;
    out.keys.fallback_published = k.fallback_published;
    out.keys.cross_signing = to_public(k.cross_signing);
    out.keys.uploads = k.uploads;
    out.keys.upload_failures = k.upload_failures;
    out.keys.last_error = k.last_key_error;
    out.last_event_cursor = last_event_cursor;
    out.last_error = s.last_error;
    return out;
}

result<devlist::user_devices> read_user_devices(storage::store& store, const std::string& user_id) {
    // One snapshot for the three reads: they agree with each other, and SQLite locks once.
    auto snapshot = store.begin_read();
    if (!snapshot) return snapshot.error();
    auto tracked = store.tracking().find(user_id);
    if (!tracked) return tracked.error();
    auto devices = store.devices().devices_of(user_id);
    if (!devices) return devices.error();
    auto cross = store.devices().cross_signing_keys_of(user_id);
    if (!cross) return cross.error();
    devlist::user_devices out;
    out.user_id = user_id;
    out.tracked = tracked->has_value();
    out.outdated = !*tracked || (*tracked)->outdated;
    if (*tracked) {
        out.reasons = to_public((*tracked)->reasons);
        out.last_refreshed_at = (*tracked)->last_refreshed_at;
    }
    out.devices.reserve(devices->size());
    for (const auto& d : *devices)
        out.devices.push_back(to_public(d));
    for (const auto& c : *cross) {
        out.cross_signing_keys.push_back(
            {to_public(c.usage), c.public_key, c.verified, c.first_seen, c.last_seen});
    }
    return out;
}

boost::asio::awaitable<result<devlist::user_devices>> read_fresh_user_devices(
    sync_engine& engine, storage::store& store, std::string user_id,
    std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        auto t = store.tracking().find(user_id);
        if (!t) co_return t.error();
        if (!*t || !(*t)->outdated || std::chrono::steady_clock::now() >= deadline) break;
        co_await engine.wait_for_change(deadline);
    }
    co_return read_user_devices(store, user_id);
}

result<std::optional<devlist::device>> read_device_by_curve25519(storage::store& store,
                                                                 const std::string& key) {
    auto d = store.devices().device_by_curve25519(key);
    if (!d) return d.error();
    if (!*d) return std::optional<devlist::device>{};
    return std::optional<devlist::device>(to_public(**d));
}

result<std::vector<devlist::tracked_user>> read_tracked_users(storage::store& store) {
    auto users = store.tracking().load_tracked_users();
    if (!users) return users.error();
    std::vector<devlist::tracked_user> out;
    out.reserve(users->size());
    for (const auto& u : *users)
        out.push_back(to_public(u));
    return out;
}

boost::asio::awaitable<result<devlist::event_batch>> read_events(
    sync_engine& engine, storage::store& store, std::int64_t after, std::size_t limit,
    std::chrono::steady_clock::time_point deadline) {
    std::vector<storage::outbox_event> found;
    for (;;) {
        auto read = store.outbox().read_after(after, limit);
        if (!read) co_return read.error();
        found = std::move(*read);
        if (!found.empty() || std::chrono::steady_clock::now() >= deadline) break;
        co_await engine.wait_for_change(deadline);
    }
    devlist::event_batch batch;
    batch.next = found.empty() ? after : found.back().cursor;
    batch.events.reserve(found.size());
    for (const auto& e : found)
        batch.events.push_back(to_public(e));
    co_return batch;
}

}  // namespace devlist::sync
