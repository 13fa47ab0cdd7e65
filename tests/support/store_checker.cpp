#include "tests/support/store_checker.hpp"

#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"
#include "sync/own_keys.hpp"
#include "tests/homeserver/client_api.hpp"

#include <algorithm>
#include <map>
#include <sstream>
#include <utility>

namespace devlist::test {

namespace {

using testing::cross_signing_key_kind;

std::string_view server_of(std::string_view user_id) {
    const auto colon = user_id.find(':');
    return colon == std::string_view::npos ? std::string_view{} : user_id.substr(colon + 1);
}

// "signed_curve25519:AAAAAQ" → "AAAAAQ": the store keeps the part after the algorithm.
std::string bare_key_id(std::string_view full_id) {
    const auto colon = full_id.find(':');
    return std::string(colon == std::string_view::npos ? full_id : full_id.substr(colon + 1));
}

std::string string_member(const json::value& object, const std::string& name) {
    const json::value* v = object.is_object() ? object.find(name) : nullptr;
    return v && v->is_string() ? v->as_string() : std::string{};
}

// The one public key of a cross-signing key object ({"keys": {"ed25519:<key>": "<key>"}}).
std::string cross_signing_public_key(const json::value& key) {
    const json::value* keys = key.is_object() ? key.find("keys") : nullptr;
    if (!keys || !keys->is_object() || keys->as_object().empty()) return {};
    const auto& [id, value] = *keys->as_object().begin();
    return value.is_string() ? value.as_string() : std::string{};
}

std::string device_key(const json::value& device, const std::string& algorithm,
                       const std::string& device_id) {
    const json::value* keys = device.is_object() ? device.find("keys") : nullptr;
    return keys ? string_member(*keys, algorithm + ":" + device_id) : std::string{};
}

// The same event: a consumer may see the payload re-encoded (the socket API writes it
// canonically), so equal JSON counts as equal.
bool same_event(const storage::outbox_event& a, const storage::outbox_event& b) {
    if (a.type != b.type) return false;
    if (a.payload_json == b.payload_json) return true;
    auto x = json::parse(a.payload_json);
    auto y = json::parse(b.payload_json);
    return x && y && *x == *y;
}

template <class T>
std::optional<T> must(result<T> r, const std::string& what, problem_list& problems) {
    if (!r) {
        problems.push_back("could not read " + what + ": " + r.error().message());
        return std::nullopt;
    }
    return std::move(*r);
}

class checker {
  public:
    checker(storage::store& store, const testing::test_homeserver& hs,
            const store_checker_options& options)
        : store_(store), hs_(hs), o_(options) {}

    problem_list run() {
        check_sync_position();
        check_tracked_users();
        check_own_identity();
        check_one_time_keys();
        check_fallback_keys();
        check_own_cross_signing();
        check_outbox();
        if (o_.consumer) check_consumer(*o_.consumer);
        return std::move(problems_);
    }

  private:
    void problem(std::string text) { problems_.push_back(std::move(text)); }

    // ---- the sync position and the tracked set ----

    void check_sync_position() {
        auto state = must(store_.sync().load_sync_state(), "the sync state", problems_);
        if (!state || !state->next_batch) return;
        auto position = testing::parse_sync_token(*state->next_batch);
        if (!position) {
            problem("stored next_batch '" + *state->next_batch +
                    "' is not a token of this homeserver");
            return;
        }
        if (*position > hs_.stream_position()) {
            problem("stored next_batch " + *state->next_batch + " is ahead of the homeserver (s" +
                    std::to_string(hs_.stream_position()) + ")");
        }
        synced_to_ = *position;
    }

