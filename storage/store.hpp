// The store: the one writer of a devlistd database. Owns the store lock, the connection and the
// migrations, and hands out the domain stores that hold the prepared statements.
//
// Thread-safety: none; use a store from one thread (the io thread). A process opens a given
// database once (a second open, in this process or another, is refused with
// errc::storage_locked). A child forked without exec shares the lock with its parent.
//
// Cancellation: calls are synchronous. Each blocks for its SQLite work only; waiting for a lock
// of another connection is bounded by open_options::busy_timeout (then errc::storage_busy).
#pragma once

#include "devlist/error.hpp"
#include "storage/account_store.hpp"
#include "storage/database.hpp"
#include "storage/device_store.hpp"
#include "storage/event_outbox.hpp"
#include "storage/fallback_key_store.hpp"
#include "storage/one_time_key_store.hpp"
#include "storage/own_cross_signing_store.hpp"
#include "storage/security_log.hpp"
#include "storage/sync_store.hpp"
#include "storage/tracking_store.hpp"
#include "storage/wal_checkpointer.hpp"

#include <filesystem>
#include <memory>

namespace devlist::storage {

struct store_options {
    open_options database;
    // WAL checkpoints on a thread of their own instead of inside the commits of the store's
    // (io) thread; see wal_checkpointer.hpp. Not for ":memory:".
    checkpoint_options checkpoints;
};

class store {
  public:
    // Takes the lock "<path>.lock", opens (creating it 0600 if needed) and migrates the
    // database. ":memory:" gives a private in-memory store without a lock (for tests).
    // Errors: storage_locked (another holder), storage_schema_too_new, storage_busy,
    // storage_error, io_error.
    static result<store> open(const std::filesystem::path& path, const store_options& options = {});

    store(store&&) noexcept;
    store& operator=(store&&) noexcept;
    store(const store&) = delete;
    store& operator=(const store&) = delete;
    // Closes the database, then releases the lock.
    ~store();

    account_store& account() noexcept;
    sync_store& sync() noexcept;
    tracking_store& tracking() noexcept;
    device_store& devices() noexcept;
    one_time_key_store& one_time_keys() noexcept;
    fallback_key_store& fallback_keys() noexcept;
    own_cross_signing_store& own_cross_signing() noexcept;
    event_outbox& outbox() noexcept;
    security_log& security() noexcept;

    // A read transaction over the stores' reads while it lives (see read_transaction).
    result<read_transaction> begin_read();

    // The connection, for maintenance and tests; the stores' transactions must not overlap
    // with one opened here.
    connection& database() noexcept;
    const std::filesystem::path& path() const noexcept;
    // The WAL checkpoints done so far (all zero for ":memory:").
    checkpoint_counters checkpoints() const;

  private:
    struct parts;
    explicit store(std::unique_ptr<parts> p) noexcept;

    // On the heap so that the stores' references to the connection survive moves of the store.
    std::unique_ptr<parts> parts_;
};

}  // namespace devlist::storage
