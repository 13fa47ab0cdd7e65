// Socket activation (sd_listen_fds(3)): the listening socket systemd opened for devlistd
// (devlistd.socket) and handed over as file descriptor 3, in place of the one devlistd would bind.
//
// Plain functions; call from the main thread at start-up.
#pragma once

#include <filesystem>
#include <optional>

#include "devlist/error.hpp"

namespace devlist::daemon {

// The socket handed to this process (LISTEN_FDS with LISTEN_PID = our pid), or nullopt when
// there is none. The variables are removed from the environment so that nothing started later
// takes them for its own. More than one socket is errc::invalid_argument: devlistd serves one.
// Whether it is a listening Unix stream socket is socket_server::adopt()'s check.
result<std::optional<int>> take_activated_socket();

// The file a Unix socket is bound to; nullopt for an unnamed or abstract one.
std::optional<std::filesystem::path> bound_path(int fd);

}  // namespace devlist::daemon
