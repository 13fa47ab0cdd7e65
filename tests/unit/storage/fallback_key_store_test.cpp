#include "storage/fallback_key_store.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::must;
using testing::test_key_id;

constexpr std::chrono::milliseconds one_hour = std::chrono::hours(1);

class FallbackKeyStoreTest : public testing::StoreTest {
  protected:
    static new_key key(const std::string& name) {
        return new_key{.algorithm = "signed_curve25519",
                       .public_key = "fb-" + name,
                       .sealed_private = testing::bytes("sealed-" + name),
                       .signed_json = R"({"fallback":true,"key":"fb-)" + name + "\"}"};
    }
    fallback_key add(const std::string& name, timestamp_ms now) {
        return must(db().fallback_keys().add_pending_current(key(name), now, test_key_id));
    }
};

TEST_F(FallbackKeyStoreTest, FirstKeyBecomesCurrent) {
    EXPECT_EQ(must(db().fallback_keys().current()), std::nullopt);
    fallback_key added = add("a", 100);
    EXPECT_EQ(added.key_id, "k1");
    auto current = must(db().fallback_keys().current());
    ASSERT_TRUE(current);
    EXPECT_EQ(current->key_id, "k1");
    EXPECT_EQ(current->slot, fallback_slot::current);
    EXPECT_EQ(current->state, key_state::pending);
    EXPECT_EQ(current->sealed_private, key("a").sealed_private);
    EXPECT_EQ(current->signed_json, key("a").signed_json);
    EXPECT_TRUE(must(db().fallback_keys().previous()).empty());
}

TEST_F(FallbackKeyStoreTest, RotationKeepsThePreviousKeyUntilAnHourAfterPublication) {
    add("a", 100);
    must(db().fallback_keys().mark_published("k1", 150, one_hour));
    add("b", 1000);

    auto previous = must(db().fallback_keys().previous());
    ASSERT_EQ(previous.size(), 1u);
    EXPECT_EQ(previous[0].key_id, "k1");
    EXPECT_EQ(previous[0].slot, fallback_slot::previous);
    EXPECT_EQ(previous[0].erase_after, std::nullopt);  // the new key is not published yet
    EXPECT_EQ(must(db().fallback_keys().current())->key_id, "k2");
    EXPECT_EQ(must(db().fallback_keys().erase_expired(1'000'000'000)), 0);

    must(db().fallback_keys().mark_published("k2", 2000, one_hour));
    const timestamp_ms deadline = 2000 + one_hour.count();
    EXPECT_EQ(must(db().fallback_keys().previous())[0].erase_after, deadline);
    EXPECT_EQ(must(db().fallback_keys().erase_expired(deadline - 1)), 0);
    EXPECT_EQ(must(db().fallback_keys().erase_expired(deadline)), 1);
    EXPECT_TRUE(must(db().fallback_keys().previous()).empty());
    auto current = must(db().fallback_keys().current());
    ASSERT_TRUE(current);
    EXPECT_EQ(current->key_id, "k2");
    EXPECT_EQ(current->state, key_state::published);
    EXPECT_EQ(current->published_at, 2000);
}

TEST_F(FallbackKeyStoreTest, TwoRotationsBeforePublicationKeepBothPreviousKeys) {
    add("a", 100);
    add("b", 200);
    add("c", 300);
    auto previous = must(db().fallback_keys().previous());
    ASSERT_EQ(previous.size(), 2u);
    EXPECT_EQ(previous[0].key_id, "k2");  // newest first
    EXPECT_EQ(previous[1].key_id, "k1");
    must(db().fallback_keys().mark_published("k3", 400, one_hour));
    for (const fallback_key& k : must(db().fallback_keys().previous())) {
        EXPECT_EQ(k.erase_after, 400 + one_hour.count()) << k.key_id;
    }
}

TEST_F(FallbackKeyStoreTest, PublishingAPreviousKeyStartsNoCountdown) {
    add("a", 100);
    add("b", 200);
    must(db().fallback_keys().mark_published("k1", 300, one_hour));  // a late answer for k1
    EXPECT_EQ(must(db().fallback_keys().previous())[0].erase_after, std::nullopt);
}

TEST_F(FallbackKeyStoreTest, MarkUsedOnlyOnce) {
    add("a", 100);
    EXPECT_TRUE(must(db().fallback_keys().mark_used("k1", 500)));
    EXPECT_FALSE(must(db().fallback_keys().mark_used("k1", 600)));  // a replayed /sync
    EXPECT_EQ(must(db().fallback_keys().current())->used_at, 500);
}

TEST_F(FallbackKeyStoreTest, MarkPublishedUnknownKeyIsAnError) {
    auto r = db().fallback_keys().mark_published("nope", 1, one_hour);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_NE(r.error().detail.find("'nope'"), std::string::npos);
}

TEST_F(FallbackKeyStoreTest, FindsCurrentAndPreviousByPublicKey) {
    add("a", 100);
    add("b", 200);
    auto old = must(db().fallback_keys().find_by_public_key("fb-a"));
    ASSERT_TRUE(old);
    EXPECT_EQ(old->slot, fallback_slot::previous);
    EXPECT_EQ(must(db().fallback_keys().find_by_public_key("fb-b"))->slot, fallback_slot::current);
    EXPECT_EQ(must(db().fallback_keys().find_by_public_key("fb-x")), std::nullopt);
}

TEST_F(FallbackKeyStoreTest, AlgorithmsRotateIndependently) {
    add("a", 100);
    new_key other = key("z");
    other.algorithm = "other_algorithm";
    must(db().fallback_keys().add_pending_current(other, 200, test_key_id));
    EXPECT_EQ(must(db().fallback_keys().current())->key_id, "k1");
    EXPECT_EQ(must(db().fallback_keys().current("other_algorithm"))->key_id, "k2");
    EXPECT_TRUE(must(db().fallback_keys().previous()).empty());
}

TEST_F(FallbackKeyStoreTest, AddCommitsWithFullDurability) {
    testing::synchronous_tracer tracer(db().database());
    add("a", 100);
    EXPECT_EQ(tracer.levels_of("INSERT INTO fallback_keys"), std::vector<std::string>{"FULL"});
    EXPECT_EQ(tracer.level(), "NORMAL");
}

}  // namespace
}  // namespace devlist::storage
