// Issue 7, "Crashes": the real devlistd killed with SIGKILL at chosen points that the older crash
// tests (crash_restart_test, key_crash_test) do not reach — while the homeserver holds a key
// upload whose first attempt it took, while it holds the cross-signing upload, inside and just
// after an event acknowledgement, and between committing a rotated fallback key and uploading
// it — then restarted. After each crash the store checker (tests/support/store_checker.hpp)
// passes on what the crash left (outdated users may lag), and after the restart on the whole
// store, with the view of a local consumer that read and acknowledged events over the socket.
//
// Points are reached with failpoints (include/devlist/failpoint.hpp, DEVLIST_FAILPOINT) or by
// having the homeserver hold a request (fault_action::hang) and killing devlistd once the
// request is seen. Nothing waits by sleeping: the homeserver's request log and devlistd's log
// (through a pipe) say when each step happened.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/json_value.hpp"
#include "storage/store.hpp"
#include "tests/e2e/daemon_log.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/test_homeserver.hpp"
#include "tests/support/store_checker.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using testing::fault;
using testing::request_record;
namespace fault_action = testing::fault_action;

constexpr const char* bot = "@bot:localhost";
constexpr const char* bot_device = "BOTDEVICE";
constexpr const char* alice = "@alice:localhost";
constexpr const char* bob = "@bob:localhost";
constexpr const char* keys_upload = "/_matrix/client/v3/keys/upload";
constexpr const char* device_signing = "/_matrix/client/v3/keys/device_signing/upload";
// Every wait is bounded by this; a healthy run needs a small fraction of it.
constexpr auto patience = 15s;

