#include "storage/store_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <string>
#include <system_error>
#include <utility>

namespace devlist::storage {

namespace {

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

// The pid a holder wrote into the lock file, or "unknown" (it may be between truncate and write).
std::string read_holder_pid(int fd) {
    std::array<char, 32> buffer{};
    ssize_t n = ::pread(fd, buffer.data(), buffer.size() - 1, 0);
    if (n <= 0) return "unknown";
    long pid = 0;
    auto [end, ec] = std::from_chars(buffer.data(), buffer.data() + n, pid);
    if (ec != std::errc() || pid <= 0) return "unknown";
    return std::to_string(pid);
}

}  // namespace

std::filesystem::path lock_path_for(const std::filesystem::path& database) {
    std::filesystem::path lock = database;
    lock += ".lock";
    return lock;
}

result<store_lock> store_lock::acquire(const std::filesystem::path& database) {
    std::filesystem::path path = lock_path_for(database);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        int err = errno;
        return error{errc::io_error,
                     "cannot create lock file " + path.string() + ": " + errno_text(err)};
    }
    store_lock lock(fd, path);
    int rc = 0;
    do {
        rc = ::flock(fd, LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            return error{errc::storage_locked,
                         "database " + database.string() + " is in use by another devlistd (pid " +
                             read_holder_pid(fd) + "); stop it first or use a different database"};
        }
        return error{errc::io_error, "cannot lock " + path.string() + ": " + errno_text(err)};
    }
    // The pid is only for the message a second instance prints; the lock is the flock.
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
        int err = errno;
        return error{errc::io_error,
                     "cannot write pid into lock file " + path.string() + ": " + errno_text(err)};
    }
    return lock;
}

store_lock::store_lock(store_lock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

store_lock& store_lock::operator=(store_lock&& other) noexcept {
    if (this != &other) {
        release();
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
    }
    return *this;
}

store_lock::~store_lock() {
    release();
}

void store_lock::release() noexcept {
    if (fd_ < 0) return;
    // Closing the last descriptor of the open file description releases the flock. The pid is
    // left in the file: the next holder overwrites it, and no one reads it without the lock
    // being held.
    ::close(fd_);
    fd_ = -1;
}

}  // namespace devlist::storage
