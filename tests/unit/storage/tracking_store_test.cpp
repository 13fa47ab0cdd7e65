#include "storage/tracking_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::must;

class TrackingStoreTest : public testing::StoreTest {};

std::vector<std::string> ids(const std::vector<tracked_user>& users) {
    std::vector<std::string> out;
    for (const tracked_user& u : users)
        out.push_back(u.user_id);
    return out;
}

TEST_F(TrackingStoreTest, OutdatedUsersComeOldestGenerationFirstAndLimited) {
    sync_batch batch;
    batch.tracked_users = {
        {"@c:x.org", "x.org", {.encrypted_room = true}, true, 2},
        {"@b:x.org", "x.org", {.encrypted_room = true}, true, 1},
        {"@a:x.org", "x.org", {.encrypted_room = true}, true, 2},
        {"@fresh:x.org", "x.org", {.encrypted_room = true}, false, 0},
        {"@d:x.org", "x.org", {.encrypted_room = true}, true, 5},
    };
    must(db().sync().apply_sync_batch(batch));
    EXPECT_EQ(ids(must(db().tracking().outdated_users(10))),
              (std::vector<std::string>{"@b:x.org", "@a:x.org", "@c:x.org", "@d:x.org"}));
    EXPECT_EQ(ids(must(db().tracking().outdated_users(2))),
              (std::vector<std::string>{"@b:x.org", "@a:x.org"}));
    EXPECT_TRUE(must(db().tracking().outdated_users(0)).empty());
}

TEST_F(TrackingStoreTest, EveryCombinationOfReasonsRoundTrips) {
    sync_batch batch;
    for (int bits = 1; bits <= 7; ++bits) {
        batch.tracked_users.push_back({"@u" + std::to_string(bits) + ":x.org", "x.org",
                                       tracking_reasons{.own = (bits & 1) != 0,
                                                        .encrypted_room = (bits & 2) != 0,
                                                        .explicit_request = (bits & 4) != 0},
                                       false, 0});
    }
    must(db().sync().apply_sync_batch(batch));
    for (const tracked_user_update& wanted : batch.tracked_users) {
        auto found = must(db().tracking().find(wanted.user_id));
        ASSERT_TRUE(found) << wanted.user_id;
        EXPECT_EQ(found->reasons, wanted.reasons) << wanted.user_id;
    }
}

TEST_F(TrackingStoreTest, CorruptReasonsAreReportedNotGuessed) {
    track("@a:x.org");
    // A hand-edited database: bypass the CHECK constraint.
    must(db().database().exec("PRAGMA ignore_check_constraints = ON"));
    must(db().database().exec("UPDATE tracked_users SET reasons = 9"));
    auto found = db().tracking().find("@a:x.org");
    ASSERT_FALSE(found);
    EXPECT_EQ(found.error(), errc::storage_corrupt);
}

TEST_F(TrackingStoreTest, FindUnknownUserIsEmpty) {
    EXPECT_EQ(must(db().tracking().find("@nobody:x.org")), std::nullopt);
}

}  // namespace
}  // namespace devlist::storage
