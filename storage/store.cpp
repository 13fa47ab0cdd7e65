#include "storage/store.hpp"

#include "storage/migrations.hpp"
#include "storage/store_lock.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>
#include <system_error>

namespace devlist::storage {

// Declaration order is construction order: lock, connection, stores, checkpointer; destruction
// runs backwards, so the checkpoint thread stops and statements are finalized before the
// connection closes, and the lock goes last.
struct store::parts {
    std::filesystem::path path;
    std::optional<store_lock> lock;
    connection db;
    security_log security{db};
    event_outbox outbox{db};
    account_store account{db};
    sync_store sync{db, outbox};
    tracking_store tracking{db};
    device_store devices{db, outbox, security};
    one_time_key_store one_time_keys{db};
    fallback_key_store fallback_keys{db};
    own_cross_signing_store own_cross_signing{db};
    std::optional<wal_checkpointer> checkpointer;

    parts(std::filesystem::path p, std::optional<store_lock> l, connection c) noexcept
        : path(std::move(p)), lock(std::move(l)), db(std::move(c)) {}
};

namespace {

// SQLite creates the database with the umask's mode, and its -wal and -shm files copy the
// database's mode. Sealed private keys or not, the file is for devlistd alone: create it 0600.
result<void> create_private_file(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        return error{errc::io_error, "cannot create database " + path.string() + ": " +
                                         std::generic_category().message(err)};
    }
    ::close(fd);
    return {};
}

}  // namespace

result<store> store::open(const std::filesystem::path& path, const store_options& options) {
    std::optional<store_lock> lock;
    if (path != ":memory:") {
        auto taken = store_lock::acquire(path);
        if (!taken) return taken.error();
        lock.emplace(std::move(*taken));
        if (auto r = create_private_file(path); !r) return r.error();
    }
    auto db = connection::open(path, options.database);
    if (!db) return db.error();
    if (auto r = migrate(*db); !r) return r.error();
    auto p = std::make_unique<parts>(path, std::move(lock), std::move(*db));
    if (path != ":memory:") {
        auto started = wal_checkpointer::start(p->db, path, options.checkpoints);
        if (!started) return started.error();
        p->checkpointer.emplace(std::move(*started));
    }
    return store(std::move(p));
}

store::store(std::unique_ptr<parts> p) noexcept : parts_(std::move(p)) {}
store::store(store&&) noexcept = default;
store& store::operator=(store&&) noexcept = default;
store::~store() = default;

account_store& store::account() noexcept {
    return parts_->account;
}
sync_store& store::sync() noexcept {
    return parts_->sync;
}
tracking_store& store::tracking() noexcept {
    return parts_->tracking;
}
device_store& store::devices() noexcept {
    return parts_->devices;
}
one_time_key_store& store::one_time_keys() noexcept {
    return parts_->one_time_keys;
}
fallback_key_store& store::fallback_keys() noexcept {
    return parts_->fallback_keys;
}
own_cross_signing_store& store::own_cross_signing() noexcept {
    return parts_->own_cross_signing;
}
event_outbox& store::outbox() noexcept {
    return parts_->outbox;
}
security_log& store::security() noexcept {
    return parts_->security;
}

result<read_transaction> store::begin_read() {
    return read_transaction::begin(database());
}

connection& store::database() noexcept {
    return parts_->db;
}
const std::filesystem::path& store::path() const noexcept {
    return parts_->path;
}
checkpoint_counters store::checkpoints() const {
    return parts_->checkpointer ? parts_->checkpointer->counters() : checkpoint_counters{};
}

}  // namespace devlist::storage
