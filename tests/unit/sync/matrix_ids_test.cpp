#include "sync/matrix_ids.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devlist::sync {
namespace {

TEST(matrix_ids, accepts_valid_user_ids) {
    for (const char* id : {"@alice:example.org", "@a:b", "@bot_1.x=y-z/w+v:matrix.org:8448",
                           "@old$style:example.com", "@u:[::1]:8008", "@u:127.0.0.1"}) {
        EXPECT_TRUE(is_valid_user_id(id)) << id;
    }
}

TEST(matrix_ids, refuses_invalid_user_ids) {
    for (const char* id : {"", "@", "alice:example.org", "@:example.org", "@alice", "@alice:",
                           "@al ice:example.org", "@alice:exa_mple.org", "@alice:example.org:0",
                           "@alice:example.org:65536", "@alice:[zz::1]", "@a:b:c"}) {
        EXPECT_FALSE(is_valid_user_id(id)) << id;
    }
    EXPECT_FALSE(is_valid_user_id("@" + std::string(250, 'a') + ":example.org"));
    EXPECT_FALSE(is_valid_user_id(std::string("@a\x01:example.org")));
    EXPECT_FALSE(is_valid_user_id("@\xc3\xa9:example.org"));
}

TEST(matrix_ids, server_name_of_user) {
    EXPECT_EQ(server_name_of("@a:example.org:8448"), "example.org:8448");
    EXPECT_EQ(server_name_of("@a:[::1]"), "[::1]");
    EXPECT_FALSE(server_name_of("nope").has_value());
}

TEST(matrix_ids, device_and_room_ids) {
    EXPECT_TRUE(is_valid_device_id("JLAFKJWSCS"));
    EXPECT_FALSE(is_valid_device_id(""));
    EXPECT_FALSE(is_valid_device_id("has space"));
    EXPECT_FALSE(is_valid_device_id(std::string(256, 'A')));
    EXPECT_TRUE(is_valid_room_id("!abc:example.org"));
    EXPECT_TRUE(is_valid_room_id("!opaque-v12-id"));
    EXPECT_FALSE(is_valid_room_id("#alias:example.org"));
    EXPECT_FALSE(is_valid_room_id("!"));
}

}  // namespace
}  // namespace devlist::sync