    void check_tracked_users() {
        auto users = must(store_.tracking().load_tracked_users(), "the tracked users", problems_);
        if (!users) return;
        std::set<std::string> tracked, explicitly;
        for (const auto& u : *users) {
            tracked.insert(u.user_id);
            if (u.reasons.explicit_request) explicitly.insert(u.user_id);
        }
        if (synced_to_) {
            // Before the first batch committed, even the own user may be missing.
            if (!tracked.contains(o_.user_id)) {
                problem("the own user " + o_.user_id + " is not tracked");
            }
            std::set<std::string> expected = hs_.encrypted_room_peers(o_.user_id, *synced_to_);
            expected.insert(o_.user_id);
            expected.insert(explicitly.begin(), explicitly.end());
            for (const auto& u : expected) {
                if (!tracked.contains(u)) {
                    problem(u + " shares an encrypted room with " + o_.user_id + " at s" +
                            std::to_string(*synced_to_) + " but is not tracked");
                }
            }
            for (const auto& u : tracked) {
                if (!expected.contains(u)) {
                    problem(u + " is tracked but shares no encrypted room with " + o_.user_id +
                            " at s" + std::to_string(*synced_to_) + " and was not asked for");
                }
            }
            changed_later_ = hs_.device_lists_changed_since(o_.user_id, o_.device_id, *synced_to_);
        }
        for (const auto& u : *users)
            check_user(u);
    }

    void check_user(const storage::tracked_user& user) {
        const std::string& id = user.user_id;
        const bool reachable = !o_.unreachable_servers.contains(std::string(server_of(id)));
        if (user.outdated) {
            if (o_.expect_all_fresh && reachable) {
                problem(id + " is still outdated after the run converged");
            }
            return;  // an outdated user may lag behind the server: it will be asked again
        }
        // A change after the stored next_batch is not known yet; the next /sync brings it.
        if (changed_later_.contains(id)) return;
        if (!user.last_refreshed_at && id != o_.user_id) {
            problem(id + " is fresh but its keys were never fetched");
        }
        auto stored = must(store_.devices().devices_of(id), "the devices of " + id, problems_);
        if (!stored) return;
        auto served = hs_.served_devices(id).value_or(std::map<std::string, json::value>{});
        // Devices devlistd refused for a reason it recorded (a changed ed25519 key, ...) are
        // allowed to differ: refusing them is the point.
        std::set<std::string> refused;
        if (auto events = store_.security().recent_of_user(id, 10000)) {
            for (const auto& e : *events) {
                if (e.device_id) refused.insert(*e.device_id);
            }
        }
        std::map<std::string, const storage::device_record*> by_id;
        for (const auto& d : *stored)
            by_id.emplace(d.device_id, &d);
        for (const auto& [device_id, keys] : served) {
            if (refused.contains(device_id)) continue;
            const auto mine = by_id.find(device_id);
            if (mine == by_id.end()) {
                // The own device appears only once it was uploaded before the own user was
                // queried (the server does not announce a device to itself).
                if (id == o_.user_id && device_id == o_.device_id) continue;
                problem(id + " is fresh but lacks device " + device_id + " the server serves");
                continue;
            }
            for (const char* algorithm : {"ed25519", "curve25519"}) {
                const std::string theirs = device_key(keys, algorithm, device_id);
                const std::string ours = std::string(algorithm) == "ed25519"
                                             ? mine->second->ed25519
                                             : mine->second->curve25519;
                if (theirs != ours) {
                    problem(id + " is fresh but the " + algorithm + " key of device " + device_id +
                            " is '" + ours + "' where the server serves '" + theirs + "'");
                }
            }
        }
        for (const auto& [device_id, record] : by_id) {
            if (!served.contains(device_id) && !refused.contains(device_id)) {
                problem(id + " is fresh but keeps device " + device_id +
                        " the server no longer serves");
            }
        }
        check_cross_signing_of(id);
    }

