// devlist::engine, the C++ façade of libdevlist.so, run on the test's own io_context against the
// test homeserver: typed answers, waits, subscriptions, the sync hook, keys, configuration.
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <algorithm>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "crypto/base64.hpp"
#include "crypto/curve25519.hpp"
#include "crypto/json_value.hpp"
#include "devlist/engine.hpp"
#include "devlist/json.hpp"
#include "tests/library/library_fixture.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

class engine_test : public library_fixture {
  protected:
    asio::io_context io{1};
    std::optional<devlist::engine> engine;
    asio::cancellation_signal stop_signal;
    bool started = false;
    std::optional<result<void>> ended;
    std::vector<std::string> log_lines;

    void TearDown() override {
        stop();
        if (HasFailure()) {
            for (const auto& l : log_lines)
                std::fprintf(stderr, "engine log: %s\n", l.c_str());
        }
        engine.reset();
        library_fixture::TearDown();
    }

    engine_config config(const std::string& extra = {}) {
        auto c = parse_engine_config(config_toml(extra), dir.path());
        EXPECT_TRUE(c) << c.error().message();
        return c ? *c : engine_config{};
    }

    void create(engine_config c, engine_hooks hooks = {}) {
        c.min_log_level = log_level::debug;
        hooks.log = [this](log_level, std::string_view line) { log_lines.emplace_back(line); };
        auto e = devlist::engine::create(io.get_executor(), std::move(c), std::move(hooks));
        ASSERT_TRUE(e) << e.error().message();
        engine.emplace(std::move(*e));
    }

    void start() {
        started = true;
        ended.reset();
        engine->async_run(asio::bind_cancellation_slot(
            stop_signal.slot(), [this](std::exception_ptr e, result<void> r) {
                if (e) {
                    ADD_FAILURE() << "run() threw";
                    r = error{errc::invalid_argument, "threw"};
                }
                ended = std::move(r);
            }));
    }

    void stop() {
        if (!engine || !started || ended) return;
        stop_signal.emit(asio::cancellation_type::terminal);
        ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
        EXPECT_TRUE(*ended) << ended->error().message();
    }

    bool run_until(const std::function<bool()>& done,
                   std::chrono::milliseconds limit = std::chrono::milliseconds(15000)) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() >= deadline) return false;
            if (io.stopped()) io.restart();
            io.run_one_until(deadline);
        }
        return true;
    }

    // Runs a coroutine of the engine to its end on the test's io_context.
    template <class T>
    std::optional<T> await(asio::awaitable<T> a, std::chrono::milliseconds limit = 15000ms) {
        std::optional<T> out;
        asio::co_spawn(io, std::move(a), [&](std::exception_ptr e, T v) {
            EXPECT_FALSE(e) << "the coroutine threw";
            out.emplace(std::move(v));
        });
        EXPECT_TRUE(run_until([&] { return out.has_value(); }, limit));
        return out;
    }

    // A member of a shared room is tracked once the first sync is in; then waits for the list.
    std::optional<user_devices> fresh_devices_of(const std::string& user) {
        auto synced = await(engine->wait_for_sync(10s));
        if (!synced || synced->syncs == 0) {
            ADD_FAILURE() << "no sync";
            return std::nullopt;
        }
        auto r = await(engine->fresh_devices(user, {10s}));
        if (!r || !*r) {
            ADD_FAILURE() << (r ? r->error().message() : "no answer");
            return std::nullopt;
        }
        return **r;
    }
};

const device* find_device(const user_devices& u, const std::string& id) {
    auto it = std::find_if(u.devices.begin(), u.devices.end(),
                           [&](const device& d) { return d.device_id == id; });
    return it == u.devices.end() ? nullptr : &*it;
}

