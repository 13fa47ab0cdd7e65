// The service manager's end of the notify protocol (sd_notify(3)) for end-to-end tests: a
// datagram socket whose path a test puts in the daemon's NOTIFY_SOCKET, and the messages the
// daemon sends there, each with the time it arrived.
//
// A reader thread takes every datagram as it comes, as systemd does: the kernel queues only a
// few (net.unix.max_dgram_qlen, often 10) before the sender's sd_notify() blocks. Waiting never
// sleeps: a condition variable wakes waiters when a message arrives.
//
// Thread-safety: every member may be called from any thread; one test thread at a time moves
// the read position (next, wait_for).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace devlist::test {

struct notify_message {
    std::string text;  // "READY=1\nSTATUS=..." as sent
    std::chrono::steady_clock::time_point read_at;

    // Whether one of its lines is exactly `line` ("READY=1").
    bool has(std::string_view line) const;
    // The value of a "KEY=value" line ("STATUS"), if there is one.
    std::optional<std::string> value(std::string_view key) const;
};

class notify_listener {
  public:
    using clock = std::chrono::steady_clock;

    // Binds a datagram socket at `path` and starts reading. Throws std::system_error if it
    // cannot.
    explicit notify_listener(std::filesystem::path path);
    ~notify_listener();
    notify_listener(const notify_listener&) = delete;
    notify_listener& operator=(const notify_listener&) = delete;

    const std::filesystem::path& path() const noexcept { return path_; }

    // The next message after the read position, waiting for it until the deadline.
    std::optional<notify_message> next(clock::time_point deadline);
    // Moves the read position until a message matches (returned) or the deadline passes.
    std::optional<notify_message> wait_for(const std::function<bool(const notify_message&)>& match,
                                           clock::time_point deadline);
    // Waits until every datagram the kernel holds for the socket has been taken, e.g. those a
    // process sent before it ended.
    void drain();
    // Every message that arrived so far, in order (whatever the read position).
    std::vector<notify_message> received() const;
    // How many messages arrived so far.
    std::size_t count() const;

  private:
    void read_loop();

    std::filesystem::path path_;
    int fd_ = -1;
    int stop_ = -1;  // an eventfd that ends the reader

    mutable std::mutex mutex_;
    std::condition_variable arrived_;
    std::vector<notify_message> received_;  // guarded by mutex_
    std::size_t position_ = 0;              // guarded by mutex_
    std::thread reader_;
};

}  // namespace devlist::test
