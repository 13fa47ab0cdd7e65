// The outbox: events for local consumers (device changes, to-device events…), kept until every
// consumer acknowledged them, so nothing is lost across restarts of either side.
//
// Cursors are strictly increasing and never reused. Each consumer has a name and an
// acknowledged cursor; a consumer named "default" always exists in a new database.
//
// Appends join the caller's transaction when one is open on the connection (that is how sync
// batches and query results add their events atomically) and commit on their own otherwise, with
// durability normal: an event lost to a power cut belongs to a sync batch or query result that
// is lost with it and redone.
//
// Not thread-safe; one store per process (see store.hpp).
#pragma once

#include "devlist/error.hpp"
#include "storage/records.hpp"
#include "storage/statement_cache.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace devlist::storage {

class event_outbox {
  public:
    static constexpr std::string_view default_consumer = "default";

    explicit event_outbox(connection& db) noexcept : stmts_(db) {}

    // Returns the new event's cursor. The payload must be JSON (errc::storage_error otherwise).
    result<std::int64_t> append(const outbox_event& event);
    // A device event (outbox_type::device_*) whose payload the store builds from `device`.
    result<std::int64_t> append_device_event(std::string_view type, const device_record& device,
                                             timestamp_ms at);
    // outbox_type::user_untracked.
    result<std::int64_t> append_user_untracked(std::string_view user_id, timestamp_ms at);

    // Up to `limit` events after the consumer's acknowledged cursor, oldest first.
    // errc::invalid_argument for an unknown consumer.
    result<std::vector<outbox_event>> read(std::string_view consumer, std::size_t limit);
    // Up to `limit` events with a cursor greater than `cursor`, oldest first.
    result<std::vector<outbox_event>> read_after(std::int64_t cursor, std::size_t limit);

    // Records that `consumer` handled every event up to `cursor`; returns its acknowledged
    // cursor afterwards. Acknowledgements never move back (an older cursor changes nothing);
    // a cursor beyond the last event is errc::invalid_argument, as is an unknown consumer.
    result<std::int64_t> acknowledge(std::string_view consumer, std::int64_t cursor);

    // Registers a consumer (idempotent). A new consumer starts after the last event so far.
    result<void> add_consumer(std::string_view name);
    // Forgets a consumer, so it no longer holds back pruning. Unknown names are ignored.
    result<void> remove_consumer(std::string_view name);
    result<std::vector<outbox_consumer>> consumers();

    // The cursor of the last event ever appended (0 if none), pruned or not.
    result<std::int64_t> last_cursor();

    // Deletes the events every consumer acknowledged; returns how many.
    result<std::int64_t> prune();

  private:
    result<std::int64_t> acknowledged_by(std::string_view consumer);
    result<std::int64_t> inserted_cursor(result<void> inserted);

    statement_cache stmts_;
};

}  // namespace devlist::storage
