// The schema, as migrations. Never edit a migration that has shipped: append a new one.
//
// Conventions: STRICT tables; timestamps are INTEGER milliseconds since the Unix epoch; booleans
// are INTEGER 0/1 with a CHECK; enumerations are TEXT with a CHECK listing the values the code
// writes; public keys are unpadded base64 TEXT; private keys are sealed BLOBs (opaque here);
// signed JSON is TEXT kept byte for byte.
#include "storage/migrations.hpp"

#include <array>

namespace devlist::storage {

namespace {

constexpr std::string_view schema_v1 = R"sql(
-- The own account and device: exactly one row, written once.
CREATE TABLE account (
    id                        INTEGER PRIMARY KEY CHECK (id = 1),
    user_id                   TEXT NOT NULL,
    device_id                 TEXT NOT NULL,
    ed25519_public            TEXT NOT NULL,
    curve25519_public         TEXT NOT NULL,
    ed25519_sealed            BLOB NOT NULL,
    curve25519_sealed         BLOB NOT NULL,
    device_keys_uploaded      INTEGER NOT NULL DEFAULT 0 CHECK (device_keys_uploaded IN (0, 1)),
    device_signature_uploaded INTEGER NOT NULL DEFAULT 0
                              CHECK (device_signature_uploaded IN (0, 1)),
    created_at                INTEGER NOT NULL
) STRICT;

-- The /sync position. One row, present from the start.
CREATE TABLE sync_state (
    id                      INTEGER PRIMARY KEY CHECK (id = 1),
    -- the device this sync stream (and everything else here) belongs to, from the login
    device_id               TEXT,
    next_batch              TEXT,
    filter_id               TEXT,
    generation              INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    -- the server has sent device_unused_fallback_key_types at least once
    fallback_types_reported INTEGER NOT NULL DEFAULT 0 CHECK (fallback_types_reported IN (0, 1))
) STRICT;
INSERT INTO sync_state (id) VALUES (1);

-- What /sync last said about the own keys, per algorithm.
CREATE TABLE server_key_state (
    algorithm          TEXT NOT NULL PRIMARY KEY,
    one_time_key_count INTEGER NOT NULL DEFAULT 0 CHECK (one_time_key_count >= 0),
    fallback_unused    INTEGER NOT NULL DEFAULT 0 CHECK (fallback_unused IN (0, 1))
) STRICT, WITHOUT ROWID;

CREATE TABLE rooms (
    room_id   TEXT NOT NULL PRIMARY KEY,
    encrypted INTEGER NOT NULL DEFAULT 0 CHECK (encrypted IN (0, 1)),
    algorithm TEXT,
    CHECK (encrypted = 0 OR algorithm IS NOT NULL)
) STRICT, WITHOUT ROWID;

-- Joined and invited members; anything else is no row.
CREATE TABLE memberships (
    room_id    TEXT NOT NULL REFERENCES rooms (room_id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    membership TEXT NOT NULL CHECK (membership IN ('join', 'invite')),
    PRIMARY KEY (room_id, user_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_id);

-- Users whose device lists are tracked. reasons is a bit set (1 own, 2 encrypted room,
-- 4 explicit); a user without reasons is deleted, not kept at 0.
CREATE TABLE tracked_users (
    user_id           TEXT NOT NULL PRIMARY KEY,
    server_name       TEXT NOT NULL,
    reasons           INTEGER NOT NULL CHECK (reasons BETWEEN 1 AND 7),
    outdated          INTEGER NOT NULL CHECK (outdated IN (0, 1)),
    generation        INTEGER NOT NULL CHECK (generation >= 0),
    last_refreshed_at INTEGER
) STRICT;
CREATE INDEX tracked_users_outdated ON tracked_users (generation, user_id) WHERE outdated = 1;

-- Backoff of servers named in /keys/query `failures`; no row = no backoff.
CREATE TABLE server_backoff (
    server_name          TEXT NOT NULL PRIMARY KEY,
    consecutive_failures INTEGER NOT NULL CHECK (consecutive_failures >= 1),
    retry_at             INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Devices of tracked users (untracking deletes them). Soft-deleted when they vanish from the
-- server's list, so a sender key still finds its (former) device.
CREATE TABLE devices (
    user_id      TEXT NOT NULL REFERENCES tracked_users (user_id) ON DELETE CASCADE,
    device_id    TEXT NOT NULL,
    ed25519      TEXT NOT NULL,
    curve25519   TEXT NOT NULL,
    display_name TEXT,
    signed_json  TEXT NOT NULL,
    cross_signed INTEGER NOT NULL DEFAULT 0 CHECK (cross_signed IN (0, 1)),
    first_seen   INTEGER NOT NULL,
    last_seen    INTEGER NOT NULL,
    deleted_at   INTEGER,
    PRIMARY KEY (user_id, device_id)
) STRICT;
CREATE INDEX devices_by_curve25519 ON devices (curve25519);

-- Cross-signing keys of tracked users.
CREATE TABLE cross_signing_keys (
    user_id     TEXT NOT NULL REFERENCES tracked_users (user_id) ON DELETE CASCADE,
    usage       TEXT NOT NULL CHECK (usage IN ('master', 'self_signing', 'user_signing')),
    public_key  TEXT NOT NULL,
    signed_json TEXT NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0 CHECK (verified IN (0, 1)),
    first_seen  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    PRIMARY KEY (user_id, usage)
) STRICT, WITHOUT ROWID;

-- Permanent log of what a person may need to know (changed keys, conflicts…). kind is open:
-- new kinds must not need a migration.
CREATE TABLE security_events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    kind      TEXT NOT NULL CHECK (kind <> ''),
    user_id   TEXT,
    device_id TEXT,
    detail    TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;
CREATE INDEX security_events_by_user ON security_events (user_id, id);

-- Monotonic counter for own one-time and fallback key IDs (a key ID is never reused).
CREATE TABLE key_id_counter (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    next_value INTEGER NOT NULL CHECK (next_value >= 1)
) STRICT;
INSERT INTO key_id_counter (id, next_value) VALUES (1, 1);

-- Own one-time keys, committed before upload. Published keys keep their private part until
-- pruned (claims hand them out in upload order, seq).
CREATE TABLE one_time_keys (
    key_id         TEXT NOT NULL PRIMARY KEY,
    seq            INTEGER NOT NULL UNIQUE,
    algorithm      TEXT NOT NULL,
    public_key     TEXT NOT NULL UNIQUE,
    sealed_private BLOB NOT NULL,
    signed_json    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'published')),
    created_at     INTEGER NOT NULL,
    published_at   INTEGER,
    CHECK ((state = 'published') = (published_at IS NOT NULL))
) STRICT;
CREATE INDEX one_time_keys_by_state ON one_time_keys (state, seq);

-- Own fallback keys: one current per algorithm, and previous ones kept until erase_after.
CREATE TABLE fallback_keys (
    key_id         TEXT NOT NULL PRIMARY KEY,
    algorithm      TEXT NOT NULL,
    slot           TEXT NOT NULL CHECK (slot IN ('current', 'previous')),
    public_key     TEXT NOT NULL UNIQUE,
    sealed_private BLOB NOT NULL,
    signed_json    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'published')),
    created_at     INTEGER NOT NULL,
    published_at   INTEGER,
    used_at        INTEGER,
    erase_after    INTEGER,
    CHECK ((state = 'published') = (published_at IS NOT NULL)),
    CHECK (slot = 'previous' OR erase_after IS NULL)
) STRICT;
CREATE UNIQUE INDEX fallback_keys_current ON fallback_keys (algorithm) WHERE slot = 'current';

-- Own cross-signing keys (at most one per usage), committed before upload.
CREATE TABLE own_cross_signing_keys (
    usage          TEXT NOT NULL PRIMARY KEY
                   CHECK (usage IN ('master', 'self_signing', 'user_signing')),
    public_key     TEXT NOT NULL,
    sealed_private BLOB NOT NULL,
    signed_json    TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('pending', 'uploaded')),
    created_at     INTEGER NOT NULL,
    uploaded_at    INTEGER,
    CHECK ((state = 'uploaded') = (uploaded_at IS NOT NULL))
) STRICT;