TEST_F(engine_test, a_shared_rooms_member_is_tracked_and_their_devices_are_fresh_and_verified) {
    create(config());
    start();
    auto alice_devices = fresh_devices_of(alice);
    ASSERT_TRUE(alice_devices);
    EXPECT_TRUE(alice_devices->tracked);
    EXPECT_FALSE(alice_devices->outdated);
    EXPECT_TRUE(alice_devices->reasons.encrypted_room);
    ASSERT_EQ(alice_devices->devices.size(), 1u);
    const auto& d = alice_devices->devices[0];
    EXPECT_EQ(d.device_id, "ALICE1");
    EXPECT_EQ(d.ed25519, served_ed25519(alice, "ALICE1"));
    EXPECT_EQ(d.curve25519, alice1.curve25519);
    EXPECT_EQ(d.display_name, "Alice's laptop");

    auto by_key = engine->device_by_curve25519(alice1.curve25519);
    ASSERT_TRUE(by_key && *by_key);
    EXPECT_EQ((*by_key)->user_id, alice);
    EXPECT_EQ((*by_key)->device_id, "ALICE1");
    EXPECT_FALSE((*by_key)->deleted_at);

    auto s = engine->status();
    EXPECT_EQ(s.user_id, bot);
    EXPECT_EQ(s.device_id, "BOTDEVICE");
    EXPECT_EQ(s.phase, engine_phase::syncing);
    EXPECT_GE(s.syncs, 1u);
    EXPECT_EQ(s.version, library_version());

    // The JSON answers are the socket API's documents.
    auto json = json::parse(to_json(*alice_devices));
    ASSERT_TRUE(json);
    EXPECT_EQ((*json)["devices"].as_array()[0]["device_id"].as_string(), "ALICE1");
    EXPECT_EQ((*json)["outdated"].as_bool(), false);
    auto status_json = json::parse(to_json(s));
    ASSERT_TRUE(status_json);
    EXPECT_EQ((*status_json)["phase"].as_string(), "syncing");
}

TEST_F(engine_test, track_refresh_and_untrack_a_user_met_nowhere) {
    hs.add_user("@carol:localhost", "pw");
    auto carol1 = hs.add_device("@carol:localhost", "CAROL1");
    create(config());
    start();
    auto before = engine->devices("@carol:localhost");
    ASSERT_TRUE(before);
    EXPECT_FALSE(before->tracked);
    EXPECT_TRUE(before->outdated);

    ASSERT_TRUE(engine->track("@carol:localhost"));
    auto carol = fresh_devices_of("@carol:localhost");
    ASSERT_TRUE(carol);
    EXPECT_TRUE(carol->reasons.explicit_request);
    ASSERT_TRUE(find_device(*carol, "CAROL1"));
    EXPECT_EQ(find_device(*carol, "CAROL1")->curve25519, carol1.curve25519);

    ASSERT_TRUE(engine->refresh("@carol:localhost"));
    EXPECT_TRUE(engine->devices("@carol:localhost")->outdated);
    auto tracked = engine->tracked_users();
    ASSERT_TRUE(tracked);
    EXPECT_TRUE(std::any_of(tracked->begin(), tracked->end(),
                            [](const tracked_user& u) { return u.user_id == "@carol:localhost"; }));

    auto was = engine->untrack("@carol:localhost");
    ASSERT_TRUE(was);
    EXPECT_TRUE(*was);
    EXPECT_FALSE(engine->devices("@carol:localhost")->tracked);

    // Errors made inside the library compare equal to errc values here.
    auto bad = engine->track("carol");
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error() == errc::invalid_argument) << bad.error().message();
    auto not_tracked = engine->refresh("@nobody:localhost");
    ASSERT_FALSE(not_tracked);
    EXPECT_TRUE(not_tracked.error() == errc::invalid_argument);
}

TEST_F(engine_test, tracking_before_run_keeps_what_the_database_knows) {
    create(config());
    start();
    ASSERT_TRUE(fresh_devices_of(alice));
    stop();
    engine.reset();

    // A new engine on the same database; the bot asks before it starts the engine.
    create(config());
    ASSERT_TRUE(engine->track(alice));
    auto users = engine->tracked_users();
    ASSERT_TRUE(users);
    auto it = std::find_if(users->begin(), users->end(),
                           [](const tracked_user& u) { return u.user_id == alice; });
    ASSERT_NE(it, users->end());
    EXPECT_TRUE(it->reasons.encrypted_room) << "the stored reason was overwritten";
    EXPECT_TRUE(it->reasons.explicit_request);
    start();
    auto again = fresh_devices_of(alice);
    ASSERT_TRUE(again);
    EXPECT_TRUE(again->reasons.encrypted_room && again->reasons.explicit_request);
}

