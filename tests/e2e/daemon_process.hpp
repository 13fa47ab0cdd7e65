// A real program (devlistd, devlistctl, ...) run as a child process of an end-to-end test: its
// standard output and error are captured (in memory, for assertions, and in a log file, for the
// post-mortem), and the test can signal it and wait for its end with a deadline.
//
// Waiting never sleeps: the end of the process is watched through a pidfd (pidfd_open + poll)
// and new output wakes waiters through a condition variable.
//
// The child dies with the thread that started it (PR_SET_PDEATHSIG: SIGKILL), so a test that
// crashes or is killed by ctest's timeout leaves no daemon behind. Start processes from the
// test's own thread, not from a helper thread that ends before the process should.
//
// Thread-safety: output() and wait_for_output() may be called from any thread; signalling and
// waiting for the exit belong to one thread at a time.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <iosfwd>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace devlist::test {

// How a process ended.
struct process_exit {
    bool signalled = false;  // killed by a signal rather than exited
    int code = 0;            // the exit status, or the signal's number when signalled

    bool exited_with(int status) const noexcept { return !signalled && code == status; }
    bool killed_by(int signal) const noexcept { return signalled && code == signal; }
    std::string describe() const;  // "exit status 0", "signal 9 (SIGKILL)"
    friend bool operator==(const process_exit&, const process_exit&) = default;
};
std::ostream& operator<<(std::ostream& out, const process_exit& e);  // for test messages

struct process_options {
    std::filesystem::path executable;
    std::vector<std::string> arguments{};  // argv[1...]; argv[0] is the executable's path
    // Variables set (a value) or removed (nullopt) in the child; the others are inherited from
    // the test process.
    std::map<std::string, std::optional<std::string>> environment{};
    // Standard output and error, interleaved as written, are appended here; empty: memory only.
    std::filesystem::path log_file{};
};

// How a test runs devlistd: `--config config`, output also appended to log_file, the failpoint
// set for this run only (never inherited from the test's environment), and the systemd
// variables removed: they would make devlistd talk to a service manager that runs the test,
// and journald's line format would replace the plain one.
process_options devlistd_options(std::filesystem::path executable,
                                 const std::filesystem::path& config,
                                 std::filesystem::path log_file,
                                 std::optional<std::string> failpoint = std::nullopt);

class daemon_process {
  public:
    using clock = std::chrono::steady_clock;

    // Starts the program. Throws std::system_error if it cannot be started (including when
    // the executable cannot be executed: the child reports exec's error before it is gone).
    explicit daemon_process(process_options options);
    // Kills (SIGKILL) and reaps the process if it is still running.
    ~daemon_process();
    daemon_process(const daemon_process&) = delete;
    daemon_process& operator=(const daemon_process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    const process_options& options() const noexcept { return options_; }

    // Sends a signal; nothing once the process has been reaped.
    void send_signal(int signal);

    // The way the process ended, waiting until it does or the deadline passes (nullopt).
    // Once it has ended, the captured output is complete (up to the deadline: output that a
    // grandchild still writes to the inherited pipe is not waited for past it).
    std::optional<process_exit> wait_exit(clock::time_point deadline);
    // SIGTERM, then wait_exit(deadline): a clean stop is exit status 0, a program that had no
    // handler installed yet dies of signal 15.
    std::optional<process_exit> terminate(clock::time_point deadline);
    // SIGKILL, then waits for the end, which the kernel does not let the process delay.
    process_exit kill();

    // Everything the process wrote so far.
    std::string output() const;
    // Waits until `done(output so far)` holds (true), the deadline passes or the process has
    // closed its output without `done` holding (false). `done` runs with the output's lock
    // held: it must not call back into this object.
    bool wait_for_output(const std::function<bool(std::string_view)>& done,
                         clock::time_point deadline) const;
    // Whether the output holds `needle`, waiting as wait_for_output() does.
    bool wait_for_output(std::string_view needle, clock::time_point deadline) const;

  private:
    void read_output(int pipe, int log_file);

    process_options options_;
    pid_t pid_ = -1;
    int pidfd_ = -1;
    int wake_reader_ = -1;  // an eventfd that tells the reader thread to stop
    std::optional<process_exit> exit_;

    mutable std::mutex mutex_;
    mutable std::condition_variable output_changed_;
    std::string output_;          // guarded by mutex_
    bool output_closed_ = false;  // guarded by mutex_
    std::thread reader_;
};

}  // namespace devlist::test