    void check_cross_signing_of(const std::string& id) {
        // The own device's own uploads are never announced to it: after a crash between the
        // cross-signing upload and its mark (keys still pending) the own user may lag; the
        // restart uploads again and marks the own user outdated.
        if (id == o_.user_id) {
            auto own = store_.own_cross_signing().load();
            if (own && std::any_of(own->begin(), own->end(), [](const auto& k) {
                    return k.state == storage::upload_state::pending;
                })) {
                return;
            }
        }
        auto stored = must(store_.devices().cross_signing_keys_of(id),
                           "cross-signing keys of " + id, problems_);
        if (!stored) return;
        const std::pair<cross_signing_key_kind, storage::key_usage> kinds[] = {
            {cross_signing_key_kind::master, storage::key_usage::master},
            {cross_signing_key_kind::self_signing, storage::key_usage::self_signing}};
        for (const auto& [kind, usage] : kinds) {
            const auto served = hs_.cross_signing_key(id, kind);
            const auto mine = std::find_if(stored->begin(), stored->end(),
                                           [u = usage](const auto& k) { return k.usage == u; });
            const std::string name =
                usage == storage::key_usage::master ? "master key" : "self-signing key";
            if (!served) {
                if (mine != stored->end()) {
                    problem(id + " is fresh but keeps a " + name + " the server does not serve");
                }
                continue;
            }
            const std::string theirs = cross_signing_public_key(*served);
            if (mine == stored->end()) {
                problem(id + " is fresh but lacks the " + name + " " + theirs);
            } else if (mine->public_key != theirs) {
                problem(id + " is fresh but its " + name + " is " + mine->public_key +
                        " where the server serves " + theirs);
            }
        }
    }

    // ---- the own device ----

    void check_own_identity() {
        auto identity = must(store_.account().load(), "the own identity", problems_);
        if (!identity || !*identity) return;
        const auto uploaded = hs_.uploaded_device_keys(o_.user_id, o_.device_id);
        if (!uploaded) {
            if ((*identity)->device_keys_uploaded) {
                problem("the store says the device keys were uploaded; the server has none");
            }
            return;
        }
        if (device_key(*uploaded, "ed25519", o_.device_id) != (*identity)->ed25519_public ||
            device_key(*uploaded, "curve25519", o_.device_id) != (*identity)->curve25519_public) {
            problem("the server holds other identity keys for " + o_.device_id + " than the store");
        }
    }

    // Whether a sealed private part opens and belongs to `public_key`.
    void check_private_part(const storage::sealed_bytes& sealed, std::string_view context,
                            const std::string& public_key, const std::string& what) {
        if (sealed.empty()) {
            problem(what + " has an empty private part");
            return;
        }
        if (!o_.sealing_key) return;
        auto secret = o_.sealing_key->open(sealed, std::string(context) + public_key);
        if (!secret) {
            problem(what + ": the private part does not open: " + secret.error().message());
            return;
        }
        auto pair = crypto::curve25519_key_pair::from_secret(secret->span());
        if (!pair || pair->public_key().to_base64() != public_key) {
            problem(what + ": the private part does not belong to public key " + public_key);
        }
    }

