#include "tests/e2e/notify_listener.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <system_error>

namespace devlist::test {

bool notify_message::has(std::string_view line) const {
    std::string_view rest = text;
    while (!rest.empty()) {
        auto end = rest.find('\n');
        if (rest.substr(0, end) == line) return true;
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
    return false;
}

std::optional<std::string> notify_message::value(std::string_view key) const {
    std::string_view rest = text;
    while (!rest.empty()) {
        auto end = rest.find('\n');
        auto line = rest.substr(0, end);
        if (line.size() > key.size() && line.starts_with(key) && line[key.size()] == '=') {
            return std::string(line.substr(key.size() + 1));
        }
        if (end == std::string_view::npos) break;
        rest.remove_prefix(end + 1);
    }
    return std::nullopt;
}

notify_listener::notify_listener(std::filesystem::path path) : path_(std::move(path)) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string& native = path_.native();
    if (native.size() >= sizeof address.sun_path) {
        ::close(fd_);
        throw std::system_error(ENAMETOOLONG, std::generic_category(), native);
    }
    std::memcpy(address.sun_path, native.c_str(), native.size() + 1);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const int e = errno;
        ::close(fd_);
        throw std::system_error(e, std::generic_category(), "bind " + native);
    }
    stop_ = ::eventfd(0, EFD_CLOEXEC);
    if (stop_ < 0) {
        const int e = errno;
        ::close(fd_);
        throw std::system_error(e, std::generic_category(), "eventfd");
    }
    reader_ = std::thread([this] { read_loop(); });
}

notify_listener::~notify_listener() {
    const std::uint64_t one = 1;
    [[maybe_unused]] auto written = ::write(stop_, &one, sizeof one);
    reader_.join();
    ::close(stop_);
    ::close(fd_);
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
}

void notify_listener::read_loop() {
    std::array<char, 8192> buffer{};
    for (;;) {
        std::array<pollfd, 2> fds{{{fd_, POLLIN, 0}, {stop_, POLLIN, 0}}};
        if (::poll(fds.data(), fds.size(), -1) < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (fds[1].revents != 0) return;
        const auto n = ::recv(fd_, buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) continue;
            return;
        }
        {
            std::lock_guard lock(mutex_);
            received_.push_back(
                {std::string(buffer.data(), static_cast<std::size_t>(n)), clock::now()});
        }
        arrived_.notify_all();
    }
}

std::optional<notify_message> notify_listener::next(clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    if (!arrived_.wait_until(lock, deadline, [&] { return position_ < received_.size(); })) {
        return std::nullopt;
    }
    return received_[position_++];
}

std::optional<notify_message> notify_listener::wait_for(
    const std::function<bool(const notify_message&)>& match, clock::time_point deadline) {
    while (auto m = next(deadline)) {
        if (match(*m)) return m;
    }
    return std::nullopt;
}

void notify_listener::drain() {
    // FIONREAD (SIOCINQ) on a datagram socket: the size of the next queued datagram, 0 when none is
    // left. Messages are never empty, so 0 means the reader has taken them all.
    for (;;) {
        int queued = 0;
        if (::ioctl(fd_, FIONREAD, &queued) != 0 || queued == 0) return;
        std::unique_lock lock(mutex_);
        const auto seen = received_.size();
        arrived_.wait_for(lock, std::chrono::seconds(1), [&] { return received_.size() > seen; });
    }
}

std::vector<notify_message> notify_listener::received() const {
    std::lock_guard lock(mutex_);
    return received_;
}

std::size_t notify_listener::count() const {
    std::lock_guard lock(mutex_);
    return received_.size();
}

}  // namespace devlist::test
