#include "storage/security_log.hpp"

#include "storage/sql_limit.hpp"

namespace devlist::storage {

namespace {

security_event read_event(const statement& st) {
    return security_event{
        .id = st.int64(0),
        .at = st.int64(1),
        .kind = st.text(2),
        .user_id = st.optional_text(3),
        .device_id = st.optional_text(4),
        .detail_json = st.text(5),
    };
}

}  // namespace

result<std::int64_t> security_log::append(const security_event& event) {
    return stmts_.query_value(
        "INSERT INTO security_events (at, kind, user_id, device_id, detail) "
        "VALUES (?1, ?2, ?3, ?4, ?5) RETURNING id",
        read_int64, event.at, event.kind, event.user_id, event.device_id, event.detail_json);
}

result<std::vector<security_event>> security_log::recent(std::size_t limit) {
    return stmts_.query_all(
        "SELECT id, at, kind, user_id, device_id, detail FROM security_events "
        "ORDER BY id DESC LIMIT ?1",
        read_event, sql_limit(limit));
}

result<std::vector<security_event>> security_log::recent_of_user(std::string_view user_id,
                                                                 std::size_t limit) {
    return stmts_.query_all(
        "SELECT id, at, kind, user_id, device_id, detail FROM security_events "
        "WHERE user_id = ?1 ORDER BY id DESC LIMIT ?2",
        read_event, user_id, sql_limit(limit));
}

}  // namespace devlist::storage
