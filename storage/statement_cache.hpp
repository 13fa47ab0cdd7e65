// Prepared statements kept by one store object: each SQL text is prepared on first use and reused
// afterwards (SQLite's parse and plan cost is paid once per process).
//
// Every call binds its arguments to ?1, ?2, … in order, runs the statement and resets it, so no
// statement keeps a read snapshot or a lock once the call returns.
//
// Internal to storage/. Not thread-safe (like the connection it uses).
#pragma once

#include "storage/database.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace devlist::storage {

namespace detail {
template <class T>
struct unwrap_result {
    using type = T;
};
template <class T>
struct unwrap_result<result<T>> {
    using type = T;
};
template <class T>
inline constexpr bool is_result_v = !std::is_same_v<typename unwrap_result<T>::type, T>;
}  // namespace detail

// What a row reader returns: the record, or a result of it (for rows that can be corrupt).
template <class Read>
using row_of = typename detail::unwrap_result<std::invoke_result_t<Read, const statement&>>::type;

class statement_cache {
  public:
    explicit statement_cache(connection& db) noexcept : db_(&db) {}

    // Runs `sql` (INSERT/UPDATE/DELETE); rows, if any, are ignored.
    template <class... A>
    result<void> run(std::string_view sql, const A&... args) {
        auto st = acquire(sql);
        if (!st) return st.error();
        resetter guard{**st};
        return (*st)->borrow_values().bind_all(args...).run();
    }

    // Like run(); returns the number of rows changed.
    template <class... A>
    result<std::int64_t> run_counted(std::string_view sql, const A&... args) {
        if (auto r = run(sql, args...); !r) return r.error();
        return db_->changes();
    }

    // Like run_counted(), for a statement whose values are known at run time only:
    // `bind(statement&)` binds them (e.g. the members of an IN list).
    template <class Bind>
    result<std::int64_t> run_bound(std::string_view sql, Bind&& bind) {
        auto st = acquire(sql);
        if (!st) return st.error();
        resetter guard{**st};
        bind((*st)->borrow_values());
        if (auto r = (*st)->run(); !r) return r.error();
        return db_->changes();
    }

    // The first row, read by `read(const statement&)`, or nullopt when there is none.
    template <class Read, class... A>
    result<std::optional<row_of<Read>>> query_one(std::string_view sql, Read read,
                                                  const A&... args) {
        auto st = acquire(sql);
        if (!st) return st.error();
        resetter guard{**st};
        (*st)->borrow_values().bind_all(args...);
        auto row = (*st)->step();
        if (!row) return row.error();
        if (!*row) return std::optional<row_of<Read>>();
        auto value = read_row(read, **st);
        if (!value) return value.error();
        // A write with RETURNING (outside a transaction) commits when it runs to completion:
        // finish it here, where a failing commit can still be reported.
        if (!(*st)->read_only()) {
            if (auto r = (*st)->run(); !r) return r.error();
        }
        return std::optional<row_of<Read>>(std::move(*value));
    }

    // Exactly one row (e.g. INSERT … RETURNING, or an aggregate); no row is
    // errc::storage_corrupt (a row the schema guarantees is missing).
    template <class Read, class... A>
    result<row_of<Read>> query_value(std::string_view sql, Read read, const A&... args) {
        auto row = query_one(sql, std::move(read), args...);
        if (!row) return row.error();
        if (!*row) return missing_row(sql);
        return std::move(**row);
    }

    // All rows, in the order the query returns them.
    template <class Read, class... A>
    result<std::vector<row_of<Read>>> query_all(std::string_view sql, Read read, const A&... args) {
        auto st = acquire(sql);
        if (!st) return st.error();
        resetter guard{**st};
        (*st)->borrow_values().bind_all(args...);
        std::vector<row_of<Read>> rows;
        for (;;) {
            auto row = (*st)->step();
            if (!row) return row.error();
            if (!*row) return rows;
            auto value = read_row(read, **st);
            if (!value) return value.error();
            rows.push_back(std::move(*value));
        }
    }

    // Calls `visit(const statement&)` for each row, in the order the query returns them,
    // without collecting them (for tables read whole at start).
    template <class Visit, class... A>
    result<void> for_each(std::string_view sql, Visit&& visit, const A&... args) {
        auto st = acquire(sql);
        if (!st) return st.error();
        resetter guard{**st};
        (*st)->borrow_values().bind_all(args...);
        for (;;) {
            auto row = (*st)->step();
            if (!row) return row.error();
            if (!*row) return {};
            if (auto r = visit(static_cast<const statement&>(**st)); !r) return r;
        }
    }

    connection& db() noexcept { return *db_; }

  private:
    class resetter {
      public:
        explicit resetter(statement& st) noexcept : st_(st) {}
        resetter(const resetter&) = delete;
        resetter& operator=(const resetter&) = delete;
        ~resetter() { st_.reset(); }

      private:
        statement& st_;
    };

    template <class Read>
    static result<row_of<Read>> read_row(Read& read, const statement& st) {
        if constexpr (detail::is_result_v<std::invoke_result_t<Read, const statement&>>) {
            return read(st);
        } else {
            return result<row_of<Read>>(read(st));
        }
    }

    result<statement*> acquire(std::string_view sql);
    error missing_row(std::string_view sql) const;

    connection* db_;
    std::map<std::string, statement, std::less<>> statements_;
};

// Readers for single-column rows.
inline std::int64_t read_int64(const statement& st) {
    return st.int64(0);
}
inline std::string read_text(const statement& st) {
    return st.text(0);
}

// A text column as a view into the statement's row buffer: valid until the next step or reset.
std::string_view text_view(const statement& st, int column) noexcept;

}  // namespace devlist::storage
