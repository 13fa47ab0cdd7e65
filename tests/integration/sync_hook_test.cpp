// The sync hook of engine_options (the library hands it to bots): it sees each /sync response
// before the batch is committed, and a batch it refuses is fetched and offered again.
#include <string>
#include <vector>

#include "engine_fixture.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;

struct delivery {
    std::string since;
    std::string next_batch;
    std::string body;
    std::optional<std::string> stored_next_batch;  // the store's token while the hook ran
    bool refused = false;
};

class sync_hook_test : public engine_fixture {
  protected:
    std::vector<delivery> deliveries;
    // Refuse the first batch whose body holds this text (once).
    std::string refuse_once_containing;

    void SetUp() override {
        engine_fixture::SetUp();
        hs.add_user("@alice:localhost", "pw");
        options.on_sync_response = [this](const sync::sync_delivery& d) -> result<void> {
            delivery seen;
            seen.since = d.since;
            seen.next_batch = d.next_batch;
            seen.body = d.body;
            auto state = store->sync().load_sync_state();
            EXPECT_TRUE(state);
            if (state) seen.stored_next_batch = state->next_batch;
            seen.refused = !refuse_once_containing.empty() &&
                           seen.body.find(refuse_once_containing) != std::string::npos;
            if (seen.refused) refuse_once_containing.clear();
            deliveries.push_back(seen);
            if (seen.refused) return error{errc::io_error, "the bot's own store is down"};
            return {};
        };
    }

    std::size_t deliveries_containing(const std::string& needle) const {
        std::size_t n = 0;
        for (const auto& d : deliveries)
            n += d.body.find(needle) != std::string::npos;
        return n;
    }

    std::vector<storage::outbox_event> outbox() {
        auto events = store->outbox().read_after(0, 1000);
        EXPECT_TRUE(events);
        return events ? *events : std::vector<storage::outbox_event>{};
    }
};

TEST_F(sync_hook_test, every_response_is_offered_before_its_batch_is_committed) {
    start();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs >= 2; }));
    ASSERT_GE(deliveries.size(), 2u);
    EXPECT_EQ(deliveries[0].since, "");  // the initial sync
    EXPECT_FALSE(deliveries[0].stored_next_batch);
    for (std::size_t i = 1; i < deliveries.size(); ++i) {
        // Each request continues from the batch before, which was committed only after the
        // hook returned.
        EXPECT_EQ(deliveries[i].since, deliveries[i - 1].next_batch);
        EXPECT_EQ(deliveries[i].stored_next_batch, deliveries[i].since);
    }
    auto body = json::parse(deliveries[0].body);
    ASSERT_TRUE(body) << deliveries[0].body;
    EXPECT_EQ((*body)["next_batch"].as_string(), deliveries[0].next_batch);
}

TEST_F(sync_hook_test, a_refused_batch_is_not_committed_and_is_offered_again) {
    start();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs >= 1; }));
    ASSERT_TRUE(hs.wait_for_long_poll(bot, std::chrono::steady_clock::now() + 5s));
    refuse_once_containing = "m.bot.test";
    hs.send_to_device("@alice:localhost", bot, "BOTDEVICE", "m.bot.test", json::object{{"n", 1}});
    ASSERT_TRUE(run_until([&] {
        for (const auto& e : outbox()) {
            if (e.payload_json.find("m.bot.test") != std::string::npos) return true;
        }
        return false;
    }));

    ASSERT_EQ(deliveries_containing("m.bot.test"), 2u);
    const delivery* refused = nullptr;
    const delivery* again = nullptr;
    for (const auto& d : deliveries) {
        if (d.body.find("m.bot.test") == std::string::npos) continue;
        (refused ? again : refused) = &d;
    }
    ASSERT_TRUE(refused && again);
    EXPECT_TRUE(refused->refused);
    EXPECT_FALSE(again->refused);
    // The same request was sent again: the refused batch was not committed meanwhile.
    EXPECT_EQ(again->since, refused->since);
    EXPECT_EQ(again->stored_next_batch, refused->stored_next_batch);
    EXPECT_EQ(again->stored_next_batch, refused->since);
    EXPECT_TRUE(logged("the sync hook refused a batch"));

    // The to-device event reached the outbox once, from the batch the hook took.
    std::size_t stored = 0;
    for (const auto& e : outbox()) {
        stored += e.payload_json.find("m.bot.test") != std::string::npos;
    }
    EXPECT_EQ(stored, 1u);
}

TEST_F(sync_hook_test, a_bots_filter_is_used_and_not_stored) {
    const std::string filter =
        R"({"room":{"state":{"lazy_load_members":false},"timeline":{"limit":7}}})";
    options.sync_filter = filter;
    start();
    ASSERT_TRUE(run_until([&] { return engine->status().syncs >= 1; }));
    std::optional<std::string> filter_id;
    for (const auto& r : hs.requests()) {
        if (r.method == "POST" && r.path.ends_with("/filter") && r.status == 200) {
            EXPECT_EQ(r.request_body, filter);
            filter_id = json::parse(r.response_body).value()["filter_id"].as_string();
        }
    }
    ASSERT_TRUE(filter_id);
    bool synced_with_it = false;
    for (const auto& r : hs.requests()) {
        if (r.path.ends_with("/sync")) {
            synced_with_it |= r.target.find("filter=" + *filter_id) != std::string::npos;
        }
    }
    EXPECT_TRUE(synced_with_it);
    auto state = store->sync().load_sync_state();
    ASSERT_TRUE(state);
    EXPECT_FALSE(state->filter_id && !state->filter_id->empty())
        << "a bot's filter must not replace the stored built-in one: " << *state->filter_id;
}

}  // namespace
}  // namespace devlist::test
