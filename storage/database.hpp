// RAII wrappers over the SQLite C API: connection, statement, transaction.
//
// Every fallible call returns devlist::result; SQLITE_BUSY and SQLITE_LOCKED become
// errc::storage_busy, every other SQLite failure errc::storage_error, and the detail names the
// database, what was being done and SQLite's own message.
//
// Thread-safety: none of these types may be used from two threads at once. The project keeps one
// writer connection on the io thread (STYLE.md), so there is nothing to share.
//
// Durability of commits. Writes of more than one statement go through
// `transaction::begin(db, durability)`; a single statement outside a transaction commits on its
// own at the connection's default level (normal). SQLite refuses to change the synchronous
// level inside a transaction and applies the level in effect when COMMIT writes the WAL, so
// begin() sets it just before BEGIN and the transaction restores it after COMMIT or ROLLBACK.
//
// - durability::normal — WAL with synchronous=NORMAL: a commit survives a crash of the process,
//   but the last commits before a power loss or kernel crash may roll back (never corrupt).
//   Used for sync batches (a lost batch is replayed by the server from the older `since` token,
//   which is stored in the same transaction), /keys/query results (the users stay outdated and
//   are queried again), outbox/log appends, and flags whose loss only causes an idempotent retry
//   (e.g. "published", "uploaded": the same bytes are uploaded again).
// - durability::full — synchronous=FULL for that one transaction, so SQLite syncs the WAL at
//   COMMIT: the commit survives power loss. Used for everything that creates private key
//   material which may be uploaded (identity, one-time, fallback and cross-signing keys): if the
//   upload happened but the commit were lost, the server would hand out public keys whose
//   private parts no longer exist.
#pragma once

