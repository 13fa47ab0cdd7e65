#include "storage/device_store.hpp"

#include "devlist/failpoint.hpp"
#include "storage/enum_text.hpp"

#include <algorithm>
#include <cassert>
#include <map>
#include <set>
#include <span>
#include <string>
#include <utility>

namespace devlist::storage {

namespace {

// The columns read_device() reads, spliced into several literals.
#define DEVLIST_DEVICE_COLUMNS                                                           \
    "user_id, device_id, ed25519, curve25519, display_name, signed_json, cross_signed, " \
    "first_seen, last_seen, deleted_at"

// tracked_users.answer_seen_at for a digest in parameter ?4 (?2 in the _2 form), the time in ?3:
// the oldest last_seen of the user's devices and keys that the digest stands for (an unchanged
// device keeps a last_seen up to last_seen_resolution_ms old), or NULL with the digest.
#define DEVLIST_ANSWER_SEEN_AT_OF(digest)                                                     \
    "CASE WHEN " digest                                                                       \
    " IS NULL THEN NULL ELSE min("                                                            \
    "ifnull((SELECT min(last_seen) FROM devices WHERE user_id = ?1 AND deleted_at IS NULL), " \
    "?3), ifnull((SELECT min(last_seen) FROM cross_signing_keys WHERE user_id = ?1), ?3)) END"
#define DEVLIST_ANSWER_SEEN_AT DEVLIST_ANSWER_SEEN_AT_OF("?4")
#define DEVLIST_ANSWER_SEEN_AT_2 DEVLIST_ANSWER_SEEN_AT_OF("?2")

device_record read_device(const statement& st) {
    return device_record{
        .user_id = st.text(0),
        .device_id = st.text(1),
        .ed25519 = st.text(2),
        .curve25519 = st.text(3),
        .display_name = st.optional_text(4),
        .signed_json = st.text(5),
        .cross_signed = st.boolean(6),
        .first_seen = st.int64(7),
        .last_seen = st.int64(8),
        .deleted_at = st.optional_int64(9),
    };
}

result<cross_signing_key> read_cross_signing_key(const statement& st) {
    auto usage = parse_text<key_usage>(st.text(1));
    if (!usage) return usage.error();
    return cross_signing_key{
        .user_id = st.text(0),
        .usage = *usage,
        .public_key = st.text(2),
        .signed_json = st.text(3),
        .verified = st.boolean(4),
        .first_seen = st.int64(5),
        .last_seen = st.int64(6),
    };
}

const char* outbox_type_of(device_change_kind kind) {
    switch (kind) {
        case device_change_kind::added:
            return outbox_type::device_added;
        case device_change_kind::changed:
            return outbox_type::device_changed;
        case device_change_kind::removed:
            return outbox_type::device_removed;
    }
    assert(false && "unknown device change");
    return outbox_type::device_changed;
}

// What the server says about a device, without the store's own bookkeeping.
bool same_content(const device_record& a, const device_record& b) {
    return a.ed25519 == b.ed25519 && a.curve25519 == b.curve25519 &&
           a.display_name == b.display_name && a.signed_json == b.signed_json &&
           a.cross_signed == b.cross_signed;
}

}  // namespace

result<query_outcome> device_store::apply_query_result(const query_result& answer) {
    return with_transaction(stmts_.db(), durability::normal, [&]() -> result<query_outcome> {
        query_outcome outcome;
        for (const user_query_result& user : answer.users) {
            if (auto r = apply_user(user, answer.at, outcome); !r) return r.error();
        }
        if (auto r = apply_backoff(answer); !r) return r.error();
        for (const security_event& event : answer.security_events) {
            if (auto r = log_->append(event); !r) return r.error();
        }
        for (const outbox_event& event : answer.outbox_events) {
            if (auto r = outbox_->append(event); !r) return r.error();
        }
        DEVLIST_FAILPOINT("query.apply.before_commit");
        return outcome;
    });
}

result<void> device_store::apply_user(const user_query_result& user, timestamp_ms at,
                                      query_outcome& outcome) {
    if (user.same_digest) return apply_same_digest(user, at, outcome);
    std::optional<std::span<const std::uint8_t>> digest;
    if (user.digest) digest = std::span<const std::uint8_t>(*user.digest);
    if (user.unchanged && user.clear_outdated) {
        // The common case of a large answer: one statement. Only when it clears nothing is it
        // asked why (untracked meanwhile, or the generation moved).
        auto cleared = stmts_.run_counted(
            "UPDATE tracked_users SET outdated = 0, last_refreshed_at = ?3, "
            "answer_digest = ?4, answer_seen_at = " DEVLIST_ANSWER_SEEN_AT
            " WHERE user_id = ?1 AND generation = ?2",
            user.user_id, user.generation_at_send, at, digest);
        if (!cleared) return cleared.error();
        if (*cleared != 0) {
            outcome.cleared.push_back(user.user_id);
            return {};
        }
    }
    auto tracked = stmts_.query_one("SELECT generation FROM tracked_users WHERE user_id = ?1",
                                    read_int64, user.user_id);
    if (!tracked) return tracked.error();
    if (!*tracked) {
        // Untracked while the request was in flight: storing would bring back what untracking
        // removed.
        outcome.not_tracked.push_back(user.user_id);
        return {};
    }
    if (!user.unchanged) {
        if (auto r = apply_devices(user, at, outcome); !r) return r;
        if (auto r = apply_cross_signing_keys(user, at); !r) return r;
    }
    // Whatever wrote the devices, the digest now says whether they are one accepted part.
    if (auto r = write_digest(user, at); !r) return r;
    return clear_outdated(user, at, outcome);
}

result<void> device_store::apply_same_digest(const user_query_result& user, timestamp_ms at,
                                             query_outcome& outcome) {
    assert(user.digest && "a repeated part without its digest");
    if (!user.digest) return {};
    const std::span<const std::uint8_t> digest(*user.digest);
    if (user.clear_outdated) {
        // The common case of a large answer that repeats itself: one statement, which also
        // checks that the stored devices are still what the digest stands for.
        auto cleared = stmts_.run_counted(
            "UPDATE tracked_users SET outdated = 0, last_refreshed_at = ?3 "
            "WHERE user_id = ?1 AND generation = ?2 AND answer_digest = ?4 "
            "AND answer_seen_at > ?5",
            user.user_id, user.generation_at_send, at, digest, at - last_seen_resolution_ms);
        if (!cleared) return cleared.error();
        if (*cleared != 0) {
            outcome.cleared.push_back(user.user_id);
            return {};
        }
    }
    struct stored_digest {
        std::vector<std::uint8_t> digest;
        std::optional<timestamp_ms> seen_at;
    };
    auto stored = stmts_.query_one(
        "SELECT answer_digest, answer_seen_at FROM tracked_users WHERE user_id = ?1",
        [](const statement& st) {
            return stored_digest{st.blob(0), st.optional_int64(1)};
        },
        user.user_id);
    if (!stored) return stored.error();
    if (!*stored) {
        outcome.not_tracked.push_back(user.user_id);
        return {};
    }
    if (!std::equal((*stored)->digest.begin(), (*stored)->digest.end(), digest.begin(),
                    digest.end())) {
        // Something else was stored since the engine read the digest: this answer says nothing
        // certain about it, so the user is asked again.
        outcome.still_outdated.push_back(user.user_id);
        return {};
    }
    if (!(*stored)->seen_at || at - *(*stored)->seen_at >= last_seen_resolution_ms) {
        // The answer still lists every stored device and key: their last_seen is due.
        if (auto r = stmts_.run(
                "UPDATE devices SET last_seen = ?2 WHERE user_id = ?1 AND deleted_at IS NULL",
                user.user_id, at);
            !r) {
            return r;
        }
        if (auto r = stmts_.run("UPDATE cross_signing_keys SET last_seen = ?2 WHERE user_id = ?1",
                                user.user_id, at);
            !r) {
            return r;
        }
        if (auto r = stmts_.run("UPDATE tracked_users SET answer_seen_at = ?2 WHERE user_id = ?1",
                                user.user_id, at);
            !r) {
            return r;
        }
    }
    return clear_outdated(user, at, outcome);
}

result<void> device_store::write_digest(const user_query_result& user, timestamp_ms at) {
    std::optional<std::span<const std::uint8_t>> digest;
    if (user.digest) digest = std::span<const std::uint8_t>(*user.digest);
    return stmts_.run(
        "UPDATE tracked_users SET answer_digest = ?2, answer_seen_at = " DEVLIST_ANSWER_SEEN_AT_2
        " WHERE user_id = ?1",
        user.user_id, digest, at);
}

result<void> device_store::clear_outdated(const user_query_result& user, timestamp_ms at,
                                          query_outcome& outcome) {
    if (!user.clear_outdated) {
        outcome.still_outdated.push_back(user.user_id);
        return {};
    }
    // The race guard: a /sync that marked the user outdated again while the request was in
    // flight moved the generation, and this answer may predate that change.
    auto cleared = stmts_.run_counted(
        "UPDATE tracked_users SET outdated = 0, last_refreshed_at = ?3 "
        "WHERE user_id = ?1 AND generation = ?2",
        user.user_id, user.generation_at_send, at);
    if (!cleared) return cleared.error();
    (*cleared != 0 ? outcome.cleared : outcome.still_outdated).push_back(user.user_id);
    return {};
}

result<void> device_store::apply_devices(const user_query_result& user, timestamp_ms at,
                                         query_outcome& outcome) {
    auto stored =
        stmts_.query_all("SELECT " DEVLIST_DEVICE_COLUMNS " FROM devices WHERE user_id = ?1",
                         read_device, user.user_id);
    if (!stored) return stored.error();
    std::map<std::string, const device_record*, std::less<>> known;
    for (const device_record& device : *stored)
        known.emplace(device.device_id, &device);

    auto announce = [&](device_change_kind kind, const device_record& device) -> result<void> {
        outcome.device_changes.push_back({kind, device.user_id, device.device_id});
        if (auto r = outbox_->append_device_event(outbox_type_of(kind), device, at); !r) {
            return r.error();
        }
        return {};
    };

    std::set<std::string_view> present;
    for (const device_record& device : user.devices) {
        assert(device.user_id == user.user_id && "a device filed under another user");
        present.insert(device.device_id);
        auto old = known.find(device.device_id);
        if (old != known.end() && !old->second->deleted_at && same_content(*old->second, device)) {
            // Nothing new but the time: an answer that repeats the stored devices writes
            // nothing, unless last_seen is older than its resolution.
            if (at - old->second->last_seen < last_seen_resolution_ms) continue;
            if (auto r = stmts_.run(
                    "UPDATE devices SET last_seen = ?3 WHERE user_id = ?1 AND device_id = ?2",
                    device.user_id, device.device_id, at);
                !r) {
                return r;
            }
            continue;
        }
        // One statement inserts a new device and refreshes, changes or revives
        // (deleted_at = NULL) a known one; first_seen stays.
        if (auto r = stmts_.run(
                "INSERT INTO devices (user_id, device_id, ed25519, curve25519, display_name, "
                "signed_json, cross_signed, first_seen, last_seen) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) "
                "ON CONFLICT (user_id, device_id) DO UPDATE SET ed25519 = excluded.ed25519, "
                "curve25519 = excluded.curve25519, display_name = excluded.display_name, "
                "signed_json = excluded.signed_json, cross_signed = excluded.cross_signed, "
                "last_seen = excluded.last_seen, deleted_at = NULL",
                device.user_id, device.device_id, device.ed25519, device.curve25519,
                device.display_name, device.signed_json, device.cross_signed, at);
            !r) {
            return r;
        }
        std::optional<device_change_kind> change;
        if (old == known.end() || old->second->deleted_at) {
            change = device_change_kind::added;
        } else if (!same_content(*old->second, device)) {
            change = device_change_kind::changed;
        }
        if (change) {
            if (auto r = announce(*change, device); !r) return r;
        }
    }

    for (const device_record& device : *stored) {
        if (device.deleted_at || present.contains(device.device_id)) continue;
        if (auto r = stmts_.run(
                "UPDATE devices SET deleted_at = ?3 WHERE user_id = ?1 AND device_id = ?2",
                device.user_id, device.device_id, at);
            !r) {
            return r;
        }
        if (auto r = announce(device_change_kind::removed, device); !r) return r;
    }
    return {};
}

result<void> device_store::apply_cross_signing_keys(const user_query_result& user,
                                                    timestamp_ms at) {
    if (!user.cross_signing_keys) return {};
    auto stored = cross_signing_keys_of(user.user_id);
    if (!stored) return stored.error();
    auto stored_key = [&](key_usage usage) -> const cross_signing_key* {
        for (const auto& k : *stored) {
            if (k.usage == usage) return &k;
        }
        return nullptr;
    };
    std::set<key_usage> present;
    for (const cross_signing_key& key : *user.cross_signing_keys) {
        assert(key.user_id == user.user_id && "a cross-signing key filed under another user");
        present.insert(key.usage);
        if (const auto* old = stored_key(key.usage); old && old->public_key == key.public_key &&
                                                     old->signed_json == key.signed_json &&
                                                     old->verified == key.verified) {
            if (at - old->last_seen < last_seen_resolution_ms) continue;
            if (auto r = stmts_.run("UPDATE cross_signing_keys SET last_seen = ?3 WHERE user_id = "
                                    "?1 AND usage = ?2",
                                    key.user_id, to_text(key.usage), at);
                !r) {
                return r;
            }
            continue;
        }
        // A new public key for a usage is a new key: its first_seen starts again.
        if (auto r = stmts_.run(
                "INSERT INTO cross_signing_keys (user_id, usage, public_key, signed_json, "
                "verified, first_seen, last_seen) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) "
                "ON CONFLICT (user_id, usage) DO UPDATE SET "
                "first_seen = CASE WHEN public_key = excluded.public_key THEN first_seen "
                "ELSE excluded.first_seen END, "
                "public_key = excluded.public_key, signed_json = excluded.signed_json, "
                "verified = excluded.verified, last_seen = excluded.last_seen",
                key.user_id, to_text(key.usage), key.public_key, key.signed_json, key.verified, at);
            !r) {
            return r;
        }
    }
    for (const auto& [usage, text] : enum_text<key_usage>::values) {
        if (present.contains(usage) || !stored_key(usage)) continue;
        if (auto r = stmts_.run("DELETE FROM cross_signing_keys WHERE user_id = ?1 AND usage = ?2",
                                user.user_id, text);
            !r) {
            return r;
        }
    }
    return {};
}

result<void> device_store::apply_backoff(const query_result& answer) {
    for (const server_backoff& server : answer.failed_servers) {
        if (auto r = stmts_.run(
                "INSERT INTO server_backoff (server_name, consecutive_failures, retry_at) "
                "VALUES (?1, ?2, ?3) ON CONFLICT (server_name) DO UPDATE SET "
                "consecutive_failures = excluded.consecutive_failures, "
                "retry_at = excluded.retry_at",
                server.server_name, server.consecutive_failures, server.retry_at);
            !r) {
            return r;
        }
    }
    for (const std::string& server : answer.answered_servers) {
        if (auto r = stmts_.run("DELETE FROM server_backoff WHERE server_name = ?1", server); !r) {
            return r;
        }
    }
    return {};
}

result<std::vector<device_record>> device_store::devices_of(std::string_view user_id) {
    return stmts_.query_all("SELECT " DEVLIST_DEVICE_COLUMNS
                            " FROM devices WHERE user_id = ?1 AND deleted_at IS NULL "
                            "ORDER BY device_id",
                            read_device, user_id);
}

result<std::optional<device_record>> device_store::find(std::string_view user_id,
                                                        std::string_view device_id) {
    return stmts_.query_one("SELECT " DEVLIST_DEVICE_COLUMNS
                            " FROM devices WHERE user_id = ?1 AND device_id = ?2",
                            read_device, user_id, device_id);
}

result<std::optional<device_record>> device_store::device_by_curve25519(
    std::string_view curve25519) {
    // The rows with the key (one, nearly always) are compared here: an ORDER BY would build a
    // temporary B-tree for every lookup, and this is the socket API's most frequent question.
    auto rows =
        stmts_.query_all("SELECT " DEVLIST_DEVICE_COLUMNS " FROM devices WHERE curve25519 = ?1",
                         read_device, curve25519);
    if (!rows) return rows.error();
    if (rows->empty()) return std::optional<device_record>();
    // A live device first, then the one seen last.
    auto rank = [](const device_record& d) {
        return std::pair(!d.deleted_at.has_value(), d.last_seen);
    };
    auto best = std::max_element(rows->begin(), rows->end(),
                                 [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
    return std::optional<device_record>(std::move(*best));
}

result<std::optional<answer_digest>> device_store::answer_digest_of(std::string_view user_id) {
    return stmts_.query_one(
        "SELECT answer_digest FROM tracked_users WHERE user_id = ?1 AND answer_digest IS NOT NULL",
        [](const statement& st) -> result<answer_digest> {
            const auto bytes = st.blob(0);
            answer_digest digest{};
            if (bytes.size() != digest.size()) {
                return error{errc::storage_corrupt, "an answer digest of the wrong length"};
            }
            std::copy(bytes.begin(), bytes.end(), digest.begin());
            return digest;
        },
        user_id);
}

result<std::vector<cross_signing_key>> device_store::cross_signing_keys_of(
    std::string_view user_id) {
    // Ordered as the enumeration (master, self_signing, user_signing), which is also the
    // order of their names: the primary key's order, so no temporary B-tree is built.
    return stmts_.query_all(
        "SELECT user_id, usage, public_key, signed_json, verified, first_seen, last_seen "
        "FROM cross_signing_keys WHERE user_id = ?1 ORDER BY usage",
        read_cross_signing_key, user_id);
}

#undef DEVLIST_DEVICE_COLUMNS
#undef DEVLIST_ANSWER_SEEN_AT_2
#undef DEVLIST_ANSWER_SEEN_AT
#undef DEVLIST_ANSWER_SEEN_AT_OF

}  // namespace devlist::storage