    void check_one_time_keys() {
        history_ = hs_.keys_published_by(o_.user_id, o_.device_id);
        for (const auto& message : history_.refused_conflicts) {
            problem("the server refused an upload of a reused one-time key ID: " + message);
        }
        auto all = must(store_.one_time_keys().all(), "the own one-time keys", problems_);
        if (!all) return;
        std::map<std::string, const storage::one_time_key*> mine;
        std::set<std::string> public_keys;
        std::size_t published = 0;
        for (const auto& k : *all) {
            if (!mine.emplace(k.key_id, &k).second)
                problem("one-time key ID " + k.key_id + " twice");
            if (!public_keys.insert(k.public_key).second) {
                problem("one-time key " + k.public_key + " stored twice");
            }
            if (k.state == storage::key_state::published) ++published;
        }
        const std::set<std::string> claimed(history_.claimed.begin(), history_.claimed.end());
        std::set<std::string> server_ids;
        for (const auto& k : history_.one_time_keys) {
            const std::string id = bare_key_id(k.key_id);
            if (!server_ids.insert(id).second)
                problem("the server holds one-time key ID " + id + " twice");
            const std::string public_key = string_member(k.key, "key");
            const auto found = mine.find(id);
            if (found == mine.end()) {
                // Claimed keys go first when the store prunes beyond its cap.
                if (claimed.contains(k.key_id) && published >= o_.one_time_keys_kept) continue;
                problem(std::string(claimed.contains(k.key_id) ? "claimed" : "published") +
                        " one-time key " + k.key_id + " has no private part in the store");
                continue;
            }
            if (found->second->public_key != public_key) {
                problem("one-time key " + k.key_id + " is " + public_key + " on the server but " +
                        found->second->public_key + " in the store");
                continue;
            }
            check_private_part(found->second->sealed_private, sync::seal_context::one_time_key,
                               public_key, "one-time key " + k.key_id);
        }
        for (const auto& k : *all) {
            if (k.state == storage::key_state::published && !server_ids.contains(k.key_id)) {
                problem("one-time key " + k.key_id +
                        " is marked published but the server never got it");
            }
        }
        one_time_ids_ = std::move(server_ids);
        for (const auto& k : *all)
            one_time_ids_.insert(k.key_id);
    }

    void check_fallback_keys() {
        std::set<std::string> server_ids;
        for (const auto& k : history_.fallback_keys) {
            const std::string id = bare_key_id(k.key_id);
            const std::string public_key = string_member(k.key, "key");
            if (one_time_ids_.contains(id)) {
                problem("key ID " + id + " names a one-time key and fallback key " + public_key);
            }
            if (!server_ids.insert(id).second) {
                // The same key set again is no new use of the ID; another key is.
                const auto first =
                    std::find_if(history_.fallback_keys.begin(), history_.fallback_keys.end(),
                                 [&](const auto& f) { return f.key_id == k.key_id; });
                if (string_member(first->key, "key") != public_key) {
                    problem("fallback key ID " + id + " names two keys on the server");
                }
            }
            auto found = must(store_.fallback_keys().find_by_public_key(public_key),
                              "fallback key " + public_key, problems_);
            if (!found) continue;
            if (!*found) {
                problem(std::string(k.used ? "used" : "published") + " fallback key " + k.key_id +
                        " has no private part in the store");
                continue;
            }
            if ((*found)->key_id != id) {
                problem("fallback key " + public_key + " is " + k.key_id + " on the server but " +
                        (*found)->key_id + " in the store");
            }
            check_private_part((*found)->sealed_private, sync::seal_context::fallback_key,
                               public_key, "fallback key " + k.key_id);
        }
        auto current = must(store_.fallback_keys().current(), "the fallback key", problems_);
        auto previous = must(store_.fallback_keys().previous(), "old fallback keys", problems_);
        if (!current || !previous) return;
        std::vector<storage::fallback_key> stored = std::move(*previous);
        if (*current) stored.push_back(std::move(**current));
        for (const auto& k : stored) {
            if (one_time_ids_.contains(k.key_id)) {
                problem("key ID " + k.key_id + " names both a one-time key and a fallback key");
            }
            if (k.state == storage::key_state::published && !server_ids.contains(k.key_id)) {
                problem("fallback key " + k.key_id +
                        " is marked published but the server never got it");
            }
        }
    }

    void check_own_cross_signing() {
        auto own = must(store_.own_cross_signing().load(), "own cross-signing keys", problems_);
        if (!own) return;
        for (const auto& k : *own) {
            if (k.state != storage::upload_state::uploaded) continue;
            const auto kind = k.usage == storage::key_usage::master ? cross_signing_key_kind::master
                              : k.usage == storage::key_usage::self_signing
                                  ? cross_signing_key_kind::self_signing
                                  : cross_signing_key_kind::user_signing;
            const auto served = hs_.cross_signing_key(o_.user_id, kind);
            if (!served || cross_signing_public_key(*served) != k.public_key) {
                problem("own cross-signing key " + k.public_key +
                        " is marked uploaded but the server " +
                        (served ? "holds " + cross_signing_public_key(*served) : "has none"));
            }
        }
    }

