// The C API of libdevlist.so (include/devlist/devlist.h): the library's own thread, calls from
// other threads (also at once), callbacks, waits cut short by devlist_stop, error strings.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "crypto/json_value.hpp"
#include "devlist/devlist.h"
#include "tests/library/library_fixture.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// A malloc'd string of the library, freed when it goes.
struct owned_string {
    char* s = nullptr;
    owned_string() = default;
    explicit owned_string(char* p) : s(p) {}
    owned_string(const owned_string&) = delete;
    owned_string& operator=(const owned_string&) = delete;
    ~owned_string() { devlist_free_string(s); }
    char** out() { return &s; }
    std::string str() const { return s ? s : ""; }
    explicit operator bool() const { return s != nullptr; }
};

json::value parsed(const owned_string& s) {
    auto v = json::parse(s.str());
    EXPECT_TRUE(v) << "not JSON: " << s.str();
    return v ? *v : json::value();
}

// What the event callback received, for the test's thread to wait on.
struct event_sink {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<std::string> batches;
    std::thread::id thread;
    // Calls made from inside the callback, and their outcome.
    bool probe_calls = false;
    std::string wait_error;
    int stop_result = 0;
    std::string status_in_callback;
    devlist_handle* handle = nullptr;

    static void callback(const char* json, void* user) {
        auto* self = static_cast<event_sink*>(user);
        if (self->probe_calls) {
            owned_string error;
            owned_string waited(devlist_events(self->handle, "probe", -1, 1000, 10, error.out()));
            owned_string stop_error;
            int stopped = devlist_stop(self->handle, stop_error.out());
            owned_string status(devlist_status(self->handle, nullptr));
            std::lock_guard lock(self->mutex);
            self->wait_error = error.str();
            self->stop_result = stopped;
            self->status_in_callback = status.str();
        }
        std::lock_guard lock(self->mutex);
        self->thread = std::this_thread::get_id();
        self->batches.emplace_back(json);
        self->changed.notify_all();
    }

    bool wait_for(const std::string& needle, clock::duration limit = 15s) {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, limit, [&] {
            for (const auto& b : batches) {
                if (b.find(needle) != std::string::npos) return true;
            }
            return false;
        });
    }
};

class c_api_test : public library_fixture {
  protected:
    devlist_handle* d = nullptr;

    void TearDown() override {
        devlist_destroy(d);
        library_fixture::TearDown();
    }

    void create(const std::string& extra = {}) {
        owned_string error;
        d = devlist_create_from_config_file(write_config(extra).c_str(), error.out());
        ASSERT_TRUE(d) << error.str();
    }

    void start() {
        owned_string error;
        ASSERT_EQ(devlist_start(d, error.out()), 0) << error.str();
    }

    // The answer once the bot's view of Alice is fresh: blocking calls from the test's thread.
    // Tracked explicitly: until the first sync is in, the bot does not know Alice shares a room.
    json::value fresh_alice() {
        owned_string error;
        EXPECT_EQ(devlist_track(d, alice, error.out()), 0) << error.str();
        owned_string answer(devlist_devices(d, alice, 1, 10000, error.out()));
        EXPECT_TRUE(answer) << error.str();
        return parsed(answer);
    }
};

TEST_F(c_api_test, a_started_engine_answers_with_the_socket_apis_json) {
    create();
    start();
    EXPECT_EQ(devlist_is_running(d), 1);
    owned_string sync_error;
    owned_string synced(devlist_wait_for_sync(d, 10000, sync_error.out()));
    ASSERT_TRUE(synced) << sync_error.str();
    EXPECT_GE(parsed(synced)["sync"]["syncs"].as_integer(), 1);
    // After the first sync the bot knows Alice shares an encrypted room: no need to track her.
    owned_string listed(devlist_devices(d, alice, 1, 10000, sync_error.out()));
    ASSERT_TRUE(listed) << sync_error.str();
    EXPECT_EQ(parsed(listed)["reasons"].as_array().size(), 1u);
    EXPECT_EQ(parsed(listed)["reasons"].as_array()[0].as_string(), "encrypted_room");
    auto devices = fresh_alice();
    EXPECT_EQ(devices["outdated"].as_bool(), false);
    ASSERT_EQ(devices["devices"].as_array().size(), 1u);
    EXPECT_EQ(devices["devices"].as_array()[0]["device_id"].as_string(), "ALICE1");
    EXPECT_EQ(devices["devices"].as_array()[0]["ed25519"].as_string(),
              served_ed25519(alice, "ALICE1"));

    owned_string error;
    owned_string status(devlist_status(d, error.out()));
    ASSERT_TRUE(status) << error.str();
    auto s = parsed(status);
    EXPECT_EQ(s["user_id"].as_string(), bot);
    EXPECT_EQ(s["device_id"].as_string(), "BOTDEVICE");
    EXPECT_GE(s["sync"]["syncs"].as_integer(), 1);
    EXPECT_EQ(s["version"].as_string(), devlist_version());

    owned_string whois(devlist_device_by_curve25519(d, alice1.curve25519.c_str(), error.out()));
    ASSERT_TRUE(whois) << error.str();
    EXPECT_EQ(parsed(whois)["user_id"].as_string(), alice);
    owned_string nobody(devlist_device_by_curve25519(d, "nokey", error.out()));
    EXPECT_FALSE(nobody);
    EXPECT_FALSE(error) << "not found is not an error";

    owned_string tracked(devlist_tracked(d, error.out()));
    ASSERT_TRUE(tracked) << error.str();
    EXPECT_NE(tracked.str().find(alice), std::string::npos);

    owned_string stop_error;
    EXPECT_EQ(devlist_stop(d, stop_error.out()), 0) << stop_error.str();
    EXPECT_EQ(devlist_is_running(d), 0);
    // Stopped: calls still read the database, on the calling thread.
    owned_string after(devlist_devices(d, alice, 0, 0, error.out()));
    ASSERT_TRUE(after) << error.str();
    EXPECT_EQ(parsed(after)["devices"].as_array()[0]["device_id"].as_string(), "ALICE1");
}

