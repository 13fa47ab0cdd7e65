#include "storage/account_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::bytes;
using testing::must;

account_identity identity() {
    return account_identity{
        .user_id = "@bot:example.org",
        .device_id = "DEVLIST",
        .ed25519_public = "ed-pub",
        .curve25519_public = "cv-pub",
        .ed25519_sealed = {1, 0, 2},
        .curve25519_sealed = bytes("sealed-curve"),
        .device_keys_uploaded = true,  // ignored: flags start false
        .device_signature_uploaded = true,
        .created_at = 42,
    };
}

class AccountStoreTest : public testing::StoreTest {};

TEST_F(AccountStoreTest, CreateOnceThenLoad) {
    EXPECT_EQ(must(db().account().load()), std::nullopt);
    must(db().account().create(identity()));
    auto loaded = must(db().account().load());
    ASSERT_TRUE(loaded);
    EXPECT_EQ(loaded->user_id, "@bot:example.org");
    EXPECT_EQ(loaded->device_id, "DEVLIST");
    EXPECT_EQ(loaded->ed25519_public, "ed-pub");
    EXPECT_EQ(loaded->curve25519_public, "cv-pub");
    EXPECT_EQ(loaded->ed25519_sealed, identity().ed25519_sealed);
    EXPECT_EQ(loaded->curve25519_sealed, identity().curve25519_sealed);
    EXPECT_FALSE(loaded->device_keys_uploaded);
    EXPECT_FALSE(loaded->device_signature_uploaded);
    EXPECT_EQ(loaded->created_at, 42);
}

TEST_F(AccountStoreTest, SecondCreateIsRefusedAndKeepsTheFirst) {
    must(db().account().create(identity()));
    account_identity other = identity();
    other.ed25519_public = "new";
    auto r = db().account().create(other);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_NE(r.error().detail.find("@bot:example.org device DEVLIST"), std::string::npos)
        << r.error().detail;
    EXPECT_EQ(must(db().account().load())->ed25519_public, "ed-pub");
}

TEST_F(AccountStoreTest, CreateCommitsWithFullDurability) {
    testing::synchronous_tracer tracer(db().database());
    must(db().account().create(identity()));
    EXPECT_EQ(tracer.levels_of("INSERT INTO account"), std::vector<std::string>{"FULL"});
    EXPECT_EQ(tracer.level(), "NORMAL");
}

TEST_F(AccountStoreTest, UploadFlags) {
    must(db().account().create(identity()));
    must(db().account().mark_device_keys_uploaded());
    EXPECT_TRUE(must(db().account().load())->device_keys_uploaded);
    EXPECT_FALSE(must(db().account().load())->device_signature_uploaded);
    must(db().account().mark_device_signature_uploaded());
    EXPECT_TRUE(must(db().account().load())->device_signature_uploaded);
}

TEST_F(AccountStoreTest, MarkingWithoutIdentityIsAnError) {
    auto r = db().account().mark_device_keys_uploaded();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_FALSE(db().account().mark_device_signature_uploaded());
}

}  // namespace
}  // namespace devlist::storage
