// The socket file of the socket API: created with its mode and group already set, never
// replacing a live socket, and removed on shutdown only while it is still ours.
//
// Plain POSIX calls; no Asio. Not thread-safe (start-up and shutdown of the io thread).
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>

#include "devlist/error.hpp"

namespace devlist::daemon {

struct socket_file_options {
    std::filesystem::path path{};
    unsigned mode = 0660;
    std::optional<gid_t> group{};  // nullopt: the daemon's group
    // Clients beyond the backlog wait in connect() (or fail with EAGAIN if non-blocking), so
    // a burst of clients needs room: the kernel caps it at net.core.somaxconn.
    int backlog = 4096;
};

// A listening socket bound to a file, and which file it is.
struct bound_socket {
    int fd = -1;  // the caller owns it
    std::filesystem::path path;
    dev_t device = 0;
    ino_t inode = 0;
};

// Binds and listens. A socket file left by a process that is gone is replaced; a socket that
// answers (another devlistd), a file that is not a socket, a folder that does not exist or a
// path too long for a Unix socket address is refused with errc::io_error naming the path.
// The socket is bound under a temporary name, given its mode and group, and only then linked
// to `path`, so nobody can connect while the permissions are still the umask's.
result<bound_socket> bind_socket_file(const socket_file_options& options);

// Removes the file if it is still the one bind_socket_file() created (another process may
// have replaced it meanwhile). Errors are ignored: this runs on the way out.
void remove_socket_file(const bound_socket& socket);

// The ID of a group by name; errc::invalid_argument naming it if there is no such group.
result<gid_t> find_group(const std::string& name);

// Checks that fd is a listening Unix stream socket (what socket activation hands over).
// errc::invalid_argument saying what it is instead.
result<void> check_listening_unix_socket(int fd);

}  // namespace devlist::daemon