class crash_points_test : public ::testing::Test {
  protected:
    testing::test_homeserver hs;
    temp_dir dir{"dl-crashpt"};  // short: the socket path has at most 107 bytes
    std::filesystem::path socket;
    std::string extra_settings;
    std::vector<std::unique_ptr<daemon_process>> runs;
    std::string room;
    consumer_view consumer{"default"};

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, "bot-password");
        dir.write_file("password", "bot-password\n");
        socket = dir / "devlistd.sock";
        for (const char* u : {alice, bob})
            hs.add_user(u, "pw");
        hs.add_device(alice, "ALICE1");
        hs.add_device(alice, "ALICE2");
        hs.add_device(bob, "BOB1");
        room = hs.create_room(alice, true);
        hs.join(room, bob);
        hs.join(room, bot);
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                std::cerr << "---- devlistd run " << i + 1 << " (pid " << runs[i]->pid()
                          << ") ----\n"
                          << runs[i]->output();
            }
            dir.keep();
            std::cerr << "---- kept in " << dir.path().string() << "\n";
        }
        runs.clear();
        hs.stop();
    }

    // ---- running devlistd ----

    daemon_process& start_devlistd(std::optional<std::string> failpoint = std::nullopt) {
        const auto config =
            dir.write_file("devlistd.toml", "homeserver = \"" + hs.base_url() + "\"\n" +
                                                "user_id = \"@bot:localhost\"\n"
                                                "device_id = \"BOTDEVICE\"\n"
                                                "password_file = \"password\"\n"
                                                "database = \"devlistd.db\"\n"
                                                "socket = \"devlistd.sock\"\n"
                                                "sync_timeout_ms = 2000\n"
                                                "log_level = \"info\"\n" +
                                                extra_settings);
        process_options o = devlistd_options(
            DEVLISTD_PATH, config.string(),
            dir / ("devlistd-" + std::to_string(runs.size() + 1) + ".log"), std::move(failpoint));
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        return *runs.back();
    }

    void wait_for_log(const daemon_process& d, const std::string& needle) {
        ASSERT_TRUE(d.wait_for_output(needle, clock::now() + patience))
            << "never logged: " << needle;
    }

    // devlistd holds every change up to `target`, nobody outdated, and its socket answers.
    void wait_until_converged(const daemon_process& d, testing::stream_position target) {
        ASSERT_TRUE(
            d.wait_for_output([target](std::string_view log) { return has_converged(log, target); },
                              clock::now() + patience))
            << "devlistd did not apply stream position " << target
            << " and query every outdated user";
        ASSERT_NO_FATAL_FAILURE(wait_for_log(d, "socket API on " + socket.string()));
    }

    void stop_devlistd(daemon_process& d) {
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not stop on SIGTERM";
        EXPECT_TRUE(e->exited_with(0)) << *e;
    }

    void run_until_converged_and_stop(const std::vector<std::string>& needles = {}) {
        const auto target = hs.stream_position();
        auto& d = start_devlistd();
        ASSERT_NO_FATAL_FAILURE(wait_until_converged(d, target));
        for (const auto& n : needles)
            ASSERT_NO_FATAL_FAILURE(wait_for_log(d, n));
        ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
    }

    // Waits for the end of a devlistd that a failpoint or the test killed.
    void expect_killed(daemon_process& d, const std::optional<std::string>& point) {
        auto e = d.wait_exit(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not die" << (point ? " at failpoint " + *point : "");
        ASSERT_TRUE(e->killed_by(SIGKILL)) << *e;
        if (point) {
            EXPECT_NE(d.output().find("devlist: failpoint " + *point + " reached"),
                      std::string::npos);
        }
    }

    // ---- the store checker ----

    // After a crash: consistent, though outdated users may lag and the consumer may not have
    // read everything.
    void expect_consistent_after_crash() {
        store_checker_options o;
        o.expect_all_fresh = false;
        // Only tests that read events over the socket have a consumer's view to check.
        o.consumer = consumer.steps().empty() ? nullptr : &consumer;
        o.consumer_drained = false;
        const auto problems = check_store_file(dir / "devlistd.db", hs, o);
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }

    // After a clean run that converged and a consumer that read everything.
    void expect_store_matches_homeserver() {
        store_checker_options o;
        o.consumer = consumer.steps().empty() ? nullptr : &consumer;
        const auto problems = check_store_file(dir / "devlistd.db", hs, o);
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }

    storage::store open_store() {
        auto s = storage::store::open(dir / "devlistd.db");
        EXPECT_TRUE(s) << s.error().message();
        return std::move(*s);
    }

    // ---- a local consumer over the socket (curl --unix-socket) ----

    struct http_answer {
        bool answered = false;  // curl got a whole HTTP answer
        unsigned status = 0;
        json::value json;
    };

    http_answer curl(const std::string& method, const std::string& target,
                     const std::string& body = {}) {
        process_options o;
        o.executable = CURL_PATH;
        o.arguments = {"-sS", "--unix-socket", socket.string(), "-X", method,
                       "-w",  "\n%{http_code}"};
        if (!body.empty()) {
            o.arguments.insert(o.arguments.end(),
                               {"-H", "Content-Type: application/json", "--data-binary", body});
        }
        o.arguments.push_back("http://devlistd" + target);
        daemon_process p(std::move(o));
        auto exit = p.wait_exit(clock::now() + patience);
        EXPECT_TRUE(exit) << "curl did not end";
        http_answer a;
        const std::string out = p.output();
        if (!exit || !exit->exited_with(0)) return a;  // e.g. the daemon died mid-request
        const auto nl = out.rfind('\n');
        if (nl == std::string::npos) return a;
        a.answered = true;
        a.status = static_cast<unsigned>(std::atoi(out.c_str() + nl + 1));
        if (auto v = json::parse(out.substr(0, nl))) a.json = std::move(*v);
        return a;
    }

    // One read of the default consumer's events (after its acknowledged cursor), recorded.
    std::vector<storage::outbox_event> read_events() {
        auto a = curl("GET", "/v1/events?consumer=default&limit=200");
        EXPECT_TRUE(a.answered && a.status == 200) << "reading events failed";
        std::vector<storage::outbox_event> events;
        const json::value* list = a.json.is_object() ? a.json.find("events") : nullptr;
        if (!list || !list->is_array()) return events;
        for (const auto& e : list->as_array()) {
            events.push_back({.cursor = e.find("cursor")->as_integer(),
                              .at = e.find("at")->as_integer(),
                              .type = e.find("type")->as_string(),
                              .payload_json = json::to_canonical(*e.find("data"))});
        }
        consumer.on_read(events);
        return events;
    }

    // Acknowledges up to `cursor`; records it when devlistd confirmed it.
    bool acknowledge(std::int64_t cursor) {
        auto a =
            curl("POST", "/v1/events/ack",
                 json::to_canonical(json::object{{"consumer", "default"}, {"cursor", cursor}}));
        if (!a.answered || a.status != 200) return false;
        consumer.on_acknowledged(cursor);
        return true;
    }

    // Reads and acknowledges until nothing is left.
    void consume_all() {
        for (;;) {
            auto events = read_events();
            if (events.empty()) return;
            ASSERT_TRUE(acknowledge(events.back().cursor));
        }
    }

    std::int64_t stored_acknowledgement() {
        auto s = open_store();
        auto all = s.outbox().consumers();
        EXPECT_TRUE(all);
        for (const auto& c : all ? *all : std::vector<storage::outbox_consumer>{}) {
            if (c.name == "default") return c.acknowledged;
        }
        return -1;
    }

    // Waits until the homeserver saw `n` requests to `path` from `from_index` on that it left
    // unanswered (status 0: dropped, lost or hung).
    bool wait_for_unanswered(std::string_view path, std::size_t n, std::size_t from_index) {
        for (std::size_t seen = 0; seen < n; ++seen) {
            auto r = hs.wait_for_request(
                [path](const request_record& q) { return q.path == path && q.status == 0; },
                clock::now() + patience, from_index);
            if (!r) return false;
            // Past this one: find its index again (the log only grows).
            const auto all = hs.requests();
            for (std::size_t i = from_index; i < all.size(); ++i) {
                if (all[i].path == path && all[i].status == 0) {
                    from_index = i + 1;
                    break;
                }
            }
        }
        return true;
    }
};