TEST_F(c_api_test, the_event_callback_runs_on_the_librarys_thread_for_a_device_added_later) {
    create();
    event_sink sink;
    owned_string error;
    ASSERT_EQ(devlist_set_event_callback(d, -1, &event_sink::callback, &sink, error.out()), 0);
    start();
    fresh_alice();
    auto alice2 = hs.add_device(alice, "ALICE2", "Alice's phone");
    ASSERT_TRUE(sink.wait_for("\"device_added\""));
    ASSERT_TRUE(sink.wait_for(alice2.curve25519));
    std::lock_guard lock(sink.mutex);
    EXPECT_NE(sink.thread, std::this_thread::get_id());
    for (const auto& b : sink.batches) {
        auto v = json::parse(b);
        ASSERT_TRUE(v) << b;
        EXPECT_TRUE((*v)["next"].is_integer());
    }
}

TEST_F(c_api_test, a_callback_may_ask_but_neither_wait_nor_stop) {
    create();
    event_sink sink;
    sink.probe_calls = true;
    sink.handle = d;
    start();
    fresh_alice();
    owned_string error;
    ASSERT_EQ(devlist_set_event_callback(d, -1, &event_sink::callback, &sink, error.out()), 0);
    hs.add_device(alice, "ALICE2");
    ASSERT_TRUE(sink.wait_for("ALICE2"));
    std::lock_guard lock(sink.mutex);
    EXPECT_NE(sink.wait_error.find("callback"), std::string::npos) << sink.wait_error;
    EXPECT_EQ(sink.stop_result, -1);
    EXPECT_NE(sink.status_in_callback.find("\"syncing\""), std::string::npos);
    EXPECT_EQ(devlist_is_running(d), 1);
}

