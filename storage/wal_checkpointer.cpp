#include "storage/wal_checkpointer.hpp"

#include <sqlite3.h>

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>

namespace devlist::storage {

namespace {
constexpr int sqlite_default_autocheckpoint = 1000;  // pages (SQLITE_DEFAULT_WAL_AUTOCHECKPOINT)
}  // namespace

struct wal_checkpointer::state {
    sqlite3* writer = nullptr;
    connection own;  // the thread's connection; used by the thread only
    checkpoint_options options;

    mutable std::mutex mutex;
    std::condition_variable wake;
    bool wanted = false;
    bool stopping = false;
    checkpoint_counters counters;

    std::thread thread;

    state(sqlite3* w, connection c, checkpoint_options o)
        : writer(w), own(std::move(c)), options(o) {}

    // Called by SQLite on the writer's thread after each commit, with the log's size in pages.
    static int on_commit(void* self, sqlite3* db, const char* name, int pages) {
        auto* s = static_cast<state*>(self);
        if (pages >= s->options.inline_after_pages) {
            const int rc =
                sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            std::lock_guard lock(s->mutex);
            ++(rc == SQLITE_OK ? s->counters.inline_ : s->counters.failed);
        } else if (pages >= s->options.wake_after_pages) {
            {
                std::lock_guard lock(s->mutex);
                s->wanted = true;
            }
            s->wake.notify_one();
        }
        return SQLITE_OK;
    }

    void run() {
        std::unique_lock lock(mutex);
        for (;;) {
            wake.wait(lock, [this] { return wanted || stopping; });
            if (stopping) return;
            wanted = false;
            lock.unlock();
            // PASSIVE: copies what no reader still needs, never waits for the writer or readers.
            const int rc = sqlite3_wal_checkpoint_v2(own.native_handle(), nullptr,
                                                     SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
            lock.lock();
            ++(rc == SQLITE_OK ? counters.background : counters.failed);
        }
    }
};

result<wal_checkpointer> wal_checkpointer::start(connection& writer,
                                                 const std::filesystem::path& path,
                                                 checkpoint_options options) {
    auto own = connection::open(path, writer.options());
    if (!own) return own.error();
    // The thread's connection writes nothing, so it must not checkpoint on its own either.
    sqlite3_wal_autocheckpoint(own->native_handle(), 0);
    auto s = std::make_unique<state>(writer.native_handle(), std::move(*own), options);
    // Replaces the writer's automatic checkpoint (sqlite3_wal_autocheckpoint is a WAL hook too).
    sqlite3_wal_hook(s->writer, &state::on_commit, s.get());
    s->thread = std::thread([p = s.get()] { p->run(); });
    return wal_checkpointer(std::move(s));
}

wal_checkpointer::wal_checkpointer(std::unique_ptr<state> s) noexcept : state_(std::move(s)) {}
wal_checkpointer::wal_checkpointer(wal_checkpointer&&) noexcept = default;

wal_checkpointer::~wal_checkpointer() {
    if (!state_) return;
    // The writer checkpoints by itself again, at SQLite's default threshold, from here on.
    sqlite3_wal_autocheckpoint(state_->writer, sqlite_default_autocheckpoint);
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
    }
    state_->wake.notify_one();
    state_->thread.join();
}

checkpoint_counters wal_checkpointer::counters() const {
    std::lock_guard lock(state_->mutex);
    return state_->counters;
}

}  // namespace devlist::storage
