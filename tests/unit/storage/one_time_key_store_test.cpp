#include "storage/one_time_key_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::bytes;
using testing::must;
using testing::test_key_id;

class OneTimeKeyStoreTest : public testing::StoreTest {
  protected:
    static new_key key(const std::string& name) {
        return new_key{.algorithm = "signed_curve25519",
                       .public_key = "pub-" + name,
                       .sealed_private = {0, 1, 0, 255, static_cast<std::uint8_t>(name.size())},
                       .signed_json = R"({"key":"pub-)" + name + R"(","signatures":{}})"};
    }
    std::vector<one_time_key> add(std::vector<new_key> keys, timestamp_ms now = 100) {
        return must(db().one_time_keys().add_pending(keys, now, test_key_id));
    }
    std::vector<std::string> pending_ids() {
        std::vector<std::string> out;
        for (const one_time_key& k : must(db().one_time_keys().pending()))
            out.push_back(k.key_id);
        return out;
    }
};

TEST_F(OneTimeKeyStoreTest, AddPendingTakesIdsFromTheCounterInOrder) {
    auto added = add({key("a"), key("b"), key("c")});
    ASSERT_EQ(added.size(), 3u);
    EXPECT_EQ(added[0].key_id, "k1");
    EXPECT_EQ(added[2].key_id, "k3");
    EXPECT_EQ(added[0].seq, 1);
    EXPECT_EQ(added[1].state, key_state::pending);
    add({key("d"), key("e")});
    EXPECT_EQ(pending_ids(), (std::vector<std::string>{"k1", "k2", "k3", "k4", "k5"}));
}

TEST_F(OneTimeKeyStoreTest, KeysRoundTripByteForByte) {
    new_key original = key("a");
    add({original}, 123);
    auto stored = must(db().one_time_keys().find("k1"));
    ASSERT_TRUE(stored);
    EXPECT_EQ(stored->public_key, original.public_key);
    EXPECT_EQ(stored->sealed_private, original.sealed_private);
    EXPECT_EQ(stored->signed_json, original.signed_json);
    EXPECT_EQ(stored->algorithm, "signed_curve25519");
    EXPECT_EQ(stored->created_at, 123);
    EXPECT_EQ(stored->published_at, std::nullopt);
}

TEST_F(OneTimeKeyStoreTest, KeyIdsAreNeverReusedAcrossTakesAndFallbackKeys) {
    add({key("a")});
    ASSERT_TRUE(must(db().one_time_keys().take("k1")));
    must(db().fallback_keys().add_pending_current(key("fb"), 100, test_key_id));
    auto next = add({key("b")});
    EXPECT_EQ(next[0].key_id, "k3");
}

TEST_F(OneTimeKeyStoreTest, FailedAddStoresNothingAndConsumesNoIds) {
    add({key("a")});
    auto failed = db().one_time_keys().add_pending(std::vector<new_key>{key("b"), key("a")}, 100,
                                                   test_key_id);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error(), errc::storage_error);
    EXPECT_NE(failed.error().detail.find("UNIQUE constraint failed: one_time_keys.public_key"),
              std::string::npos)
        << failed.error().detail;
    EXPECT_EQ(pending_ids(), std::vector<std::string>{"k1"});
    EXPECT_EQ(add({key("c")})[0].key_id, "k2");
}

TEST_F(OneTimeKeyStoreTest, AddPendingCommitsWithFullDurability) {
    testing::synchronous_tracer tracer(db().database());
    add({key("a"), key("b")});
    EXPECT_EQ(tracer.levels_of("INSERT INTO one_time_keys"),
              (std::vector<std::string>{"FULL", "FULL"}));
    EXPECT_EQ(tracer.levels_of("COMMIT"), std::vector<std::string>{"FULL"});
    EXPECT_EQ(tracer.level(), "NORMAL");
    EXPECT_EQ(testing::query_int(db().database(), "PRAGMA synchronous"), 1);
}

TEST_F(OneTimeKeyStoreTest, MarkPublishedMovesPendingKeysOnce) {
    add({key("a"), key("b"), key("c")});
    const std::vector<std::string> first{"k1", "k2"};
    EXPECT_EQ(must(db().one_time_keys().mark_published(first, 200)), 2);
    EXPECT_EQ(must(db().one_time_keys().mark_published(first, 300)), 0);
    EXPECT_EQ(pending_ids(), std::vector<std::string>{"k3"});
    EXPECT_EQ(must(db().one_time_keys().count(key_state::published)), 2);
    EXPECT_EQ(must(db().one_time_keys().count(key_state::pending)), 1);
    auto k1 = must(db().one_time_keys().find("k1"));
    ASSERT_TRUE(k1);
    EXPECT_EQ(k1->state, key_state::published);
    EXPECT_EQ(k1->published_at, 200);
}

TEST_F(OneTimeKeyStoreTest, TakeByIdReturnsTheKeyAndDeletesIt) {
    add({key("a"), key("b")});
    auto taken = must(db().one_time_keys().take("k2"));
    ASSERT_TRUE(taken);
    EXPECT_EQ(taken->public_key, "pub-b");
    EXPECT_EQ(taken->sealed_private, key("b").sealed_private);
    EXPECT_EQ(must(db().one_time_keys().take("k2")), std::nullopt);
    EXPECT_EQ(must(db().one_time_keys().find("k2")), std::nullopt);
    EXPECT_EQ(pending_ids(), std::vector<std::string>{"k1"});
}

TEST_F(OneTimeKeyStoreTest, FindByPublicKeyThenTakeDeletesTheKey) {
    add({key("a"), key("b")});
    const std::vector<std::string> all{"k1", "k2"};
    must(db().one_time_keys().mark_published(all, 200));
    auto found = must(db().one_time_keys().find_by_public_key("pub-a"));
    ASSERT_TRUE(found);
    EXPECT_EQ(found->key_id, "k1");
    EXPECT_EQ(found->state, key_state::published);
    EXPECT_EQ(must(db().one_time_keys().find_by_public_key("pub-unknown")), std::nullopt);
    ASSERT_TRUE(must(db().one_time_keys().take("k1")));
    EXPECT_EQ(must(db().one_time_keys().find_by_public_key("pub-a")), std::nullopt);
    EXPECT_EQ(must(db().one_time_keys().count(key_state::published)), 1);
}

TEST_F(OneTimeKeyStoreTest, PruneDropsTheOldestPublishedKeysBeyondTheCap) {
    add({key("a"), key("b"), key("c"), key("d"), key("e"), key("f")});
    const std::vector<std::string> published{"k1", "k2", "k3", "k4", "k5"};
    must(db().one_time_keys().mark_published(published, 200));
    EXPECT_EQ(must(db().one_time_keys().prune_published(2)), 3);
    EXPECT_EQ(must(db().one_time_keys().find("k3")), std::nullopt);
    EXPECT_TRUE(must(db().one_time_keys().find("k4")));
    EXPECT_TRUE(must(db().one_time_keys().find("k5")));
    // Pending keys are never pruned: they may be on the server already.
    EXPECT_EQ(pending_ids(), std::vector<std::string>{"k6"});
    EXPECT_EQ(must(db().one_time_keys().prune_published(2)), 0);
}

}  // namespace
}  // namespace devlist::storage
