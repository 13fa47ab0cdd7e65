#include "daemon/peer_access.hpp"

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

namespace devlist::daemon {
namespace {

peer_credentials peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
    peer_credentials p;
    p.uid = uid;
    p.gid = gid;
    p.groups = std::move(groups);
    return p;
}

TEST(peer_access, the_daemons_own_uid_and_root_always_use_the_socket) {
    auto policy = make_access_policy(1000, {}, {}, std::nullopt, std::nullopt);
    EXPECT_TRUE(may_use(policy, peer(1000, 1000)));
    EXPECT_TRUE(may_use(policy, peer(0, 0)));
    EXPECT_FALSE(may_use(policy, peer(1001, 1001)));
    EXPECT_FALSE(may_use(policy, peer(1001, 1000)));  // the daemon's group is not enough
}

TEST(peer_access, allow_lists_admit_by_uid_or_by_primary_or_supplementary_group) {
    auto policy = make_access_policy(1000, {2000}, {3000}, std::nullopt, std::nullopt);
    EXPECT_TRUE(may_use(policy, peer(2000, 2000)));
    EXPECT_TRUE(may_use(policy, peer(2500, 3000)));
    EXPECT_TRUE(may_use(policy, peer(2501, 2501, {17, 3000})));
    EXPECT_FALSE(may_use(policy, peer(2502, 2502, {17, 18})));
}

TEST(peer_access, without_a_key_allow_list_only_the_daemons_own_uid_takes_keys) {
    auto policy = make_access_policy(1000, {2000}, {3000}, std::nullopt, std::nullopt);
    EXPECT_TRUE(may_take_keys(policy, peer(1000, 1000)));
    EXPECT_FALSE(may_take_keys(policy, peer(0, 0)));  // root: not listed, not implied
    EXPECT_FALSE(may_take_keys(policy, peer(2000, 2000)));
    EXPECT_FALSE(may_take_keys(policy, peer(2500, 3000)));
}

TEST(peer_access, a_key_allow_list_names_exactly_who_takes_keys) {
    // Setting either list replaces the default: the own uid is no longer implied.
    auto policy = make_access_policy(1000, {2000, 2001}, {}, std::vector<std::uint32_t>{2000},
                                     std::vector<std::uint32_t>{4000});
    EXPECT_FALSE(may_take_keys(policy, peer(1000, 1000)));
    EXPECT_TRUE(may_take_keys(policy, peer(2000, 2000)));
    EXPECT_FALSE(may_take_keys(policy, peer(2001, 2001)));
    EXPECT_TRUE(may_take_keys(policy, peer(2001, 2001, {4000})));
    // Key access needs socket access too.
    EXPECT_FALSE(may_take_keys(policy, peer(2999, 4000)));

    auto only_groups =
        make_access_policy(1000, {}, {}, std::nullopt, std::vector<std::uint32_t>{4000});
    EXPECT_FALSE(may_take_keys(only_groups, peer(1000, 1000)));
    EXPECT_TRUE(may_take_keys(only_groups, peer(1000, 1000, {4000})));
}

TEST(peer_access, reads_the_peers_credentials_from_a_connected_unix_socket) {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    auto creds = read_peer_credentials(fds[0]);
    ::close(fds[0]);
    ::close(fds[1]);
    ASSERT_TRUE(creds) << creds.error().message();
    EXPECT_EQ(creds->uid, ::geteuid());
    EXPECT_EQ(creds->gid, ::getegid());
    EXPECT_EQ(creds->pid, ::getpid());
    EXPECT_NE(describe(*creds).find("uid " + std::to_string(::geteuid())), std::string::npos);
}

TEST(peer_access, a_file_descriptor_that_is_no_socket_has_no_peer) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    auto creds = read_peer_credentials(fds[0]);
    ::close(fds[0]);
    ::close(fds[1]);
    ASSERT_FALSE(creds);
    EXPECT_EQ(creds.error(), errc::io_error);
}

}  // namespace
}  // namespace devlist::daemon
