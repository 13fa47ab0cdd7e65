// Helpers shared by the storage tests: temporary directories, stores, child processes and
// pipes for the crash and lock tests, and a tracer of the synchronous level per statement.
#pragma once

#include "storage/database.hpp"
#include "storage/store.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace devlist::storage::testing {

// A fresh directory under the system temp directory, removed with everything in it.
class temp_dir {
  public:
    temp_dir() {
        std::string pattern =
            (std::filesystem::temp_directory_path() / "devlist-storage-XXXXXX").string();
        if (::mkdtemp(pattern.data()) == nullptr) std::abort();
        path_ = pattern;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path file(std::string_view name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

// Key IDs for tests: the counter value in decimal.
inline std::string test_key_id(std::int64_t value) {
    return "k" + std::to_string(value);
}

inline std::vector<std::uint8_t> bytes(std::string_view text) {
    return {text.begin(), text.end()};
}

// The value of a single-value query, e.g. "PRAGMA synchronous".
inline std::int64_t query_int(connection& db, std::string_view sql) {
    auto st = db.prepare(sql);
    if (!st) ADD_FAILURE() << st.error().message();
    if (!st) return -1;
    auto row = st->step();
    if (!row || !*row) ADD_FAILURE() << "no row from " << sql;
    if (!row || !*row) return -1;
    return st->int64(0);
}

inline std::string query_text(connection& db, std::string_view sql) {
    auto st = db.prepare(sql);
    if (!st) ADD_FAILURE() << st.error().message();
    if (!st) return {};
    auto row = st->step();
    if (!row || !*row) ADD_FAILURE() << "no row from " << sql;
    if (!row || !*row) return {};
    return st->text(0);
}

// A pipe whose ends close with it.
class pipe_pair {
  public:
    pipe_pair() {
        if (::pipe(fds_) != 0) std::abort();
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() {
        close_read();
        close_write();
    }
    int read_end() const { return fds_[0]; }
    int write_end() const { return fds_[1]; }
    void close_read() { close_fd(fds_[0]); }
    void close_write() { close_fd(fds_[1]); }

    // Blocks until one byte arrives; false at end of file (the writer went away).
    bool wait_byte() const {
        char byte = 0;
        ssize_t n = 0;
        do {
            n = ::read(fds_[0], &byte, 1);
        } while (n < 0 && errno == EINTR);
        return n == 1;
    }
    void send_byte() const {
        char byte = 1;
        if (::write(fds_[1], &byte, 1) != 1) std::abort();
    }

  private:
    static void close_fd(int& fd) {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
    int fds_[2] = {-1, -1};
};

// Runs `body` in a forked child that exits with its return value, never returning into the
// test framework.
inline pid_t fork_child(const std::function<int()>& body) {
    pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) ::_exit(body());
    return pid;
}

// The child's exit code, or -signal if a signal ended it.
inline int wait_child(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
        if (errno != EINTR) return -1000;
    }
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return -WTERMSIG(status);
    return -1000;
}

// Records every statement the connection runs, with the synchronous level in effect: the level
// SQLite applies at COMMIT is the one the statements "PRAGMA synchronous = …" set last.
class synchronous_tracer {
  public:
    struct traced {
        std::string level;  // "NORMAL" or "FULL"
        std::string sql;
    };

    explicit synchronous_tracer(connection& db, std::string initial_level = "NORMAL")
        : db_(db.native_handle()), level_(std::move(initial_level)) {
        sqlite3_trace_v2(db_, SQLITE_TRACE_STMT, &on_statement, this);
    }
    synchronous_tracer(const synchronous_tracer&) = delete;
    synchronous_tracer& operator=(const synchronous_tracer&) = delete;
    ~synchronous_tracer() { sqlite3_trace_v2(db_, 0, nullptr, nullptr); }

    const std::vector<traced>& statements() const { return statements_; }
    const std::string& level() const { return level_; }

    // The levels in effect for statements containing `fragment` (one entry per statement).
    std::vector<std::string> levels_of(std::string_view fragment) const {
        std::vector<std::string> levels;
        for (const traced& t : statements_) {
            if (t.sql.find(fragment) != std::string::npos) levels.push_back(t.level);
        }
        return levels;
    }

  private:
    static int on_statement(unsigned, void* self, void*, void* text) {
        auto* tracer = static_cast<synchronous_tracer*>(self);
        std::string sql = static_cast<const char*>(text);
        constexpr std::string_view pragma = "PRAGMA synchronous = ";
        if (sql.starts_with(pragma)) tracer->level_ = sql.substr(pragma.size());
        tracer->statements_.push_back({tracer->level_, std::move(sql)});
        return 0;
    }

    sqlite3* db_;
    std::string level_;
    std::vector<traced> statements_;
};

// The value of a result that must hold one (a failure is reported and a default value returned).
template <class T>
T must(result<T> r) {
    if (!r) {
        ADD_FAILURE() << r.error().message();
        return T{};
    }
    return std::move(*r);
}

inline void must(const result<void>& r) {
    if (!r) ADD_FAILURE() << r.error().message();
}

// Number of prepared statements alive on the connection.
inline int prepared_statements(connection& db) {
    int count = 0;
    for (sqlite3_stmt* st = sqlite3_next_stmt(db.native_handle(), nullptr); st != nullptr;
         st = sqlite3_next_stmt(db.native_handle(), st)) {
        ++count;
    }
    return count;
}

// A fresh in-memory store per test.
class StoreTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto opened = store::open(":memory:");
        ASSERT_TRUE(opened) << opened.error().message();
        store_.emplace(std::move(*opened));
    }
    store& db() { return *store_; }

    // Tracks `user_id` (encrypted room), outdated, with `generation`.
    void track(const std::string& user_id, std::int64_t generation = 1) {
        sync_batch batch;
        batch.tracked_users.push_back({user_id, server_of(user_id),
                                       tracking_reasons{.encrypted_room = true}, true, generation});
        must(db().sync().apply_sync_batch(batch));
    }
    void untrack(const std::string& user_id) {
        sync_batch batch;
        batch.untracked_users.push_back(user_id);
        must(db().sync().apply_sync_batch(batch));
    }

    static std::string server_of(const std::string& user_id) {
        return user_id.substr(user_id.find(':') + 1);
    }

    // A verified master key of `user_id`, as a query result carries it.
    static cross_signing_key master_key(const std::string& user_id,
                                        const std::string& public_key = "M",
                                        const std::string& signed_json = "{}",
                                        bool verified = true) {
        return cross_signing_key{.user_id = user_id,
                                 .usage = key_usage::master,
                                 .public_key = public_key,
                                 .signed_json = signed_json,
                                 .verified = verified};
    }

    static device_record device(const std::string& user_id, const std::string& device_id,
                                const std::string& tag = "1") {
        return device_record{
            .user_id = user_id,
            .device_id = device_id,
            .ed25519 = "ed-" + device_id + "-" + tag,
            .curve25519 = "cv-" + device_id + "-" + tag,
            .display_name = "phone " + device_id,
            .signed_json = R"({"device_id":")" + device_id + R"(","tag":")" + tag + "\"}",
            .cross_signed = false,
        };
    }

    // A /keys/query answer for one user.
    static query_result answer(const std::string& user_id, std::int64_t generation_at_send,
                               std::vector<device_record> devices, timestamp_ms at = 5000) {
        query_result result;
        result.at = at;
        result.users.push_back(user_query_result{.user_id = user_id,
                                                 .generation_at_send = generation_at_send,
                                                 .clear_outdated = true,
                                                 .devices = std::move(devices),
                                                 .cross_signing_keys = std::nullopt});
        return result;
    }

    std::vector<outbox_event> outbox_events() { return must(db().outbox().read_after(0, 1000)); }

    std::optional<store> store_;
};

}  // namespace devlist::storage::testing