    // ---- events ----

    struct device_announcements {
        int added = 0;
        bool removed_last = false;
    };

    // Device events per (user, device) since each user was last untracked.
    static std::map<std::pair<std::string, std::string>, device_announcements> count_devices(
        const std::vector<storage::outbox_event>& events) {
        std::map<std::pair<std::string, std::string>, device_announcements> counts;
        for (const auto& e : events) {
            auto payload = json::parse(e.payload_json);
            if (!payload) continue;
            const std::string user = string_member(*payload, "user_id");
            if (e.type == storage::outbox_type::user_untracked) {
                std::erase_if(counts, [&](const auto& entry) { return entry.first.first == user; });
                continue;
            }
            const std::pair key{user, string_member(*payload, "device_id")};
            if (e.type == storage::outbox_type::device_added) {
                ++counts[key].added;
                counts[key].removed_last = false;
            } else if (e.type == storage::outbox_type::device_removed) {
                counts[key].removed_last = true;
            }
        }
        return counts;
    }

    // Every live device of a tracked user announced once, and nothing announced twice.
    void check_announcements(const std::vector<storage::outbox_event>& events, bool complete,
                             const std::string& where) {
        const auto counts = count_devices(events);
        for (const auto& [key, n] : counts) {
            if (n.added > 1) {
                problem(where + " announces device " + key.second + " of " + key.first + " " +
                        std::to_string(n.added) + " times");
            }
        }
        if (!complete) return;
        auto users = store_.tracking().load_tracked_users();
        if (!users) return;
        for (const auto& u : *users) {
            auto devices = store_.devices().devices_of(u.user_id);
            if (!devices) continue;
            for (const auto& d : *devices) {
                const auto n = counts.find({u.user_id, d.device_id});
                if (n == counts.end() || n->second.added == 0) {
                    problem(where + " never announces device " + d.device_id + " of " + u.user_id);
                } else if (n->second.removed_last) {
                    problem(where + " announces live device " + d.device_id + " of " + u.user_id +
                            " as removed");
                }
            }
        }
    }

    void check_outbox() {
        auto consumers = must(store_.outbox().consumers(), "the outbox consumers", problems_);
        auto events = must(store_.outbox().read_after(0, 1000000), "the outbox", problems_);
        if (!consumers || !events) return;
        std::int64_t pruned_to = 0;
        bool first = true;
        for (const auto& c : *consumers) {
            pruned_to = first ? c.acknowledged : std::min(pruned_to, c.acknowledged);
            first = false;
        }
        for (std::size_t i = 0; i < events->size(); ++i) {
            const std::int64_t expected =
                i == 0 ? (*events)[0].cursor : (*events)[i - 1].cursor + 1;
            if ((*events)[i].cursor != expected) {
                problem("the outbox skips from cursor " + std::to_string(expected - 1) + " to " +
                        std::to_string((*events)[i].cursor));
            }
        }
        stored_events_ = std::move(*events);
        check_announcements(stored_events_, pruned_to == 0, "the outbox");
        consumers_ = std::move(*consumers);
    }

