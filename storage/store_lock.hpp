// One writer per store: an exclusive flock(2) on "<database>.lock", taken before the database is
// opened and held for as long as the store is open.
//
// flock locks belong to an open file description, so a second acquire in the same process is
// refused just like one from another process, and the kernel releases the lock when the holder
// dies, even by SIGKILL: there is no stale lock to clean up. The file itself is never deleted
// (deleting it would let two processes lock two different files of the same name).
#pragma once

#include "devlist/error.hpp"

#include <filesystem>

namespace devlist::storage {

class store_lock {
  public:
    // Takes the lock for the database at `database` (the lock file is created 0600) and writes
    // the holder's pid into it. errc::storage_locked if another holder has it, naming its pid;
    // errc::io_error if the lock file cannot be created.
    static result<store_lock> acquire(const std::filesystem::path& database);

    store_lock(store_lock&& other) noexcept;
    store_lock& operator=(store_lock&& other) noexcept;
    store_lock(const store_lock&) = delete;
    store_lock& operator=(const store_lock&) = delete;
    ~store_lock();

    const std::filesystem::path& path() const noexcept { return path_; }

  private:
    store_lock(int fd, std::filesystem::path path) noexcept : fd_(fd), path_(std::move(path)) {}
    void release() noexcept;

    int fd_ = -1;
    std::filesystem::path path_;
};

// "<database>.lock"
std::filesystem::path lock_path_for(const std::filesystem::path& database);

}  // namespace devlist::storage