// During an event acknowledgement, inside its transaction: the acknowledgement is lost whole,
// and the consumer is handed the same events again — never fewer.
TEST_F(crash_points_test, killed_inside_an_event_acknowledgement) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    const auto target = hs.stream_position();
    auto& d = start_devlistd("outbox.ack.before_commit");
    ASSERT_NO_FATAL_FAILURE(wait_until_converged(d, target));
    const auto first = read_events();
    ASSERT_FALSE(first.empty());
    EXPECT_FALSE(acknowledge(first.back().cursor)) << "devlistd answered the acknowledgement";
    ASSERT_NO_FATAL_FAILURE(expect_killed(d, "outbox.ack.before_commit"));
    EXPECT_EQ(stored_acknowledgement(), 0);
    expect_consistent_after_crash();

    hs.add_device(alice, "ALICE3");
    const auto later = hs.stream_position();
    auto& again = start_devlistd();
    ASSERT_NO_FATAL_FAILURE(wait_until_converged(again, later));
    const auto replayed = read_events();
    ASSERT_FALSE(replayed.empty());
    EXPECT_EQ(replayed.front().cursor, first.front().cursor) << "unacknowledged events were lost";
    ASSERT_TRUE(acknowledge(replayed.back().cursor));
    ASSERT_NO_FATAL_FAILURE(consume_all());
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(again));
    expect_store_matches_homeserver();
}

