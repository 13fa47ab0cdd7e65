#include "tests/e2e/daemon_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <ostream>
#include <stdexcept>
#include <system_error>
#include <utility>

extern char** environ;

namespace devlist::test {
namespace {

[[noreturn]] void throw_errno(const std::string& what) {
    throw std::system_error(errno, std::generic_category(), what);
}

// Owns a file descriptor until it is released to another owner.
class unique_fd {
  public:
    explicit unique_fd(int fd = -1) noexcept : fd_(fd) {}
    ~unique_fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd& operator=(unique_fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = other.release();
        }
        return *this;
    }
    int get() const noexcept { return fd_; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_;
};

struct pipe_fds {
    unique_fd read;
    unique_fd write;
};

pipe_fds make_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno("pipe2");
    return {unique_fd(fds[0]), unique_fd(fds[1])};
}

// Milliseconds until `deadline` for poll(2): never negative, rounded up (so that a wait does
// not end just before its deadline and spin), at most INT_MAX.
int poll_timeout(std::chrono::steady_clock::time_point deadline) {
    const auto left = deadline - std::chrono::steady_clock::now();
    if (left <= std::chrono::steady_clock::duration::zero()) return 0;
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
    return static_cast<int>(std::min<std::chrono::milliseconds::rep>(ms, INT_MAX));
}

// Tells the parent (through the report pipe) why the child cannot become the program, and ends.
[[noreturn]] void report_and_exit(int report) {
    const int error = errno;
    [[maybe_unused]] auto n = ::write(report, &error, sizeof error);
    ::_exit(127);
}

// Runs in the child between fork and exec. The test process has other threads (the test
// homeserver's, at least), so only async-signal-safe calls are allowed here: no allocation, no
// locks — everything was prepared before fork.
[[noreturn]] void exec_child(const char* path, char* const* argv, char* const* envp, int output,
                             int report, pid_t parent) {
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) report_and_exit(report);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect

    // A clean start: what the test process blocked or ignored is not the program's business.
    sigset_t none;
    sigemptyset(&none);
    // The child has one thread: sigprocmask is as good as pthread_sigmask here.
    // NOLINTNEXTLINE(concurrency-mt-unsafe)
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) report_and_exit(report);
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s)
        ::sigaction(s, &default_action, nullptr);  // fails harmlessly for SIGKILL, SIGSTOP

    // Out of the way of 0..3 first, whatever numbers they had (a test runner may start us
    // with a standard descriptor closed).
    const int high_report = ::fcntl(report, F_DUPFD_CLOEXEC, 10);
    if (high_report < 0) report_and_exit(report);
    report = high_report;
    const int high_output = ::fcntl(output, F_DUPFD_CLOEXEC, 10);
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (high_output < 0 || null < 0) report_and_exit(report);
    if (::dup2(null, 0) < 0 || ::dup2(high_output, 1) < 0 || ::dup2(high_output, 2) < 0) {
        report_and_exit(report);
    }
    if (::dup2(report, 3) < 0 || ::fcntl(3, F_SETFD, FD_CLOEXEC) != 0) report_and_exit(report);
    report = 3;
    // Nothing else of the test process may leak into the program: a listening socket of the
    // homeserver or the lock of a store the test had open would outlive the test's use of it.
    if (::close_range(4, ~0U, 0) != 0) report_and_exit(report);

    ::execve(path, argv, envp);
    report_and_exit(report);
}

}  // namespace

std::string process_exit::describe() const {
    if (!signalled) return "exit status " + std::to_string(code);
    const char* name = ::sigabbrev_np(code);
    return "signal " + std::to_string(code) + (name ? " (SIG" + std::string(name) + ")" : "");
}

std::ostream& operator<<(std::ostream& out, const process_exit& e) {
    return out << e.describe();
}

