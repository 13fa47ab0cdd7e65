// Who may use the socket API, decided from the peer's credentials as the kernel reports them
// (SO_PEERCRED and SO_PEERGROUPS, taken when the peer connected, so a peer cannot change them by
// switching IDs afterwards).
//
// Two levels: using the API at all, and taking private key material (one-time and fallback
// private keys), which needs its own allow-list because whoever holds those keys can read
// messages sent to this device.
//
// Pure functions and plain data; thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devlist/error.hpp"

namespace devlist::daemon {

struct peer_credentials {
    pid_t pid = 0;
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);  // primary group
    std::vector<gid_t> groups;           // supplementary groups (may include gid)
};

struct access_policy {
    uid_t own_uid = static_cast<uid_t>(-1);  // the daemon's effective uid
    // Besides own_uid and root.
    std::vector<std::uint32_t> allowed_uids;
    std::vector<std::uint32_t> allowed_gids;  // primary or supplementary group of the peer
    // Exactly these peers may take private keys (own_uid and root only if listed).
    std::vector<std::uint32_t> key_uids;
    std::vector<std::uint32_t> key_gids;
};

// The policy from configuration: a key allow-list that is not configured at all means the
// daemon's own uid alone.
access_policy make_access_policy(uid_t own_uid, std::vector<std::uint32_t> allowed_uids,
                                 std::vector<std::uint32_t> allowed_gids,
                                 const std::optional<std::vector<std::uint32_t>>& key_uids,
                                 const std::optional<std::vector<std::uint32_t>>& key_gids);

// May this peer use the API?
bool may_use(const access_policy& policy, const peer_credentials& peer);
// May this peer take private keys? Implies may_use.
bool may_take_keys(const access_policy& policy, const peer_credentials& peer);

// "uid 1000 gid 1000 pid 4242" for log lines.
std::string describe(const peer_credentials& peer);

// The credentials of the process at the other end of a connected Unix socket.
// errc::io_error if the kernel does not report them.
result<peer_credentials> read_peer_credentials(int fd);

}  // namespace devlist::daemon