// Just after the acknowledgement committed, before the consumer heard so: the consumer is not
// handed those events again.
TEST_F(crash_points_test, killed_after_an_event_acknowledgement_committed) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    const auto target = hs.stream_position();
    auto& d = start_devlistd("outbox.ack.after_commit");
    ASSERT_NO_FATAL_FAILURE(wait_until_converged(d, target));
    const auto first = read_events();
    ASSERT_FALSE(first.empty());
    EXPECT_FALSE(acknowledge(first.back().cursor)) << "devlistd answered the acknowledgement";
    ASSERT_NO_FATAL_FAILURE(expect_killed(d, "outbox.ack.after_commit"));
    EXPECT_EQ(stored_acknowledgement(), first.back().cursor);
    expect_consistent_after_crash();

    hs.add_device(bob, "BOB2");
    const auto later = hs.stream_position();
    auto& again = start_devlistd();
    ASSERT_NO_FATAL_FAILURE(wait_until_converged(again, later));
    const auto next = read_events();
    ASSERT_FALSE(next.empty());  // BOB2's announcement at least
    EXPECT_GT(next.front().cursor, first.back().cursor) << "acknowledged events came again";
    ASSERT_TRUE(acknowledge(next.back().cursor));
    ASSERT_NO_FATAL_FAILURE(consume_all());
    ASSERT_NO_FATAL_FAILURE(stop_devlistd(again));
    expect_store_matches_homeserver();
}

// During a one-time key upload: the server took the first attempt (its answer was lost), and
// holds the retry when devlistd dies. After the restart the same IDs and bytes go up again and
// are accepted as what the server already has.
TEST_F(crash_points_test, killed_while_the_homeserver_holds_a_one_time_key_upload) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop({"published 50 one-time keys"}));
    const auto target = hs.stream_position();
    auto& d = start_devlistd();
    ASSERT_NO_FATAL_FAILURE(wait_until_converged(d, target));
    hs.inject(fault{keys_upload, fault_action::lose_answer{}, "POST", 1});
    hs.inject(fault{keys_upload, fault_action::hang{}, "POST", 1});
    const auto from = hs.request_count();
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, bot_device));
    ASSERT_TRUE(wait_for_unanswered(keys_upload, 2, from))
        << "devlistd did not upload new keys twice";
    EXPECT_EQ(hs.pending_faults(), 0u);
    auto e = d.kill();
    ASSERT_TRUE(e.killed_by(SIGKILL)) << e;
    // devlistd may have seen the claims in one sync or in several, so the lost upload carried
    // between 1 and 20 keys: they are on the server, and still pending here.
    std::int64_t pending = 0;
    {
        auto s = open_store();
        pending = *s.one_time_keys().count(storage::key_state::pending);
    }
    EXPECT_GE(pending, 1);
    EXPECT_LE(pending, 20);
    EXPECT_EQ(hs.one_time_key_count(bot, bot_device), 30u + static_cast<std::size_t>(pending));
    expect_consistent_after_crash();

    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop({"; the server has 50"}));
    EXPECT_EQ(hs.one_time_key_count(bot, bot_device), 50u);
    expect_store_matches_homeserver();
}