-- Events for local consumers. AUTOINCREMENT: a cursor is never reused, even after pruning.
CREATE TABLE outbox (
    cursor  INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    type    TEXT NOT NULL CHECK (type <> ''),
    payload TEXT NOT NULL CHECK (json_valid(payload))
) STRICT;

CREATE TABLE outbox_consumers (
    name         TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),
    acknowledged INTEGER NOT NULL DEFAULT 0 CHECK (acknowledged >= 0)
) STRICT, WITHOUT ROWID;
INSERT INTO outbox_consumers (name) VALUES ('default');
)sql";

// tracked_users keyed by user ID alone, without the outdated index.
//
// As a rowid table, each write by user ID went through the primary-key index to a row stored in
// insertion order, so a /sync that marks tens of thousands of users outdated touched pages all
// over both B-trees. WITHOUT ROWID, the row lives in the user-ID B-tree: one lookup per write,
// and writes in user-ID order walk the table once.
//
// The partial index on outdated users served no query the daemon makes (the engine keeps the
// outdated set in memory and reads tracked users by user ID), yet every user marked outdated
// or refreshed added or removed one of its entries.
constexpr std::string_view schema_v2 = R"sql(
CREATE TABLE tracked_users_v2 (
    user_id           TEXT NOT NULL PRIMARY KEY,
    server_name       TEXT NOT NULL,
    reasons           INTEGER NOT NULL CHECK (reasons BETWEEN 1 AND 7),
    outdated          INTEGER NOT NULL CHECK (outdated IN (0, 1)),
    generation        INTEGER NOT NULL CHECK (generation >= 0),
    last_refreshed_at INTEGER
) STRICT, WITHOUT ROWID;
INSERT INTO tracked_users_v2 (user_id, server_name, reasons, outdated, generation,
                              last_refreshed_at)
    SELECT user_id, server_name, reasons, outdated, generation, last_refreshed_at
    FROM tracked_users ORDER BY user_id;
DROP TABLE tracked_users;  -- takes tracked_users_outdated with it
ALTER TABLE tracked_users_v2 RENAME TO tracked_users;
)sql";

// Each tracked user's answer digest: the SHA-256 of the user's part of the last /keys/query
// answer that was accepted whole (sync/answer_digest.hpp). A later part with the same digest
// repeats what the user's devices and cross-signing keys already are, and is neither parsed nor
// verified again. answer_seen_at is the oldest last_seen of those devices and keys when the
// digest was written or last refreshed: a repeated part refreshes them when it is older than
// last_seen_resolution_ms. Both NULL until an answer is accepted whole, and again whenever the
// devices or keys are written from an answer that was not.
constexpr std::string_view schema_v3 = R"sql(
ALTER TABLE tracked_users ADD COLUMN answer_digest BLOB
    CHECK (answer_digest IS NULL OR length(answer_digest) = 32);
ALTER TABLE tracked_users ADD COLUMN answer_seen_at INTEGER;
)sql";

constexpr std::array<migration, 3> all_migrations{{
    {"initial schema", schema_v1},
    {"tracked users without rowid", schema_v2, true},
    {"answer digests of tracked users", schema_v3},
}};

}  // namespace

std::span<const migration> schema_migrations() noexcept {
    return all_migrations;
}

}  // namespace devlist::storage
