#include "storage/tracking_store.hpp"

#include "storage/enum_text.hpp"
#include "storage/sql_limit.hpp"

namespace devlist::storage {

namespace {

// The columns read_tracked_user() reads, spliced into several literals.
#define DEVLIST_TRACKED_COLUMNS \
    "user_id, server_name, reasons, outdated, generation, last_refreshed_at"

result<tracked_user> read_tracked_user(const statement& st) {
    auto reasons = parse_reasons(st.int64(2));
    if (!reasons) return reasons.error();
    return tracked_user{
        .user_id = st.text(0),
        .server_name = st.text(1),
        .reasons = *reasons,
        .outdated = st.boolean(3),
        .generation = st.int64(4),
        .last_refreshed_at = st.optional_int64(5),
    };
}

server_backoff read_backoff(const statement& st) {
    return server_backoff{
        .server_name = st.text(0), .consecutive_failures = st.int64(1), .retry_at = st.int64(2)};
}

}  // namespace

result<std::vector<tracked_user>> tracking_store::load_tracked_users() {
    return stmts_.query_all("SELECT " DEVLIST_TRACKED_COLUMNS
                            " FROM tracked_users ORDER BY user_id",
                            read_tracked_user);
}

result<void> tracking_store::for_each_tracked_user(
    const std::function<void(const tracked_user_view&)>& visit) {
    return stmts_.for_each("SELECT " DEVLIST_TRACKED_COLUMNS " FROM tracked_users ORDER BY user_id",
                           [&](const statement& st) -> result<void> {
                               auto reasons = parse_reasons(st.int64(2));
                               if (!reasons) return reasons.error();
                               visit({.user_id = text_view(st, 0),
                                      .server_name = text_view(st, 1),
                                      .reasons = *reasons,
                                      .outdated = st.boolean(3),
                                      .generation = st.int64(4),
                                      .last_refreshed_at = st.optional_int64(5)});
                               return {};
                           });
}

result<std::optional<tracked_user>> tracking_store::find(std::string_view user_id) {
    return stmts_.query_one("SELECT " DEVLIST_TRACKED_COLUMNS
                            " FROM tracked_users WHERE user_id = ?1",
                            read_tracked_user, user_id);
}

result<std::vector<tracked_user>> tracking_store::outdated_users(std::size_t limit) {
    return stmts_.query_all("SELECT " DEVLIST_TRACKED_COLUMNS
                            " FROM tracked_users WHERE outdated = 1 "
                            "ORDER BY generation, user_id LIMIT ?1",
                            read_tracked_user, sql_limit(limit));
}

result<std::vector<server_backoff>> tracking_store::load_server_backoffs() {
    return stmts_.query_all(
        "SELECT server_name, consecutive_failures, retry_at FROM server_backoff "
        "ORDER BY server_name",
        read_backoff);
}

#undef DEVLIST_TRACKED_COLUMNS

}  // namespace devlist::storage