// During the cross-signing upload: the server asked for UIA and holds the authenticated upload.
TEST_F(crash_points_test, killed_while_the_homeserver_holds_the_cross_signing_upload) {
    testing::server_behaviour b;
    b.uia_for_first_cross_signing_upload = true;
    hs.set_behaviour(b);
    extra_settings = "cross_signing = \"bootstrap\"\n";
    // The first attempt gets its 401 with the UIA session; the second, with auth, hangs.
    hs.inject(fault{device_signing, fault_action::delay{0ms}, "POST", 1});
    hs.inject(fault{device_signing, fault_action::hang{}, "POST", 1});
    const auto from = hs.request_count();
    auto& d = start_devlistd();
    ASSERT_TRUE(wait_for_unanswered(device_signing, 1, from))
        << "devlistd never sent the authenticated cross-signing upload";
    const auto requests = hs.requests();
    std::size_t attempts = 0;
    for (const auto& r : requests) {
        if (r.path == device_signing) ++attempts;
    }
    EXPECT_EQ(attempts, 2u);
    auto e = d.kill();
    ASSERT_TRUE(e.killed_by(SIGKILL)) << e;
    EXPECT_FALSE(hs.cross_signing_key(bot, testing::cross_signing_key_kind::master));
    std::string master;
    {
        auto s = open_store();
        auto own = s.own_cross_signing().load();
        ASSERT_TRUE(own);
        ASSERT_EQ(own->size(), 3u);
        EXPECT_EQ((*own)[0].state, storage::upload_state::pending);
        master = (*own)[0].public_key;
    }
    expect_consistent_after_crash();

    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop(
        {"uploaded the cross-signing keys", "signed device BOTDEVICE with the self-signing key"}));
    auto on_server = hs.cross_signing_key(bot, testing::cross_signing_key_kind::master);
    ASSERT_TRUE(on_server);
    EXPECT_TRUE(on_server->find("keys")->find("ed25519:" + master)) << "other keys went up";
    expect_store_matches_homeserver();
}

// Between committing a rotated fallback key and uploading it: the used key's private part stays
// (a peer may hold a session from it) and the committed successor is the one published.
TEST_F(crash_points_test, killed_between_committing_and_uploading_a_rotated_fallback_key) {
    ASSERT_NO_FATAL_FAILURE(
        run_until_converged_and_stop({"published 50 one-time keys", "published fallback key"}));
    // Every one-time key and then the fallback key handed out while devlistd is down.
    for (int i = 0; i < 51; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, bot_device));
    ASSERT_TRUE(hs.unused_fallback_key_types(bot, bot_device).empty());
    auto& d = start_devlistd("keys.fallback.after_persist");
    ASSERT_NO_FATAL_FAILURE(expect_killed(d, "keys.fallback.after_persist"));
    std::string successor;
    {
        auto s = open_store();
        auto current = s.fallback_keys().current();
        ASSERT_TRUE(current && *current);
        EXPECT_EQ((*current)->state, storage::key_state::pending);
        successor = (*current)->public_key;
        auto previous = s.fallback_keys().previous();
        ASSERT_TRUE(previous);
        ASSERT_EQ(previous->size(), 1u);
        EXPECT_TRUE((*previous)[0].used_at);
    }
    expect_consistent_after_crash();

    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop({"published fallback key"}));
    const auto history = hs.keys_published_by(bot, bot_device);
    ASSERT_EQ(history.current_fallback_keys.size(), 1u);
    EXPECT_EQ(history.current_fallback_keys[0].key.find("key")->as_string(), successor);
    EXPECT_EQ(history.fallback_keys.size(), 2u);
    expect_store_matches_homeserver();
}

// Between a catch-up's initial sync and its /keys/changes: the server rejected the stored token
// and devlistd dies while asking what changed between the two tokens. The initial batch is
// committed only with the catch-up's marks, so the old token is still stored, the server
// rejects it again after the restart, and the user who changed in between is queried.
TEST_F(crash_points_test, killed_between_a_catch_up_sync_and_its_keys_changes) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    hs.add_device(alice, "ALICE3");  // while devlistd is down: only /keys/changes can tell
    hs.inject(fault{"/_matrix/client/v3/sync", fault_action::reject_sync_token{}, "GET", 1});
    hs.inject(fault{"/_matrix/client/v3/keys/changes", fault_action::hang{}, "GET", 1});
    const auto from = hs.request_count();
    auto& d = start_devlistd();
    ASSERT_TRUE(wait_for_unanswered("/_matrix/client/v3/keys/changes", 1, from))
        << "devlistd never asked /keys/changes";
    auto e = d.kill();
    ASSERT_TRUE(e.killed_by(SIGKILL)) << e;
    expect_consistent_after_crash();

    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

}  // namespace
}  // namespace devlist::test
