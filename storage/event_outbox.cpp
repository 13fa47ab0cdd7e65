#include "storage/event_outbox.hpp"

#include "devlist/failpoint.hpp"
#include "storage/sql_limit.hpp"

#include <string>

namespace devlist::storage {

namespace {

outbox_event read_event(const statement& st) {
    return outbox_event{
        .cursor = st.int64(0), .at = st.int64(1), .type = st.text(2), .payload_json = st.text(3)};
}

outbox_consumer read_consumer(const statement& st) {
    return outbox_consumer{.name = st.text(0), .acknowledged = st.int64(1)};
}

error unknown_consumer(std::string_view name) {
    return error{errc::invalid_argument, "no outbox consumer named '" + std::string(name) + "'"};
}

// sqlite_sequence keeps the largest cursor ever used, also after those rows are pruned.
constexpr std::string_view select_last_cursor =
    "SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)";

}  // namespace

// The cursor is the rowid: it is read back with last_insert_rowid() rather than RETURNING,
// which makes SQLite collect the returned row in a temporary B-tree on every insert (a third
// of what storing a new device cost).
result<std::int64_t> event_outbox::inserted_cursor(result<void> inserted) {
    if (!inserted) return inserted.error();
    return stmts_.db().last_insert_rowid();
}

result<std::int64_t> event_outbox::append(const outbox_event& event) {
    return inserted_cursor(stmts_.run("INSERT INTO outbox (at, type, payload) VALUES (?1, ?2, ?3)",
                                      event.at, event.type, event.payload_json));
}

result<std::int64_t> event_outbox::append_device_event(std::string_view type,
                                                       const device_record& device,
                                                       timestamp_ms at) {
    // json_object escapes the strings: the payload is valid JSON whatever the server sent.
    return inserted_cursor(stmts_.run(
        "INSERT INTO outbox (at, type, payload) VALUES (?1, ?2, json_object("
        "'user_id', ?3, 'device_id', ?4, 'ed25519', ?5, 'curve25519', ?6, 'display_name', ?7))",
        at, type, device.user_id, device.device_id, device.ed25519, device.curve25519,
        device.display_name));
}

result<std::int64_t> event_outbox::append_user_untracked(std::string_view user_id,
                                                         timestamp_ms at) {
    return inserted_cursor(stmts_.run(
        "INSERT INTO outbox (at, type, payload) VALUES (?1, ?2, json_object('user_id', ?3))", at,
        outbox_type::user_untracked, user_id));
}

result<std::vector<outbox_event>> event_outbox::read(std::string_view consumer, std::size_t limit) {
    auto after = acknowledged_by(consumer);
    if (!after) return after.error();
    return read_after(*after, limit);
}

result<std::vector<outbox_event>> event_outbox::read_after(std::int64_t cursor, std::size_t limit) {
    return stmts_.query_all(
        "SELECT cursor, at, type, payload FROM outbox WHERE cursor > ?1 ORDER BY cursor LIMIT ?2",
        read_event, cursor, sql_limit(limit));
}

result<std::int64_t> event_outbox::acknowledge(std::string_view consumer, std::int64_t cursor) {
    // Its own transaction, so that the check against the last cursor and the update are one
    // step, and a crash tests can place inside it (the failpoint) loses the acknowledgement
    // whole: the consumer is then handed the same events again, never fewer.
    auto acknowledged =
        with_transaction(stmts_.db(), durability::normal, [&]() -> result<std::int64_t> {
            auto last = last_cursor();
            if (!last) return last.error();
            if (cursor < 0 || cursor > *last) {
                return error{errc::invalid_argument,
                             "outbox consumer '" + std::string(consumer) +
                                 "' cannot acknowledge cursor " + std::to_string(cursor) +
                                 ": the last event has cursor " + std::to_string(*last)};
            }
            auto updated = stmts_.query_one(
                "UPDATE outbox_consumers SET acknowledged = MAX(acknowledged, ?2) WHERE name = ?1 "
                "RETURNING acknowledged",
                read_int64, consumer, cursor);
            if (!updated) return updated.error();
            if (!*updated) {
                return unknown_consumer(consumer);
            }
            DEVLIST_FAILPOINT("outbox.ack.before_commit");
            return **updated;
        });
    // Committed, not yet answered: the consumer will not know its acknowledgement held.
    if (acknowledged) DEVLIST_FAILPOINT("outbox.ack.after_commit");
    return acknowledged;
}

result<void> event_outbox::add_consumer(std::string_view name) {
    return stmts_.run(
        "INSERT INTO outbox_consumers (name, acknowledged) VALUES (?1, COALESCE("
        "(SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0)) "
        "ON CONFLICT (name) DO NOTHING",
        name);
}

result<void> event_outbox::remove_consumer(std::string_view name) {
    return stmts_.run("DELETE FROM outbox_consumers WHERE name = ?1", name);
}

result<std::vector<outbox_consumer>> event_outbox::consumers() {
    return stmts_.query_all("SELECT name, acknowledged FROM outbox_consumers ORDER BY name",
                            read_consumer);
}

result<std::int64_t> event_outbox::last_cursor() {
    return stmts_.query_value(select_last_cursor, read_int64);
}

result<std::int64_t> event_outbox::prune() {
    // With no consumer at all, MIN() is NULL and nothing is deleted.
    return stmts_.run_counted(
        "DELETE FROM outbox WHERE cursor <= (SELECT MIN(acknowledged) FROM outbox_consumers)");
}

result<std::int64_t> event_outbox::acknowledged_by(std::string_view consumer) {
    auto acknowledged = stmts_.query_one(
        "SELECT acknowledged FROM outbox_consumers WHERE name = ?1", read_int64, consumer);
    if (!acknowledged) return acknowledged.error();
    if (!*acknowledged) {
        return unknown_consumer(consumer);
    }
    return **acknowledged;
}

}  // namespace devlist::storage