TEST_F(engine_test, a_subscriber_gets_the_event_of_a_device_added_after_start) {
    create(config());
    start();
    ASSERT_TRUE(fresh_devices_of(alice));
    std::vector<event_batch> batches;
    engine->subscribe(engine->status().last_event_cursor,
                      [&](const event_batch& b) { batches.push_back(b); });
    const auto start_cursor = engine->status().last_event_cursor;
    auto alice2 = hs.add_device(alice, "ALICE2", "Alice's phone");

    const event* added = nullptr;
    ASSERT_TRUE(run_until([&] {
        for (const auto& b : batches) {
            for (const auto& e : b.events) {
                if (e.type == "device_added" && e.data_json.find("ALICE2") != std::string::npos) {
                    added = &e;
                }
            }
        }
        return added != nullptr;
    }));
    auto data = json::parse(added->data_json);
    ASSERT_TRUE(data);
    EXPECT_EQ((*data)["user_id"].as_string(), alice);
    EXPECT_EQ((*data)["curve25519"].as_string(), alice2.curve25519);
    EXPECT_GT(added->cursor, start_cursor);
    for (std::size_t i = 1; i < batches.size(); ++i) {
        EXPECT_GT(batches[i].events.front().cursor, batches[i - 1].next);  // never twice
    }

    // The same event through a consumer, which survives restarts, then acknowledged.
    auto cursor = engine->consumer_cursor("bot");
    ASSERT_TRUE(cursor);
    auto read = await(engine->wait_for_events(start_cursor, 5s));
    ASSERT_TRUE(read && *read);
    ASSERT_FALSE((*read)->events.empty());
    auto acked = engine->acknowledge("bot", (*read)->next);
    ASSERT_TRUE(acked);
    EXPECT_EQ(*acked, (*read)->next);
    auto unknown = engine->acknowledge("nobody", 1);
    EXPECT_FALSE(unknown);
}

TEST_F(engine_test, an_event_wait_ends_empty_at_its_timeout) {
    // Not started: nothing can commit an event, so the wait must end at its timeout.
    create(config());
    const auto last = engine->status().last_event_cursor;
    auto read = await(engine->wait_for_events(last, 200ms));
    ASSERT_TRUE(read && *read);
    EXPECT_TRUE((*read)->events.empty());
    EXPECT_EQ((*read)->next, last);
}

TEST_F(engine_test, the_sync_hook_sees_each_body_and_a_refused_batch_again) {
    std::vector<std::string> bodies;
    bool refused = false;
    engine_hooks hooks;
    hooks.on_sync = [&](const sync_response_view& v) -> result<void> {
        bodies.emplace_back(v.body);
        if (!refused && v.body.find("m.lib.test") != std::string_view::npos) {
            refused = true;
            return error{errc::io_error, "not now"};
        }
        return {};
    };
    create(config(), std::move(hooks));
    start();
    ASSERT_TRUE(fresh_devices_of(alice));
    ASSERT_TRUE(hs.wait_for_long_poll(bot, std::chrono::steady_clock::now() + 5s));
    hs.send_to_device(alice, bot, "BOTDEVICE", "m.lib.test", json::object{{"n", 7}});
    auto seen = [&] {
        return std::count_if(bodies.begin(), bodies.end(), [](const std::string& b) {
            return b.find("m.lib.test") != std::string::npos;
        });
    };
    ASSERT_TRUE(run_until([&] { return seen() == 2; }));
    EXPECT_TRUE(refused);
    // Committed once, after the hook took it.
    auto events = engine->events_after(0, 1000);
    ASSERT_TRUE(events);
    EXPECT_EQ(std::count_if(events->events.begin(), events->events.end(),
                            [](const event& e) {
                                return e.type == "to_device" &&
                                       e.data_json.find("m.lib.test") != std::string::npos;
                            }),
              1);
}

TEST_F(engine_test, a_claimed_one_time_key_is_handed_out_once_with_its_private_half) {
    create(config());
    start();
    ASSERT_TRUE(run_until([&] { return hs.one_time_key_count(bot, "BOTDEVICE") >= 50; }));
    auto claimed = hs.claim_one_time_key(bot, "BOTDEVICE");
    ASSERT_TRUE(claimed);
    const auto& [full_id, key] = *claimed->as_object().begin();
    const std::string public_key = key.find("key")->as_string();

    auto taken = engine->take_one_time_key(full_id);  // with the algorithm prefix
    ASSERT_TRUE(taken && *taken) << (taken ? "not found" : taken.error().message());
    EXPECT_EQ((*taken)->public_key, public_key);
    auto secret = crypto::base64_decode((*taken)->private_key);
    ASSERT_TRUE(secret);
    auto pair = crypto::curve25519_key_pair::from_secret(*secret);
    ASSERT_TRUE(pair);
    EXPECT_EQ(pair->public_key().to_base64(), public_key);
    auto again = engine->take_one_time_key_by_public_key(public_key);
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);

    ASSERT_TRUE(run_until([&] { return engine->status().keys.fallback_published; }));
    auto fallback = engine->fallback_keys();
    ASSERT_TRUE(fallback);
    ASSERT_FALSE(fallback->empty());
    EXPECT_TRUE(fallback->front().current);
    EXPECT_FALSE(fallback->front().private_key.empty());
}