#include "devlist/error.hpp"

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace devlist::storage {

enum class durability {
    normal,  // survives a crash of the process (WAL + synchronous=NORMAL)
    full,    // also survives power loss (WAL synced at COMMIT: synchronous=FULL)
};

struct open_options {
    // How long a statement waits for a lock held by another connection before it fails with
    // errc::storage_busy.
    std::chrono::milliseconds busy_timeout{5000};
    // The synchronous level outside of durability::full transactions.
    durability default_durability = durability::normal;
};

class connection;

// A prepared statement. Parameters are 1-based, columns 0-based (as in SQLite). It must be
// destroyed before its connection.
//
// bind() never fails on the spot: the first binding error is remembered and returned by the next
// step(), so that a sequence of binds reads as one expression.
class statement {
  public:
    statement() = default;
    statement(statement&& other) noexcept;
    statement& operator=(statement&& other) noexcept;
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;
    ~statement();

    statement& bind(int index, std::int64_t value);
    statement& bind(int index, std::string_view text);
    statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
    statement& bind(int index, const std::string& text) {
        return bind(index, std::string_view(text));
    }
    statement& bind(int index, std::span<const std::uint8_t> blob);
    statement& bind(int index, const std::vector<std::uint8_t>& blob) {
        return bind(index, std::span<const std::uint8_t>(blob));
    }
    statement& bind(int index, std::nullopt_t);
    template <std::integral I>
    requires(!std::same_as<I, std::int64_t>) statement& bind(int index, I value) {
        if constexpr (std::is_unsigned_v<I> && sizeof(I) >= sizeof(std::int64_t)) {
            if (value > static_cast<I>(std::numeric_limits<std::int64_t>::max())) {
                return fail_bind(index, "integer too large");
            }
        }
        return bind(index, static_cast<std::int64_t>(value));
    }
    template <class T>
    statement& bind(int index, const std::optional<T>& value) {
        if (value) return bind(index, *value);
        return bind(index, std::nullopt);
    }
    // Until the next reset(), text and blobs are bound without a copy: the caller keeps them
    // alive and unchanged until then (statement_cache, whose calls bind, run and reset with
    // their arguments alive throughout). Copying every value cost an eighth of a 50,000-row
    // tracking write.
    statement& borrow_values() noexcept {
        borrow_ = true;
        return *this;
    }
    // Binds the arguments to parameters 1, 2, … in order.
    template <class... A>
    statement& bind_all(const A&... args) {
        int index = 0;
        (bind(++index, args), ...);
        return *this;
    }

    // Runs one step: true if a row is available, false when done.
    result<bool> step();
    // Steps until done, ignoring rows (for INSERT/UPDATE/DELETE).
    result<void> run();
    // Makes the statement ready to run again and clears all bindings. Also releases the read
    // snapshot a half-read SELECT holds.
    void reset() noexcept;

    int column_count() const noexcept;
    bool is_null(int column) const noexcept;
    std::int64_t int64(int column) const noexcept;
    bool boolean(int column) const noexcept { return int64(column) != 0; }
    std::string text(int column) const;
    std::vector<std::uint8_t> blob(int column) const;
    std::optional<std::string> optional_text(int column) const;
    std::optional<std::int64_t> optional_int64(int column) const;

    // True for statements that do not write (SELECT, most PRAGMAs).
    bool read_only() const noexcept;
    std::string_view sql() const noexcept;
    sqlite3_stmt* native_handle() const noexcept { return stmt_; }

  private:
    friend class connection;
    explicit statement(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    statement& fail_bind(int index, std::string_view why);
    void note_bind(int rc, int index);

    sqlite3_stmt* stmt_ = nullptr;
    // The first binding error since the last step or reset; an empty code means none.
    error bind_error_;
    bool borrow_ = false;
};

class connection {
  public:
    // Opens (creating if needed) the database at `path` in WAL mode with foreign keys enforced.
    // ":memory:" opens a private in-memory database (journal mode "memory"; for tests).
    static result<connection> open(const std::filesystem::path& path,
                                   const open_options& options = {});

    connection(connection&& other) noexcept;
    connection& operator=(connection&& other) noexcept;
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;
    ~connection();

    // Runs one or more SQL statements that return no rows of interest.
    result<void> exec(std::string_view sql);
    // The statements that open and end transactions, prepared once per connection: exec()
    // would parse them on every call, and every socket lookup opens and ends a read
    // transaction.
    enum class control { begin, begin_immediate, commit, rollback };
    result<void> run(control which);
    result<statement> prepare(std::string_view sql);

    // Rows changed by the last INSERT/UPDATE/DELETE.
    std::int64_t changes() const noexcept;
    std::int64_t last_insert_rowid() const noexcept;
    bool in_transaction() const noexcept;

    // The database as named in messages.
    const std::string& name() const noexcept { return name_; }
    const open_options& options() const noexcept { return options_; }
    sqlite3* native_handle() const noexcept { return db_; }

    // An error for the SQLite result code `rc` of the last call on this connection: "database
    // <name>: <doing>: <SQLite message>".
    error make_error(int rc, std::string_view doing) const;

  private:
    friend class transaction;
    connection(sqlite3* db, std::string name, const open_options& options) noexcept
        : db_(db), name_(std::move(name)), options_(options) {}
    result<void> set_synchronous(durability level);

    sqlite3* db_ = nullptr;
    std::string name_;
    open_options options_;
    std::array<statement, 4> control_{};  // by control; prepared on first use
    // The synchronous level last set, so that begin() only issues the pragma when it changes.
    durability synchronous_ = durability::normal;
};

// A BEGIN IMMEDIATE transaction: takes the write lock at once (so a busy database fails here, not
// halfway through), rolls back in its destructor unless committed.
class transaction {
  public:
    static result<transaction> begin(connection& db, durability level);

    transaction(transaction&& other) noexcept;
    transaction& operator=(transaction&&) = delete;
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    ~transaction();

    result<void> commit();
    durability level() const noexcept { return level_; }

  private:
    transaction(connection& db, durability level) noexcept : db_(&db), level_(level) {}
    // Back to the connection's default synchronous level once no transaction is open (SQLite
    // refuses to change it inside one).
    void restore_synchronous() noexcept;

    connection* db_ = nullptr;
    durability level_;
};

// A read transaction (BEGIN … COMMIT around reads only): the reads inside it see one snapshot
// of the database, and SQLite takes and drops its read lock once for all of them instead of once
// a statement. It ends in its destructor. Begun inside a transaction already open it does
// nothing: that one is the snapshot. No write transaction may begin while it lives.
class read_transaction {
  public:
    static result<read_transaction> begin(connection& db);

    read_transaction(read_transaction&& other) noexcept;
    read_transaction& operator=(read_transaction&&) = delete;
    read_transaction(const read_transaction&) = delete;
    read_transaction& operator=(const read_transaction&) = delete;
    ~read_transaction();

  private:
    explicit read_transaction(connection* db) noexcept : db_(db) {}

    connection* db_ = nullptr;  // nullptr: nothing of ours to end
};

// Runs `body` (which returns a result) in a transaction and commits if it succeeded; on failure
// the transaction rolls back and body's error is returned.
template <class Body>
auto with_transaction(connection& db, durability level, Body&& body)
    -> std::invoke_result_t<Body&> {
    auto tx = transaction::begin(db, level);
    if (!tx) return tx.error();
    auto outcome = body();
    if (!outcome) return outcome;
    if (auto committed = tx->commit(); !committed) return committed.error();
    return outcome;
}

}  // namespace devlist::storage
