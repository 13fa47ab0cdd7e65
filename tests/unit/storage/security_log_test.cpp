#include "storage/security_log.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>

namespace devlist::storage {
namespace {

using testing::must;

class SecurityLogTest : public testing::StoreTest {};

TEST_F(SecurityLogTest, AppendAndListNewestFirst) {
    std::int64_t first = must(db().security().append({.at = 10,
                                                      .kind = "master_key_changed",
                                                      .user_id = "@a:x.org",
                                                      .device_id = std::nullopt,
                                                      .detail_json = R"({"old":"M1"})"}));
    std::int64_t second = must(db().security().append(
        {.at = 20, .kind = "device_key_changed", .user_id = "@b:x.org", .device_id = "D"}));
    EXPECT_GT(second, first);

    auto recent = must(db().security().recent(10));
    ASSERT_EQ(recent.size(), 2u);
    EXPECT_EQ(recent[0].id, second);
    EXPECT_EQ(recent[0].kind, "device_key_changed");
    EXPECT_EQ(recent[0].device_id, "D");
    EXPECT_EQ(recent[0].detail_json, "{}");
    EXPECT_EQ(recent[1].at, 10);
    EXPECT_EQ(recent[1].device_id, std::nullopt);
    EXPECT_EQ(recent[1].detail_json, R"({"old":"M1"})");

    EXPECT_EQ(must(db().security().recent(1)).size(), 1u);
    auto of_a = must(db().security().recent_of_user("@a:x.org", 10));
    ASSERT_EQ(of_a.size(), 1u);
    EXPECT_EQ(of_a[0].kind, "master_key_changed");
}

TEST_F(SecurityLogTest, RejectsEventsItCouldNotShowLater) {
    EXPECT_FALSE(db().security().append({.at = 1, .kind = "", .detail_json = "{}"}));
    EXPECT_FALSE(db().security().append({.at = 1, .kind = "x", .detail_json = "nope"}));
    EXPECT_TRUE(must(db().security().recent(10)).empty());
}

}  // namespace
}  // namespace devlist::storage
