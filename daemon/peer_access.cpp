#include "daemon/peer_access.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace devlist::daemon {
namespace {

bool contains(const std::vector<std::uint32_t>& ids, std::uint32_t id) {
    return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool in_groups(const std::vector<std::uint32_t>& allowed, const peer_credentials& peer) {
    if (contains(allowed, peer.gid)) return true;
    return std::any_of(peer.groups.begin(), peer.groups.end(),
                       [&](gid_t g) { return contains(allowed, g); });
}

}  // namespace

access_policy make_access_policy(uid_t own_uid, std::vector<std::uint32_t> allowed_uids,
                                 std::vector<std::uint32_t> allowed_gids,
                                 const std::optional<std::vector<std::uint32_t>>& key_uids,
                                 const std::optional<std::vector<std::uint32_t>>& key_gids) {
    access_policy p;
    p.own_uid = own_uid;
    p.allowed_uids = std::move(allowed_uids);
    p.allowed_gids = std::move(allowed_gids);
    if (!key_uids && !key_gids) {
        p.key_uids = {own_uid};
    } else {
        if (key_uids) p.key_uids = *key_uids;
        if (key_gids) p.key_gids = *key_gids;
    }
    return p;
}

bool may_use(const access_policy& policy, const peer_credentials& peer) {
    // Root can read the database anyway; refusing it would protect nothing.
    if (peer.uid == 0 || peer.uid == policy.own_uid) return true;
    return contains(policy.allowed_uids, peer.uid) || in_groups(policy.allowed_gids, peer);
}

bool may_take_keys(const access_policy& policy, const peer_credentials& peer) {
    if (!may_use(policy, peer)) return false;
    return contains(policy.key_uids, peer.uid) || in_groups(policy.key_gids, peer);
}

std::string describe(const peer_credentials& peer) {
    return "uid " + std::to_string(peer.uid) + " gid " + std::to_string(peer.gid) + " pid " +
           std::to_string(peer.pid);
}

result<peer_credentials> read_peer_credentials(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        return error{errc::io_error,
                     std::string("SO_PEERCRED: ") + std::generic_category().message(errno)};
    }
    peer_credentials peer;
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    // Supplementary groups, so that allowed_gids works for members of a group that is not
    // their primary one (the usual case for a shared service group). Linux 4.13 and later;
    // older kernels leave the primary group only.
    std::vector<gid_t> groups(16);
    for (int attempt = 0; attempt < 4; ++attempt) {
        len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
            groups.resize(len / sizeof(gid_t));
            peer.groups = std::move(groups);
            break;
        }
        // ERANGE reports the size needed in len.
        if (errno != ERANGE) break;
        groups.resize(len / sizeof(gid_t) + 1);
    }
    return peer;
}

}  // namespace devlist::daemon
