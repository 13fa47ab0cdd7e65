// The engine against the test homeserver, with a standard cast (alice with two devices and bob
// share an encrypted room with the bot; carol only an unencrypted one), a local consumer that
// reads and acknowledges the event stream, and the store checker (tests/support) to judge the
// store against the homeserver after each scenario.
#pragma once

#include "engine_fixture.hpp"
#include "tests/homeserver/client_api.hpp"
#include "tests/support/store_checker.hpp"

#include <string>

namespace devlist::test {

class checked_engine_fixture : public engine_fixture {
  protected:
    static constexpr const char* alice = "@alice:localhost";
    static constexpr const char* bob = "@bob:localhost";
    static constexpr const char* carol = "@carol:localhost";
    static constexpr const char* device = "BOTDEVICE";

    std::string room;
    consumer_view consumer{"default"};
    store_checker_options checks;

    void SetUp() override {
        engine_fixture::SetUp();
        checks.sealing_key = options.sealing_key.get();
        checks.consumer = &consumer;
        for (const char* u : {alice, bob, carol})
            hs.add_user(u, "pw");
        hs.add_device(alice, "ALICE1", "Alice's laptop");
        hs.add_device(alice, "ALICE2", "Alice's phone");
        hs.add_device(bob, "BOB1");
        hs.add_device(carol, "CAROL1");
        room = hs.create_room(alice, true);
        hs.join(room, bob);
        hs.join(room, bot);
        hs.join(hs.create_room(carol, false), bot);
    }

    // Every change the homeserver made is applied and queried: the engine synced up to the
    // homeserver's position (its own uploads move it too, so that is read first), nobody is
    // outdated, and the own keys are settled (target one-time keys, a published fallback key).
    bool converged(std::int64_t position) {
        if (!engine) return false;
        const auto s = engine->status();
        if (!s.next_batch || s.outdated != 0 || s.users_in_flight != 0) return false;
        const auto synced = testing::parse_sync_token(*s.next_batch);
        if (!synced || *synced < position) return false;
        return s.keys.identity_uploaded && s.keys.one_time_keys_pending == 0 &&
               s.keys.fallback_published && hs.one_time_key_count(bot, device) == 50;
    }

    // Runs until the engine has caught up with everything scripted so far.
    bool run_until_converged(std::chrono::milliseconds limit = std::chrono::milliseconds(8000)) {
        const auto position = hs.stream_position();
        return run_until([&] { return converged(position); }, limit);
    }

    // Reads and acknowledges the event stream until nothing is left, as a local client would.
    void consume_events() {
        auto& outbox = store->outbox();
        for (;;) {
            std::int64_t after = 0;
            auto all = outbox.consumers();
            ASSERT_TRUE(all) << all.error().message();
            for (const auto& c : *all) {
                if (c.name == consumer.name()) after = c.acknowledged;
            }
            auto events = outbox.read(consumer.name(), 100);
            ASSERT_TRUE(events) << events.error().message();
            if (events->empty()) return;
            const auto last = events->back().cursor;
            consumer.on_read(std::move(*events), after);
            auto acked = outbox.acknowledge(consumer.name(), last);
            ASSERT_TRUE(acked) << acked.error().message();
            consumer.on_acknowledged(last);
            ASSERT_TRUE(outbox.prune());
        }
    }

    // Reads the events, then asks the checker; the problems it found, none if it passed.
    problem_list check() {
        consume_events();
        return check_store(*store, hs, checks);
    }

    // Scripted changes that a healthy engine must pick up after a fault: a device each for
    // alice and bob, and dave (new) in the encrypted room.
    void more_changes(const std::string& tag) {
        hs.add_device(alice, "ALICE" + tag);
        hs.add_device(bob, "BOB" + tag);
        const std::string dave = "@dave" + tag + ":localhost";
        hs.add_user(dave, "pw");
        hs.add_device(dave, "DAVE" + tag);
        hs.join(room, dave);
    }
};

}  // namespace devlist::test
