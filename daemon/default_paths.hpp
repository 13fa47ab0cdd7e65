// Paths that devlistd and devlistctl must agree on without reading a configuration.
#pragma once

namespace devlist::daemon {

// The socket API's socket when the configuration names none (systemd's RuntimeDirectory=
// devlistd creates the folder); devlistctl looks there unless told otherwise.
inline constexpr const char* default_socket_path = "/run/devlistd/devlistd.sock";

}  // namespace devlist::daemon
