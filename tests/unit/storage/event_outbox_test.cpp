#include "storage/event_outbox.hpp"

#include "test_support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace devlist::storage {
namespace {

using testing::must;

class EventOutboxTest : public testing::StoreTest {
  protected:
    std::int64_t append(const std::string& type, timestamp_ms at = 10) {
        return must(db().outbox().append({0, at, type, R"({"t":")" + type + "\"}"}));
    }
    std::vector<std::string> types(const std::vector<outbox_event>& events) {
        std::vector<std::string> out;
        for (const outbox_event& e : events)
            out.push_back(e.type);
        return out;
    }
};

TEST_F(EventOutboxTest, AppendAssignsIncreasingCursors) {
    std::int64_t a = append("a");
    std::int64_t b = append("b");
    EXPECT_GT(a, 0);
    EXPECT_GT(b, a);
    EXPECT_EQ(must(db().outbox().last_cursor()), b);
    auto events = must(db().outbox().read(event_outbox::default_consumer, 10));
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].cursor, a);
    EXPECT_EQ(events[0].at, 10);
    EXPECT_EQ(events[0].payload_json, R"({"t":"a"})");
}

TEST_F(EventOutboxTest, ReadHonoursTheLimitAndTheConsumersCursor) {
    append("a");
    std::int64_t b = append("b");
    append("c");
    EXPECT_EQ(types(must(db().outbox().read("default", 2))), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(must(db().outbox().acknowledge("default", b)), b);
    EXPECT_EQ(types(must(db().outbox().read("default", 10))), std::vector<std::string>{"c"});
    EXPECT_EQ(types(must(db().outbox().read_after(0, 10))),
              (std::vector<std::string>{"a", "b", "c"}));
}

TEST_F(EventOutboxTest, AcknowledgementsAreMonotonic) {
    std::int64_t a = append("a");
    std::int64_t b = append("b");
    EXPECT_EQ(must(db().outbox().acknowledge("default", b)), b);
    // An older cursor (a client re-acknowledging after a reconnect) changes nothing.
    EXPECT_EQ(must(db().outbox().acknowledge("default", a)), b);
    EXPECT_TRUE(must(db().outbox().read("default", 10)).empty());
}

TEST_F(EventOutboxTest, AcknowledgingBeyondTheLastEventIsAnError) {
    std::int64_t a = append("a");
    auto r = db().outbox().acknowledge("default", a + 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::invalid_argument);
    EXPECT_NE(r.error().detail.find("the last event has cursor " + std::to_string(a)),
              std::string::npos)
        << r.error().detail;
    EXPECT_FALSE(db().outbox().acknowledge("default", -1));
    EXPECT_EQ(must(db().outbox().consumers())[0].acknowledged, 0);
}

TEST_F(EventOutboxTest, UnknownConsumerIsAnError) {
    append("a");
    auto read = db().outbox().read("nobody", 10);
    ASSERT_FALSE(read);
    EXPECT_EQ(read.error(), errc::invalid_argument);
    EXPECT_NE(read.error().detail.find("'nobody'"), std::string::npos);
    auto ack = db().outbox().acknowledge("nobody", 1);
    ASSERT_FALSE(ack);
    EXPECT_EQ(ack.error(), errc::invalid_argument);
}

TEST_F(EventOutboxTest, ConsumersHaveTheirOwnCursors) {
    append("old");
    must(db().outbox().add_consumer("bot"));
    must(db().outbox().add_consumer("bot"));  // idempotent
    std::int64_t next = append("new");
    // A new consumer starts after the events that existed when it was added.
    EXPECT_EQ(types(must(db().outbox().read("bot", 10))), std::vector<std::string>{"new"});
    EXPECT_EQ(types(must(db().outbox().read("default", 10))),
              (std::vector<std::string>{"old", "new"}));
    must(db().outbox().acknowledge("bot", next));
    EXPECT_TRUE(must(db().outbox().read("bot", 10)).empty());
    EXPECT_EQ(must(db().outbox().read("default", 10)).size(), 2u);
    auto consumers = must(db().outbox().consumers());
    ASSERT_EQ(consumers.size(), 2u);
    EXPECT_EQ(consumers[0].name, "bot");
    EXPECT_EQ(consumers[0].acknowledged, next);
    EXPECT_EQ(consumers[1].name, "default");
    EXPECT_EQ(consumers[1].acknowledged, 0);
}

TEST_F(EventOutboxTest, PruneDeletesOnlyWhatEveryConsumerAcknowledged) {
    must(db().outbox().add_consumer("bot"));
    std::int64_t a = append("a");
    std::int64_t b = append("b");
    must(db().outbox().acknowledge("default", b));
    must(db().outbox().acknowledge("bot", a));
    EXPECT_EQ(must(db().outbox().prune()), 1);
    EXPECT_EQ(types(must(db().outbox().read_after(0, 10))), std::vector<std::string>{"b"});

    must(db().outbox().remove_consumer("bot"));  // no longer holds events back
    EXPECT_EQ(must(db().outbox().prune()), 1);
    EXPECT_TRUE(must(db().outbox().read_after(0, 10)).empty());
}

TEST_F(EventOutboxTest, CursorsAreNeverReusedAfterPruning) {
    std::int64_t a = append("a");
    must(db().outbox().acknowledge("default", a));
    must(db().outbox().prune());
    EXPECT_EQ(must(db().outbox().last_cursor()), a);
    EXPECT_GT(append("b"), a);
}

TEST_F(EventOutboxTest, PayloadMustBeJson) {
    auto r = db().outbox().append({0, 1, "x", "{not json"});
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::storage_error);
}

}  // namespace
}  // namespace devlist::storage