    void check_consumer(const consumer_view& view) {
        const std::string who = "consumer '" + view.name() + "'";
        std::map<std::int64_t, const storage::outbox_event*> seen;
        std::vector<storage::outbox_event> distinct;
        std::int64_t confirmed = 0;
        std::int64_t highest = 0;
        for (const auto& step : view.steps()) {
            if (const auto* ack = std::get_if<consumer_view::acknowledged>(&step)) {
                confirmed = std::max(confirmed, ack->cursor);
                continue;
            }
            const auto& batch = std::get<consumer_view::read>(step);
            std::int64_t previous = batch.after.value_or(-1);
            for (const auto& e : batch.events) {
                if (e.cursor <= confirmed) {
                    problem(who + " was handed event " + std::to_string(e.cursor) +
                            " again after acknowledging " + std::to_string(confirmed));
                }
                if (previous >= 0 && e.cursor != previous + 1) {
                    problem(who + " read event " + std::to_string(e.cursor) + " right after " +
                            std::to_string(previous) + ": events in between were skipped");
                }
                previous = e.cursor;
                // A read starting past everything seen so far must start right after it.
                if (e.cursor > highest + 1 && (highest > 0 || o_.consumer_from_start)) {
                    problem(who + " never saw events " + std::to_string(highest + 1) + " to " +
                            std::to_string(e.cursor - 1));
                }
                highest = std::max(highest, e.cursor);
                const auto [at, fresh] = seen.emplace(e.cursor, &e);
                if (fresh) {
                    distinct.push_back(e);
                } else if (!same_event(*at->second, e)) {
                    problem(who + " was handed two different events under cursor " +
                            std::to_string(e.cursor));
                }
            }
        }
        for (const auto& e : stored_events_) {
            const auto at = seen.find(e.cursor);
            if (at != seen.end() && !same_event(*at->second, e)) {
                problem(who + " read event " + std::to_string(e.cursor) +
                        " other than the store holds");
            }
        }
        const auto stored = std::find_if(consumers_.begin(), consumers_.end(),
                                         [&](const auto& c) { return c.name == view.name(); });
        if (stored == consumers_.end()) {
            problem(who + " is not registered in the store");
        } else if (stored->acknowledged < confirmed) {
            problem(who + " had cursor " + std::to_string(confirmed) +
                    " acknowledged but the store holds " + std::to_string(stored->acknowledged));
        }
        if (o_.consumer_drained) {
            auto last = store_.outbox().last_cursor();
            if (last && highest != *last) {
                problem(who + " read up to " + std::to_string(highest) + " but the last event is " +
                        std::to_string(*last));
            }
        }
        check_announcements(distinct, o_.consumer_from_start && o_.consumer_drained, who);
    }

    storage::store& store_;
    const testing::test_homeserver& hs_;
    const store_checker_options& o_;
    problem_list problems_;
    std::optional<std::int64_t> synced_to_;
    std::set<std::string> changed_later_;
    testing::key_history history_;
    std::set<std::string> one_time_ids_;
    std::vector<storage::outbox_event> stored_events_;
    std::vector<storage::outbox_consumer> consumers_;
};

}  // namespace

std::int64_t consumer_view::last_read() const {
    std::int64_t last = 0;
    for (const auto& s : steps_) {
        if (const auto* r = std::get_if<read>(&s)) {
            for (const auto& e : r->events)
                last = std::max(last, e.cursor);
        }
    }
    return last;
}

problem_list check_store(storage::store& store, const testing::test_homeserver& hs,
                         const store_checker_options& options) {
    return checker(store, hs, options).run();
}

problem_list check_store_file(const std::filesystem::path& database,
                              const testing::test_homeserver& hs, store_checker_options options) {
    std::optional<crypto::sealing_key> key;
    const std::filesystem::path key_file = database.string() + ".key";
    if (!options.sealing_key && std::filesystem::exists(key_file)) {
        auto loaded = crypto::sealing_key::load_file(key_file);
        if (!loaded) {
            return {"the sealing key " + key_file.string() +
                    " does not load: " + loaded.error().message()};
        }
        key.emplace(std::move(*loaded));
        options.sealing_key = &*key;
    }
    auto store = storage::store::open(database);
    if (!store)
        return {"the store " + database.string() + " does not open: " + store.error().message()};
    return check_store(*store, hs, options);
}

std::string describe(const problem_list& problems) {
    if (problems.empty()) return "no problems";
    std::ostringstream out;
    out << problems.size() << " problem(s):";
    for (const auto& p : problems)
        out << "\n  - " << p;
    return out.str();
}

}  // namespace devlist::test
