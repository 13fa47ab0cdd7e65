#include "daemon/socket_activation.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include <cstring>
#include <string>
#include <system_error>

namespace devlist::daemon {

result<std::optional<int>> take_activated_socket() {
    int n = sd_listen_fds(1);
    if (n < 0) {
        return error{errc::invalid_argument, std::string("cannot take the sockets systemd "
                                                         "handed over (LISTEN_FDS): ") +
                                                 std::generic_category().message(-n)};
    }
    if (n == 0) return std::optional<int>{};
    if (n > 1) {
        return error{errc::invalid_argument,
                     "systemd handed over " + std::to_string(n) +
                         " sockets but devlistd serves one: give devlistd.socket a single "
                         "ListenStream="};
    }
    return std::optional<int>{SD_LISTEN_FDS_START};
}

std::optional<std::filesystem::path> bound_path(int fd) {
    sockaddr_un address{};
    socklen_t length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return std::nullopt;
    if (address.sun_family != AF_UNIX) return std::nullopt;
    const auto offset = offsetof(sockaddr_un, sun_path);
    if (length <= offset || address.sun_path[0] == '\0') return std::nullopt;
    // sun_path need not end with a NUL when the path fills it.
    std::size_t size = ::strnlen(address.sun_path, length - offset);
    return std::filesystem::path(std::string(address.sun_path, size));
}

}  // namespace devlist::daemon
