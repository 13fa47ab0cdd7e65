// Checkpoints of the write-ahead log, on a thread of their own.
//
// SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past its threshold: it
// copies the log into the database file and syncs it, on the thread that committed. In devlistd
// that is the io thread, so every thousand pages or so the sync loop and the socket stalled for
// the copy and an fsync (measured: a 13 MB /keys/query answer stored in slices spent 0.8 s of
// its 3.4 s waiting in checkpoints, and a socket lookup during it waited up to tens of ms).
//
// Here the connection's automatic checkpoint is replaced by a WAL hook that only wakes a thread;
// the thread runs PASSIVE checkpoints on its own connection, which never block the writer or
// its readers. Should that thread fall far behind (the log beyond `inline_after_pages`), the
// committing connection checkpoints itself, as SQLite would, so the log stays bounded.
// Durability is unchanged: a commit is as durable as its synchronous level makes it, and a crash
// during a checkpoint is one SQLite recovers from.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>

#include "devlist/error.hpp"
#include "storage/database.hpp"

namespace devlist::storage {

struct checkpoint_options {
    // WAL pages after which a commit wakes the checkpoint thread (SQLite's default threshold).
    int wake_after_pages = 1000;
    // WAL pages after which the committing connection checkpoints itself.
    int inline_after_pages = 16000;
};

struct checkpoint_counters {
    std::uint64_t background = 0;  // checkpoints run by the thread
    std::uint64_t inline_ = 0;     // checkpoints the writer ran itself (the thread fell behind)
    std::uint64_t failed = 0;      // checkpoints that returned an error (retried at the next wake)
};

class wal_checkpointer {
  public:
    // Opens a second connection to `path` (a database in WAL mode, `writer` its writing
    // connection), installs the hook on `writer` and starts the thread. `writer` must outlive
    // the checkpointer.
    static result<wal_checkpointer> start(connection& writer, const std::filesystem::path& path,
                                          checkpoint_options options = {});

    wal_checkpointer(wal_checkpointer&&) noexcept;
    wal_checkpointer& operator=(wal_checkpointer&&) = delete;
    wal_checkpointer(const wal_checkpointer&) = delete;
    wal_checkpointer& operator=(const wal_checkpointer&) = delete;
    // Removes the hook (the writer checkpoints automatically again) and joins the thread.
    ~wal_checkpointer();

    checkpoint_counters counters() const;

    struct state;

  private:
    explicit wal_checkpointer(std::unique_ptr<state> s) noexcept;
    std::unique_ptr<state> state_;
};

}  // namespace devlist::storage
