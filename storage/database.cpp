#include "storage/database.hpp"

#include <sqlite3.h>

#include <cassert>
#include <cstdint>
#include <utility>

namespace devlist::storage {

namespace {

// SQLITE_TRANSIENT spelled without the old-style cast of its macro: SQLite copies the value.
// The cast is SQLite's own API convention.
const sqlite3_destructor_type copy_value =
    reinterpret_cast<sqlite3_destructor_type>(  // NOLINT(performance-no-int-to-ptr)
        static_cast<std::intptr_t>(-1));
// SQLITE_STATIC: SQLite reads the caller's bytes, which must outlive the binding.
constexpr sqlite3_destructor_type borrow_value = nullptr;

errc errc_of(int rc) {
    switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return errc::storage_busy;
        default:
            return errc::storage_error;
    }
}

// Statement text in messages: enough to recognise it, on one line.
std::string abbreviate(std::string_view sql) {
    std::string out;
    for (char c : sql) {
        bool space = c == '\n' || c == ' ' || c == '\t';
        if (space && (out.empty() || out.back() == ' ')) continue;
        out += space ? ' ' : c;
        if (out.size() >= 80) {
            out += "...";
            break;
        }
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

std::string database_name(sqlite3* db) {
    const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
    return file != nullptr && *file != '\0' ? file : ":memory:";
}

error make_sqlite_error(sqlite3* db, int rc, std::string_view doing) {
    std::string why = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    return error{errc_of(rc),
                 "database " + database_name(db) + ": " + std::string(doing) + ": " + why};
}

const char* synchronous_pragma(durability level) {
    return level == durability::full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL";
}

}  // namespace

// ---- connection ----

result<connection> connection::open(const std::filesystem::path& path,
                                    const open_options& options) {
    std::string name = path.string();
    sqlite3* raw = nullptr;
    // A connection is used from one thread only (the store is not thread-safe), so SQLite's
    // per-connection mutex is pure cost.
    int rc =
        sqlite3_open_v2(name.c_str(), &raw,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
    if (rc != SQLITE_OK) {
        std::string why = raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
        sqlite3_close(raw);
        return error{errc_of(rc), "cannot open database " + name + ": " + why};
    }
    connection db(raw, database_name(raw), options);
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, static_cast<int>(options.busy_timeout.count()));

    // journal_mode answers with the mode in effect: WAL can be refused (e.g. some network file
    // systems), and then neither concurrency nor our durability reasoning holds.
    auto mode = db.prepare("PRAGMA journal_mode = WAL");
    if (!mode) return mode.error();
    auto row = mode->step();
    if (!row) return row.error();
    std::string journal = *row ? mode->text(0) : std::string();
    mode->reset();
    bool in_memory = db.name_ == ":memory:";
    if (journal != "wal" && !(in_memory && journal == "memory")) {
        return error{errc::storage_error, "database " + db.name_ +
                                              ": cannot switch to WAL journal mode (got '" +
                                              journal + "'); is it on a network file system?"};
    }
    if (auto r = db.exec("PRAGMA foreign_keys = ON"); !r) return r.error();
    if (auto r = db.exec(synchronous_pragma(options.default_durability)); !r) return r.error();
    db.synchronous_ = options.default_durability;
    return db;
}

connection::connection(connection&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      name_(std::move(other.name_)),
      options_(other.options_),
      control_(std::move(other.control_)),
      synchronous_(other.synchronous_) {}

connection& connection::operator=(connection&& other) noexcept {
    if (this != &other) {
        control_ = {};  // finalized before their connection closes
        sqlite3_close(db_);
        db_ = std::exchange(other.db_, nullptr);
        name_ = std::move(other.name_);
        options_ = other.options_;
        control_ = std::move(other.control_);
        synchronous_ = other.synchronous_;
    }
    return *this;
}

connection::~connection() {
    control_ = {};
    // Statements must be finalized first (their owners outlive no connection); sqlite3_close
    // would refuse otherwise, which is a bug in the owner, not a runtime condition.
    [[maybe_unused]] int rc = sqlite3_close(db_);
    assert(rc == SQLITE_OK);
}

result<void> connection::run(control which) {
    static constexpr std::array<std::string_view, 4> sql{"BEGIN", "BEGIN IMMEDIATE", "COMMIT",
                                                         "ROLLBACK"};
    const auto index = static_cast<std::size_t>(which);
    statement& st = control_.at(index);
    if (st.native_handle() == nullptr) {
        auto prepared = prepare(sql.at(index));
        if (!prepared) return prepared.error();
        st = std::move(*prepared);
    }
    auto done = st.run();
    st.reset();
    return done;
}

result<void> connection::exec(std::string_view sql) {
    assert(db_ != nullptr);
    std::string text(sql);
    char* message = nullptr;
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &message);
    if (rc == SQLITE_OK) return {};
    std::string why = message != nullptr ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    return error{errc_of(rc), "database " + name_ + ": running '" + abbreviate(sql) + "': " + why};
}

result<statement> connection::prepare(std::string_view sql) {
    assert(db_ != nullptr);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &stmt, &tail);
    if (rc != SQLITE_OK) return make_error(rc, "preparing '" + abbreviate(sql) + "'");
    // One statement per prepare: trailing SQL would silently never run.
    assert(tail == sql.data() + sql.size() ||
           std::string_view(tail).find_first_not_of(" \t\n;") == std::string_view::npos);
    return statement(stmt);
}

std::int64_t connection::changes() const noexcept {
    return sqlite3_changes64(db_);
}

std::int64_t connection::last_insert_rowid() const noexcept {
    return sqlite3_last_insert_rowid(db_);
}

bool connection::in_transaction() const noexcept {
    return sqlite3_get_autocommit(db_) == 0;
}

error connection::make_error(int rc, std::string_view doing) const {
    return make_sqlite_error(db_, rc, doing);
}

result<void> connection::set_synchronous(durability level) {
    if (level == synchronous_) return {};
    if (auto r = exec(synchronous_pragma(level)); !r) return r.error();
    synchronous_ = level;
    return {};
}

// ---- statement ----

statement::statement(statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      bind_error_(std::move(other.bind_error_)),
      borrow_(std::exchange(other.borrow_, false)) {}

statement& statement::operator=(statement&& other) noexcept {
    if (this != &other) {
        sqlite3_finalize(stmt_);
        stmt_ = std::exchange(other.stmt_, nullptr);
        bind_error_ = std::move(other.bind_error_);
        borrow_ = std::exchange(other.borrow_, false);
    }
    return *this;
}

statement::~statement() {
    sqlite3_finalize(stmt_);
}

void statement::note_bind(int rc, int index) {
    if (rc == SQLITE_OK || bind_error_.code) return;
    bind_error_ = make_sqlite_error(
        sqlite3_db_handle(stmt_), rc,
        "binding parameter " + std::to_string(index) + " of '" + abbreviate(sql()) + "'");
}

statement& statement::fail_bind(int index, std::string_view why) {
    if (!bind_error_.code) {
        bind_error_ = error{errc::invalid_argument,
                            "database " + database_name(sqlite3_db_handle(stmt_)) +
                                ": binding parameter " + std::to_string(index) + " of '" +
                                abbreviate(sql()) + "': " + std::string(why)};
    }
    return *this;
}

statement& statement::bind(int index, std::int64_t value) {
    note_bind(sqlite3_bind_int64(stmt_, index, value), index);
    return *this;
}

statement& statement::bind(int index, std::string_view text) {
    note_bind(sqlite3_bind_text64(stmt_, index, text.data(), text.size(),
                                  borrow_ ? borrow_value : copy_value, SQLITE_UTF8),
              index);
    return *this;
}

statement& statement::bind(int index, std::span<const std::uint8_t> blob) {
    // A null pointer would bind NULL rather than an empty blob.
    static const std::uint8_t empty = 0;
    const void* data = blob.empty() ? &empty : blob.data();
    note_bind(
        sqlite3_bind_blob64(stmt_, index, data, blob.size(), borrow_ ? borrow_value : copy_value),
        index);
    return *this;
}

statement& statement::bind(int index, std::nullopt_t) {
    note_bind(sqlite3_bind_null(stmt_, index), index);
    return *this;
}

result<bool> statement::step() {
    assert(stmt_ != nullptr);
    if (bind_error_.code) return std::exchange(bind_error_, error{});
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // Reset now: the statement is unusable until then, and the error stays readable.
    error e =
        make_sqlite_error(sqlite3_db_handle(stmt_), rc, "running '" + abbreviate(sql()) + "'");
    sqlite3_reset(stmt_);
    return e;
}

result<void> statement::run() {
    for (;;) {
        auto row = step();
        if (!row) return row.error();
        if (!*row) return {};
    }
}

void statement::reset() noexcept {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    bind_error_ = error{};
    borrow_ = false;
}

int statement::column_count() const noexcept {
    return sqlite3_column_count(stmt_);
}

bool statement::is_null(int column) const noexcept {
    return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t statement::int64(int column) const noexcept {
    return sqlite3_column_int64(stmt_, column);
}

std::string statement::text(int column) const {
    const auto* data = sqlite3_column_text(stmt_, column);
    auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    if (data == nullptr) return {};
    return {reinterpret_cast<const char*>(data), size};
}

std::vector<std::uint8_t> statement::blob(int column) const {
    const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
    auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column));
    if (data == nullptr) return {};
    return {data, data + size};
}

std::optional<std::string> statement::optional_text(int column) const {
    if (is_null(column)) return std::nullopt;
    return text(column);
}

std::optional<std::int64_t> statement::optional_int64(int column) const {
    if (is_null(column)) return std::nullopt;
    return int64(column);
}

bool statement::read_only() const noexcept {
    return sqlite3_stmt_readonly(stmt_) != 0;
}

std::string_view statement::sql() const noexcept {
    const char* text = sqlite3_sql(stmt_);
    return text != nullptr ? std::string_view(text) : std::string_view();
}

// ---- transaction ----

result<transaction> transaction::begin(connection& db, durability level) {
    assert(!db.in_transaction() && "transactions do not nest");
    // The synchronous level cannot change inside a transaction ("Safety level may not be
    // changed inside a transaction"), and SQLite reads it when it writes the commit, so it is set
    // here, before BEGIN, and restored after COMMIT/ROLLBACK.
    durability wanted =
        level == durability::full ? durability::full : db.options().default_durability;
    if (auto r = db.set_synchronous(wanted); !r) return r.error();
    if (auto r = db.run(connection::control::begin_immediate); !r) {
        (void)db.set_synchronous(db.options().default_durability);
        return r.error();
    }
    return transaction(db, level);
}

transaction::transaction(transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), level_(other.level_) {}

transaction::~transaction() {
    if (db_ == nullptr) return;
    if (db_->in_transaction()) {
        // ROLLBACK only fails when no transaction is open (SQLite may already have rolled back
        // after an I/O error); either way nothing of this transaction remains.
        (void)db_->run(connection::control::rollback);
    }
    restore_synchronous();
}

result<void> transaction::commit() {
    assert(db_ != nullptr && "commit() called twice");
    if (auto r = db_->run(connection::control::commit); !r) {
        return r.error();  // the destructor rolls back
    }
    restore_synchronous();
    db_ = nullptr;
    return {};
}

void transaction::restore_synchronous() noexcept {
    // Should this fail (it cannot outside a transaction), the next begin() sets the level it
    // needs anyway: connection::synchronous_ still holds the level in effect.
    (void)db_->set_synchronous(db_->options().default_durability);
}

// ---- read_transaction ----

result<read_transaction> read_transaction::begin(connection& db) {
    if (db.in_transaction()) return read_transaction(nullptr);
    if (auto r = db.run(connection::control::begin); !r) return r.error();
    return read_transaction(&db);
}

read_transaction::read_transaction(read_transaction&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)) {}

read_transaction::~read_transaction() {
    if (db_ == nullptr || !db_->in_transaction()) return;
    // Nothing was written, so COMMIT only ends the snapshot; should it fail all the same,
    // ROLLBACK does the same.
    if (!db_->run(connection::control::commit)) (void)db_->run(connection::control::rollback);
}

}  // namespace devlist::storage