daemon_process::daemon_process(process_options options) : options_(std::move(options)) {
    // argv and envp are built here, before fork (see exec_child).
    std::vector<std::string> args;
    args.push_back(options_.executable.string());
    args.insert(args.end(), options_.arguments.begin(), options_.arguments.end());
    std::map<std::string, std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
        std::string_view entry(*e);
        const auto eq = entry.find('=');
        if (eq != std::string_view::npos) {
            env.insert_or_assign(std::string(entry.substr(0, eq)),
                                 std::string(entry.substr(eq + 1)));
        }
    }
    for (const auto& [name, value] : options_.environment) {
        if (value) {
            env.insert_or_assign(name, *value);
        } else {
            env.erase(name);
        }
    }
    std::vector<std::string> env_entries;
    env_entries.reserve(env.size());
    for (const auto& [name, value] : env) {
        std::string entry = name;
        entry += '=';
        entry += value;
        env_entries.push_back(std::move(entry));
    }
    std::vector<char*> argv, envp;
    argv.reserve(args.size() + 1);
    envp.reserve(env_entries.size() + 1);
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env_entries)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    pipe_fds output = make_pipe();
    pipe_fds report = make_pipe();  // exec's error, if any; closed by a successful exec
    unique_fd log;
    if (!options_.log_file.empty()) {
        log = unique_fd(
            ::open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
        if (log.get() < 0) throw_errno("open " + options_.log_file.string());
    }
    unique_fd wake(::eventfd(0, EFD_CLOEXEC));
    if (wake.get() < 0) throw_errno("eventfd");

    const pid_t parent = ::getpid();
    const std::string path = options_.executable.string();
    pid_ = ::fork();
    if (pid_ < 0) throw_errno("fork");
    if (pid_ == 0) {
        exec_child(path.c_str(), argv.data(), envp.data(), output.write.get(), report.write.get(),
                   parent);
    }
    output.write.reset();
    report.write.reset();

    // The child either execs (end of file here) or reports why it could not.
    int exec_error = 0;
    ssize_t n;
    do {
        n = ::read(report.read.get(), &exec_error, sizeof exec_error);
    } while (n < 0 && errno == EINTR);
    if (n != 0) {
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        pid_ = -1;
        throw std::system_error(n == static_cast<ssize_t>(sizeof exec_error) ? exec_error : EIO,
                                std::generic_category(), "cannot execute " + path);
    }

    wake_reader_ = wake.get();
    try {
        // The pid cannot be reused before we reap it, so opening the pidfd now is race-free.
        // (A raw syscall: glibc 2.36's <sys/pidfd.h> lacks extern "C" and does not link
        // from C++.)
        pidfd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (pidfd_ < 0) throw_errno("pidfd_open");
        reader_ = std::thread(
            [this, pipe = output.read.get(), log_fd = log.get()] { read_output(pipe, log_fd); });
    } catch (...) {
        // The destructor does not run for a constructor that throws.
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        if (pidfd_ >= 0) ::close(pidfd_);
        wake_reader_ = -1;
        throw;
    }
    // The reader thread owns the pipe and the log file now; this object the eventfd.
    output.read.release();
    log.release();
    wake.release();
}

daemon_process::~daemon_process() {
    if (pid_ > 0 && !exit_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
    if (pidfd_ >= 0) ::close(pidfd_);
    if (reader_.joinable()) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(wake_reader_, &one, sizeof one);
        reader_.join();
    }
    if (wake_reader_ >= 0) ::close(wake_reader_);
}