TEST_F(engine_test, waiting_for_the_first_sync_ends_at_the_timeout_or_when_run_ends) {
    create(config());
    auto not_started = await(engine->wait_for_sync(100ms));
    ASSERT_TRUE(not_started);
    EXPECT_EQ(not_started->syncs, 0u);
    EXPECT_EQ(not_started->phase, engine_phase::starting);
    engine.reset();

    auto c = config();
    c.password.file.reset();
    c.password.value = "wrong";
    create(c);
    start();
    const auto before = std::chrono::steady_clock::now();
    auto refused = await(engine->wait_for_sync(60s));
    ASSERT_TRUE(refused);
    EXPECT_LT(std::chrono::steady_clock::now() - before, 30s);  // not the timeout
    EXPECT_EQ(refused->syncs, 0u);
    EXPECT_EQ(refused->phase, engine_phase::stopped);
    EXPECT_NE(refused->last_error.find("password login failed"), std::string::npos);
}

TEST_F(engine_test, a_refused_password_ends_run_with_the_reason) {
    auto c = config();
    c.password.file.reset();
    c.password.value = "wrong";
    create(c);
    start();
    ASSERT_TRUE(run_until([&] { return ended.has_value(); }));
    ASSERT_FALSE(*ended);
    EXPECT_NE(ended->error().detail.find("password login failed"), std::string::npos)
        << ended->error().message();
    // A run that ended does not start again on the same engine.
    auto again = await(engine->run());
    ASSERT_TRUE(again);
    EXPECT_FALSE(*again);
}

TEST_F(engine_test, one_database_serves_one_engine) {
    create(config());
    auto second = devlist::engine::create(io.get_executor(), config());
    ASSERT_FALSE(second);
    EXPECT_TRUE(second.error() == errc::storage_locked) << second.error().message();
}

// ---- configuration ----

TEST(engine_config_test, devlistds_file_is_read_with_paths_relative_to_its_folder) {
    auto c = parse_engine_config(R"(
homeserver = "https://matrix.example.org"
user_id = "@bot:example.org"
access_token_file = "secrets/token"
database = "/var/lib/bot/devlist.db"
one_time_key_target = 20
cross_signing = "bootstrap"
log_level = "debug"
sync_filter = '{"room":{"timeline":{"limit":5}}}'
socket = "/run/devlistd/devlistd.sock"
allowed_uids = [1000]
)",
                                 "/etc/bot");
    ASSERT_TRUE(c) << c.error().message();
    EXPECT_EQ(c->homeserver, "https://matrix.example.org");
    EXPECT_EQ(c->access_token.file, std::filesystem::path("/etc/bot/secrets/token"));
    EXPECT_FALSE(c->password.file);
    EXPECT_EQ(c->database, std::filesystem::path("/var/lib/bot/devlist.db"));
    EXPECT_EQ(c->one_time_key_target, 20u);
    EXPECT_TRUE(c->bootstrap_cross_signing);
    EXPECT_EQ(c->min_log_level, log_level::debug);
    EXPECT_EQ(c->sync_filter, R"({"room":{"timeline":{"limit":5}}})");
}

TEST(engine_config_test, mistakes_name_the_key) {
    const std::string base =
        "homeserver = \"https://m.example.org\"\nuser_id = \"@b:example.org\"\n"
        "database = \"db\"\n";
    auto missing_secret = parse_engine_config(base, "/tmp");
    ASSERT_FALSE(missing_secret);
    EXPECT_TRUE(missing_secret.error() == errc::invalid_argument);
    EXPECT_NE(missing_secret.error().detail.find("access_token_file"), std::string::npos);

    auto typo = parse_engine_config(base + "password_file = \"pw\"\npasword = 1\n", "/tmp");
    ASSERT_FALSE(typo);
    EXPECT_NE(typo.error().detail.find("'pasword'"), std::string::npos);

    auto range =
        parse_engine_config(base + "password_file = \"pw\"\none_time_key_target = 0\n", "/tmp");
    ASSERT_FALSE(range);
    EXPECT_NE(range.error().detail.find("one_time_key_target"), std::string::npos);

    auto syntax = parse_engine_config("homeserver = ", "/tmp");
    ASSERT_FALSE(syntax);
    EXPECT_TRUE(syntax.error() == errc::invalid_argument);

    auto no_file = load_engine_config("/nonexistent/bot.toml");
    ASSERT_FALSE(no_file);
    EXPECT_TRUE(no_file.error() == errc::io_error);
}

}  // namespace
}  // namespace devlist::test
