#include "storage/own_cross_signing_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::bytes;
using testing::must;

std::vector<own_cross_signing_key> key_set(const std::string& tag) {
    std::vector<own_cross_signing_key> keys;
    for (key_usage usage : {key_usage::user_signing, key_usage::master, key_usage::self_signing}) {
        keys.push_back({.usage = usage,
                        .public_key = "pub-" + tag,
                        .sealed_private = bytes("sealed-" + tag),
                        .signed_json = R"({"t":")" + tag + "\"}"});
    }
    return keys;
}

class OwnCrossSigningStoreTest : public testing::StoreTest {
  protected:
    void SetUp() override {
        StoreTest::SetUp();
        must(db().account().create({.user_id = "@me:x.org",
                                    .device_id = "DEV",
                                    .ed25519_public = "e",
                                    .curve25519_public = "c",
                                    .ed25519_sealed = bytes("e"),
                                    .curve25519_sealed = bytes("c"),
                                    .created_at = 1}));
    }
};

TEST_F(OwnCrossSigningStoreTest, StorePendingThenMarkUploaded) {
    EXPECT_TRUE(must(db().own_cross_signing().load()).empty());
    must(db().own_cross_signing().store_pending(key_set("1"), 100));
    auto keys = must(db().own_cross_signing().load());
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_EQ(keys[0].usage, key_usage::master);
    EXPECT_EQ(keys[1].usage, key_usage::self_signing);
    EXPECT_EQ(keys[2].usage, key_usage::user_signing);
    for (const own_cross_signing_key& k : keys) {
        EXPECT_EQ(k.state, upload_state::pending);
        EXPECT_EQ(k.sealed_private, bytes("sealed-1"));
        EXPECT_EQ(k.signed_json, R"({"t":"1"})");
        EXPECT_EQ(k.created_at, 100);
        EXPECT_EQ(k.uploaded_at, std::nullopt);
    }
    must(db().own_cross_signing().mark_uploaded(200));
    for (const own_cross_signing_key& k : must(db().own_cross_signing().load())) {
        EXPECT_EQ(k.state, upload_state::uploaded);
        EXPECT_EQ(k.uploaded_at, 200);
    }
}

TEST_F(OwnCrossSigningStoreTest, NewKeysReplaceOldOnesAndResetTheDeviceSignature) {
    must(db().own_cross_signing().store_pending(key_set("1"), 100));
    must(db().own_cross_signing().mark_uploaded(200));
    must(db().account().mark_device_signature_uploaded());
    ASSERT_TRUE(must(db().account().load())->device_signature_uploaded);

    must(db().own_cross_signing().store_pending(key_set("2"), 300));
    auto keys = must(db().own_cross_signing().load());
    ASSERT_EQ(keys.size(), 3u);
    EXPECT_EQ(keys[0].public_key, "pub-2");
    EXPECT_EQ(keys[0].state, upload_state::pending);
    EXPECT_FALSE(must(db().account().load())->device_signature_uploaded);
}

TEST_F(OwnCrossSigningStoreTest, DuplicateUsageIsRefusedAndKeepsTheOldKeys) {
    must(db().own_cross_signing().store_pending(key_set("1"), 100));
    auto twice = key_set("2");
    twice.push_back(twice.front());
    auto r = db().own_cross_signing().store_pending(twice, 300);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
    EXPECT_EQ(must(db().own_cross_signing().load())[0].public_key, "pub-1");
}

TEST_F(OwnCrossSigningStoreTest, StorePendingCommitsWithFullDurability) {
    testing::synchronous_tracer tracer(db().database());
    must(db().own_cross_signing().store_pending(key_set("1"), 100));
    EXPECT_EQ(tracer.levels_of("INSERT INTO own_cross_signing_keys"),
              (std::vector<std::string>{"FULL", "FULL", "FULL"}));
    EXPECT_EQ(tracer.level(), "NORMAL");
}

}  // namespace
}  // namespace devlist::storage