void daemon_process::read_output(int pipe, int log_file) {
    pollfd fds[2] = {{pipe, POLLIN, 0}, {wake_reader_, POLLIN, 0}};
    char buffer[4096];
    for (;;) {
        if (::poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (fds[1].revents != 0) break;  // the destructor: nobody reads the rest
        const ssize_t n = ::read(pipe, buffer, sizeof buffer);
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (n <= 0) break;  // end of file: every writer has gone
        if (log_file >= 0) {
            // The log file is for the post-mortem; a short write there must not lose output
            // that a test asserts on, so it is not treated as fatal.
            for (ssize_t done = 0; done < n;) {
                const ssize_t w =
                    ::write(log_file, buffer + done, static_cast<std::size_t>(n - done));
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                done += w;
            }
        }
        {
            std::lock_guard lock(mutex_);
            output_.append(buffer, static_cast<std::size_t>(n));
        }
        output_changed_.notify_all();
    }
    ::close(pipe);
    if (log_file >= 0) ::close(log_file);
    {
        std::lock_guard lock(mutex_);
        output_closed_ = true;
    }
    output_changed_.notify_all();
}

void daemon_process::send_signal(int signal) {
    // Until it is reaped, the pid is still ours, even if the process already ended.
    if (pid_ > 0 && !exit_) ::kill(pid_, signal);
}

std::optional<process_exit> daemon_process::wait_exit(clock::time_point deadline) {
    if (exit_) return exit_;
    for (;;) {
        pollfd fd{pidfd_, POLLIN, 0};
        const int ready = ::poll(&fd, 1, poll_timeout(deadline));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw_errno("poll on a pidfd");
        if (ready > 0) break;
        if (clock::now() >= deadline) return std::nullopt;
    }
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0) {
        if (errno != EINTR) throw_errno("waitpid");
    }
    exit_ = WIFSIGNALED(status) ? process_exit{true, WTERMSIG(status)}
                                : process_exit{false, WEXITSTATUS(status)};
    ::close(pidfd_);
    pidfd_ = -1;
    // The output's end of file follows the process's end at once, unless a grandchild still
    // holds the pipe.
    std::unique_lock lock(mutex_);
    output_changed_.wait_until(lock, deadline, [&] { return output_closed_; });
    return exit_;
}

std::optional<process_exit> daemon_process::terminate(clock::time_point deadline) {
    send_signal(SIGTERM);
    return wait_exit(deadline);
}

process_exit daemon_process::kill() {
    send_signal(SIGKILL);
    // Bounded only as a guard: a process cannot outlive SIGKILL unless the machine is sick
    // (stuck in uninterruptible I/O).
    auto e = wait_exit(clock::now() + std::chrono::seconds(60));
    if (!e) throw std::runtime_error("pid " + std::to_string(pid_) + " survived SIGKILL for 60 s");
    return *e;
}

std::string daemon_process::output() const {
    std::lock_guard lock(mutex_);
    return output_;
}

bool daemon_process::wait_for_output(const std::function<bool(std::string_view)>& done,
                                     clock::time_point deadline) const {
    std::unique_lock lock(mutex_);
    bool satisfied = false;
    output_changed_.wait_until(lock, deadline, [&] {
        satisfied = done(output_);
        return satisfied || output_closed_;
    });
    return satisfied;
}

bool daemon_process::wait_for_output(std::string_view needle, clock::time_point deadline) const {
    return wait_for_output(
        [needle](std::string_view out) { return out.find(needle) != std::string_view::npos; },
        deadline);
}

process_options devlistd_options(std::filesystem::path executable,
                                 const std::filesystem::path& config,
                                 std::filesystem::path log_file,
                                 std::optional<std::string> failpoint) {
    process_options o;
    o.executable = std::move(executable);
    o.arguments = {"--config", config.string()};
    o.log_file = std::move(log_file);
    o.environment = {{"DEVLIST_FAILPOINT", std::move(failpoint)},
                     {"NOTIFY_SOCKET", std::nullopt},
                     {"LISTEN_PID", std::nullopt},
                     {"LISTEN_FDS", std::nullopt},
                     {"LISTEN_FDNAMES", std::nullopt},
                     {"WATCHDOG_PID", std::nullopt},
                     {"WATCHDOG_USEC", std::nullopt},
                     {"JOURNAL_STREAM", std::nullopt}};
    return o;
}

}  // namespace devlist::test