TEST_F(c_api_test, many_threads_call_at_once) {
    create();
    start();
    fresh_alice();
    std::atomic<int> answers{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                owned_string error;
                owned_string a(t % 2 ? devlist_status(d, error.out())
                                     : devlist_devices(d, alice, 0, 0, error.out()));
                (a && json::parse(a.str()) ? answers : failures)++;
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(answers, 400);
    EXPECT_EQ(failures, 0);
}

TEST_F(c_api_test, stopping_ends_a_waiting_call_with_what_there_is) {
    // Dave's server never answers /keys/query, so his list cannot become fresh: a fresh-wait for
    // him lasts its whole timeout unless devlist_stop ends it.
    const char* dave = "@dave:elsewhere.example";
    hs.add_user(dave);
    hs.set_server_reachable("elsewhere.example", false);
    create();
    start();
    owned_string error;
    ASSERT_EQ(devlist_track(d, dave, error.out()), 0) << error.str();
    auto waiting = std::async(std::launch::async, [&] {
        owned_string wait_error;
        owned_string a(devlist_devices(d, dave, 1, 60000, wait_error.out()));
        return a ? a.str() : "error: " + wait_error.str();
    });
    // Still waiting a while later (its timeout is a minute): the stop below ends it.
    ASSERT_EQ(waiting.wait_for(300ms), std::future_status::timeout) << waiting.get();
    ASSERT_EQ(devlist_stop(d, error.out()), 0) << error.str();
    ASSERT_EQ(waiting.wait_for(10s), std::future_status::ready);
    auto answer = json::parse(waiting.get());
    ASSERT_TRUE(answer);
    EXPECT_EQ((*answer)["user_id"].as_string(), dave);
    EXPECT_EQ((*answer)["tracked"].as_bool(), true);
    EXPECT_EQ((*answer)["outdated"].as_bool(), true);
}

TEST_F(c_api_test, a_refused_sync_batch_is_offered_again) {
    create();
    struct state {
        std::mutex mutex;
        std::condition_variable changed;
        int seen = 0;
    } st;
    auto callback = +[](const char* body, size_t size, void* user) -> int {
        auto* s = static_cast<state*>(user);
        std::string_view b(body, size);
        if (b.find("m.c.test") == std::string_view::npos) return 0;
        std::lock_guard lock(s->mutex);
        ++s->seen;
        s->changed.notify_all();
        return s->seen == 1 ? 1 : 0;  // refuse the first time
    };
    owned_string error;
    ASSERT_EQ(devlist_set_sync_callback(d, callback, &st, error.out()), 0) << error.str();
    start();
    fresh_alice();
    ASSERT_TRUE(hs.wait_for_long_poll(bot, clock::now() + 5s));
    hs.send_to_device(alice, bot, "BOTDEVICE", "m.c.test", json::object{{"n", 1}});
    std::unique_lock lock(st.mutex);
    ASSERT_TRUE(st.changed.wait_for(lock, 15s, [&] { return st.seen >= 2; }));
    lock.unlock();
    owned_string events(devlist_events(d, nullptr, 0, 0, 1000, error.out()));
    ASSERT_TRUE(events) << error.str();
    EXPECT_NE(events.str().find("m.c.test"), std::string::npos);
    // Only before start.
    EXPECT_EQ(devlist_set_sync_callback(d, nullptr, nullptr, error.out()), -1);
}

TEST_F(c_api_test, tracking_keys_and_errors) {
    create();
    start();
    fresh_alice();
    owned_string error;
    EXPECT_EQ(devlist_track(d, "@carol:localhost", error.out()), 0) << error.str();
    EXPECT_EQ(devlist_untrack(d, "@carol:localhost", error.out()), 1) << error.str();
    EXPECT_EQ(devlist_untrack(d, "@carol:localhost", error.out()), 0) << error.str();
    EXPECT_EQ(devlist_refresh(d, alice, error.out()), 0) << error.str();

    owned_string bad;
    EXPECT_EQ(devlist_track(d, "carol", bad.out()), -1);
    EXPECT_NE(bad.str().find("not a valid user ID"), std::string::npos) << bad.str();
    owned_string bad_limit;
    EXPECT_FALSE(owned_string(devlist_events(d, nullptr, 0, 0, 0, bad_limit.out())));
    EXPECT_NE(bad_limit.str().find("limit"), std::string::npos);
    owned_string bad_ack;
    EXPECT_EQ(devlist_ack(d, "never-registered", 0, bad_ack.out()), -1);
    EXPECT_FALSE(bad_ack.str().empty());

    ASSERT_TRUE(hs.wait_for_request(
        [](const testing::request_record& r) {
            return r.path.ends_with("/keys/upload") && r.status == 200 &&
                   r.request_body.find("signed_curve25519:") != std::string::npos;
        },
        clock::now() + 10s));
    auto claimed = hs.claim_one_time_key(bot, "BOTDEVICE");
    ASSERT_TRUE(claimed);
    const auto& [full_id, key] = *claimed->as_object().begin();
    const std::string key_id = full_id.substr(full_id.find(':') + 1);
    owned_string taken(devlist_take_one_time_key(d, key_id.c_str(), 0, error.out()));
    ASSERT_TRUE(taken) << error.str();
    EXPECT_EQ(parsed(taken)["public_key"].as_string(), key.find("key")->as_string());
    owned_string twice(devlist_take_one_time_key(d, key_id.c_str(), 0, error.out()));
    EXPECT_FALSE(twice);
    EXPECT_FALSE(error);

    owned_string fallback(devlist_fallback_keys(d, error.out()));
    ASSERT_TRUE(fallback) << error.str();
    EXPECT_TRUE(parsed(fallback)["keys"].is_array());
}

TEST(c_api_create_test, a_bad_configuration_is_refused_with_the_reason) {
    owned_string error;
    devlist_handle* d = devlist_create_from_config_string(
        "homeserver = \"https://m.example.org\"\n", "/tmp", error.out());
    EXPECT_EQ(d, nullptr);
    EXPECT_NE(error.str().find("user_id"), std::string::npos) << error.str();
    owned_string missing;
    EXPECT_EQ(devlist_create_from_config_file("/nonexistent/bot.toml", missing.out()), nullptr);
    EXPECT_NE(missing.str().find("/nonexistent/bot.toml"), std::string::npos) << missing.str();
    devlist_destroy(nullptr);
}

}  // namespace
}  // namespace devlist::test
