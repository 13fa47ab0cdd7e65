// Issue 3, end to end: the real devlistd process, killed with SIGKILL mid-run and restarted,
// loses no change.
//
// Each test runs devlistd until it has converged and stops it (SIGTERM), so that the store holds
// a known, fresh state; makes a change; has devlistd die while it handles exactly that change —
// at a failpoint selected with DEVLIST_FAILPOINT (include/devlist/failpoint.hpp), or killed by
// the test while the homeserver holds a request; checks what the store holds at the moment of
// the crash; makes more changes; starts devlistd cleanly, lets it converge, stops it, and
// compares the store with the homeserver.
//
// Changes are mostly made while devlistd is down: the first /sync after a start then returns
// all of them in one batch, so the hit of a failpoint that handles them is a known event, not a
// race with long-poll timeouts. Nothing waits by sleeping: the homeserver reports requests as
// they happen, and devlistd's log (read through a pipe) reports what it committed.
#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/json_value.hpp"
#include "storage/store.hpp"
#include "tests/e2e/daemon_log.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/client_api.hpp"
#include "tests/homeserver/test_homeserver.hpp"
#include "tests/support/store_checker.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using testing::request_record;
namespace fault_action = testing::fault_action;

constexpr const char* bot = "@bot:localhost";
constexpr const char* bot_device = "BOTDEVICE";
constexpr const char* alice = "@alice:localhost";
constexpr const char* bob = "@bob:localhost";
constexpr const char* carol = "@carol:localhost";
// Every wait is bounded by this; a healthy run needs a small fraction of it.
constexpr auto patience = 10s;

using id_set = std::set<std::string>;

// ---- reading what the homeserver answered ----

std::optional<json::value> parse_body(const std::string& body) {
    auto v = json::parse(body);
    if (!v) return std::nullopt;
    return std::move(*v);
}

// The keys of an object member of `v` (e.g. the users of device_keys), or of an array of strings.
id_set names_in(const json::value* v) {
    id_set names;
    if (v == nullptr) return names;
    if (v->is_object()) {
        for (const auto& [key, value] : v->as_object())
            names.insert(key);
    } else if (v->is_array()) {
        for (const auto& item : v->as_array()) {
            if (item.is_string()) names.insert(item.as_string());
        }
    }
    return names;
}

// Users a /sync response names in device_lists.changed.
id_set changed_in(const request_record& sync) {
    auto body = parse_body(sync.response_body);
    const json::value* lists = body ? body->find("device_lists") : nullptr;
    return names_in(lists ? lists->find("changed") : nullptr);
}

std::optional<std::string> next_batch_of(const request_record& sync) {
    auto body = parse_body(sync.response_body);
    const json::value* token = body ? body->find("next_batch") : nullptr;
    if (!token || !token->is_string()) return std::nullopt;
    return token->as_string();
}

// Users a /keys/query request asked for.
id_set queried_users(const request_record& query) {
    auto body = parse_body(query.request_body);
    return names_in(body ? body->find("device_keys") : nullptr);
}

// Devices of `user` a /keys/query answer carried.
id_set answered_devices(const request_record& query, const std::string& user) {
    auto body = parse_body(query.response_body);
    const json::value* keys = body ? body->find("device_keys") : nullptr;
    return names_in(keys ? keys->find(user) : nullptr);
}

bool is_endpoint(const request_record& r, std::string_view endpoint) {
    return r.path.ends_with(endpoint);
}

// ---- the store ----

struct store_snapshot {
    storage::sync_state sync;
    std::map<std::string, storage::tracked_user> tracked;
    // Live (not deleted) devices, by user and device ID, of every user the test knows.
    std::map<std::string, std::map<std::string, storage::device_record>> devices;
    std::vector<storage::outbox_event> outbox;

    bool fresh(const std::string& user) const {
        auto t = tracked.find(user);
        return t != tracked.end() && !t->second.outdated;
    }
    bool outdated(const std::string& user) const {
        auto t = tracked.find(user);
        return t != tracked.end() && t->second.outdated;
    }
    std::int64_t generation(const std::string& user) const {
        auto t = tracked.find(user);
        return t == tracked.end() ? -1 : t->second.generation;
    }
    id_set device_ids(const std::string& user) const {
        id_set ids;
        if (auto d = devices.find(user); d != devices.end()) {
            for (const auto& [id, record] : d->second)
                ids.insert(id);
        }
        return ids;
    }
    // How many outbox events of `type` name this device.
    int device_events(std::string_view type, const std::string& user,
                      const std::string& device) const {
        int n = 0;
        for (const auto& e : outbox) {
            if (e.type != type) continue;
            auto payload = parse_body(e.payload_json);
            const json::value* u = payload ? payload->find("user_id") : nullptr;
            const json::value* d = payload ? payload->find("device_id") : nullptr;
            if (u && d && *u == json::value(user) && *d == json::value(device)) ++n;
        }
        return n;
    }
};

class crash_restart_test : public ::testing::Test {
  protected:
    testing::test_homeserver hs;
    temp_dir dir{"devlist-crash"};
    std::filesystem::path config;
    std::string room;  // the encrypted room the bot shares with alice and bob
    std::vector<std::unique_ptr<daemon_process>> runs;
    // When each run started. Requests are told apart by the time they were received: the
    // homeserver still answers (and records) a long-poll of a run that is gone.
    std::vector<clock::time_point> run_started;

    // The homeserver's truth as the test scripted it.
    std::map<std::string, id_set> expected_devices;  // each user's devices (all have keys)
    std::map<std::string, id_set> removed_devices;   // devices removed after devlistd saw them
    id_set sharing;                                  // who shares an encrypted room with the bot
    id_set left_users;                               // who stopped sharing one

    void SetUp() override {
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, "bot-password");
        dir.write_file("password", "bot-password\n");
        // The socket lives in the test's folder: parallel tests, or a devlistd installed on the
        // machine, must not meet at the default path.
        const std::string settings =
            "homeserver = \"" + hs.base_url() + "\"\n" + R"(user_id = "@bot:localhost"
device_id = "BOTDEVICE"
password_file = "password"
database = "devlistd.db"
socket = "devlistd.sock"
sync_timeout_ms = 2000
log_level = "info"
)";
        config = dir.write_file("devlistd.toml", settings);
        for (const char* u : {alice, bob, carol})
            hs.add_user(u, "pw");
        add_device(alice, "ALICE1");
        add_device(alice, "ALICE2");
        add_device(bob, "BOB1");
        add_device(carol, "CAROL1");
        room = hs.create_room(alice, true);
        hs.join(room, bob);
        hs.join(room, bot);
        // Carol shares only an unencrypted room: never tracked.
        hs.join(hs.create_room(carol, false), bot);
        sharing = {bot, alice, bob};
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                std::cerr << "---- devlistd run " << i + 1 << " (pid " << runs[i]->pid()
                          << ") ----\n"
                          << runs[i]->output();
            }
            dir.keep();
            std::cerr << "---- configuration, database and logs kept in " << dir.path().string()
                      << "\n";
        }
        runs.clear();  // kills whatever still runs, before its folder and homeserver go
        hs.stop();
    }

    // ---- scripting the homeserver, keeping the truth ----

    void add_device(const std::string& user, const std::string& device) {
        hs.add_device(user, device);
        expected_devices[user].insert(device);
    }
    void remove_device(const std::string& user, const std::string& device) {
        hs.remove_device(user, device);
        expected_devices[user].erase(device);
        removed_devices[user].insert(device);
    }
    void leave(const std::string& user) {
        hs.leave(room, user);
        sharing.erase(user);
        left_users.insert(user);
    }

    // ---- running devlistd ----

    daemon_process& start_devlistd(std::optional<std::string> failpoint = std::nullopt) {
        process_options o = devlistd_options(
            DEVLISTD_PATH, config.string(),
            dir / ("devlistd-" + std::to_string(runs.size() + 1) + ".log"), std::move(failpoint));
        run_started.push_back(clock::now());
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        return *runs.back();
    }

    // Waits until devlistd holds every change up to stream position `target` (see
    // has_converged).
    void wait_until_converged(const daemon_process& d, testing::stream_position target) {
        ASSERT_TRUE(
            d.wait_for_output([target](std::string_view log) { return has_converged(log, target); },
                              clock::now() + patience))
            << "devlistd did not apply stream position " << target
            << " and query every outdated user";
    }

    void stop_devlistd(daemon_process& d) {
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not stop on SIGTERM";
        EXPECT_TRUE(e->exited_with(0)) << *e;
    }

    // Every change scripted so far is in the store afterwards.
    void run_until_converged_and_stop() {
        // Read before the start: what devlistd changes itself (its key uploads) moves the
        // position too, and need not be waited for.
        const auto target = hs.stream_position();
        auto& d = start_devlistd();
        ASSERT_NO_FATAL_FAILURE(wait_until_converged(d, target));
        ASSERT_NO_FATAL_FAILURE(stop_devlistd(d));
    }

    // Runs devlistd with failpoint `point` selected at its `hit`th hit and waits until the
    // failpoint killed it.
    void run_until_killed_at(const std::string& point, int hit = 1) {
        auto& d = start_devlistd(point + ":" + std::to_string(hit));
        auto e = d.wait_exit(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not reach failpoint " << point << " " << hit << " times";
        ASSERT_TRUE(e->killed_by(SIGKILL)) << *e;
        EXPECT_NE(d.output().find("devlist: failpoint " + point + " reached"), std::string::npos);
        // What the crash left is consistent already: outdated users may lag, nothing else.
        store_checker_options o;
        o.expect_all_fresh = false;
        const auto problems = check_store_file(dir / "devlistd.db", hs, o);
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }

    // sync.apply.before_commit lies in the store, where devlistd's own batches reach it too: at
    // every start it commits the own user's tracking row before its first /sync. This kills
    // devlistd at successive hits — each an earlier crash, followed by a restart — until a run
    // that died after a /sync was answered.
    void run_until_killed_in_first_sync_batch() {
        constexpr int most_own_batches = 4;
        for (int hit = 1; hit <= most_own_batches + 1; ++hit) {
            ASSERT_NO_FATAL_FAILURE(run_until_killed_at("sync.apply.before_commit", hit));
            if (!requests_to("/sync", run_started.back()).empty()) return;
        }
        FAIL() << "devlistd committed more than " << most_own_batches
               << " batches of its own before handling a /sync response";
    }

    // Requests to an endpoint (a path suffix such as "/sync") received from `since` on.
    std::vector<request_record> requests_to(std::string_view endpoint, clock::time_point since,
                                            bool answered_only = true) const {
        std::vector<request_record> out;
        for (auto& r : hs.requests()) {
            if (r.received >= since && is_endpoint(r, endpoint) &&
                (!answered_only || r.status == 200)) {
                out.push_back(std::move(r));
            }
        }
        return out;
    }

    // /keys/query requests that asked for `user`, received from `since` on.
    std::vector<request_record> queries_of(const std::string& user, clock::time_point since,
                                           bool answered_only = true) const {
        std::vector<request_record> out;
        for (auto& q : requests_to("/keys/query", since, answered_only)) {
            if (queried_users(q).contains(user)) out.push_back(std::move(q));
        }
        return out;
    }

    // The store as devlistd left it; only while no devlistd runs (the store is locked).
    void read_store(store_snapshot& out) {
        auto s = storage::store::open(dir / "devlistd.db");
        ASSERT_TRUE(s) << s.error().message();
        auto state = s->sync().load_sync_state();
        ASSERT_TRUE(state) << state.error().message();
        out.sync = *state;
        auto users = s->tracking().load_tracked_users();
        ASSERT_TRUE(users) << users.error().message();
        for (auto& u : *users)
            out.tracked.emplace(u.user_id, std::move(u));
        for (const char* user : {bot, alice, bob, carol}) {
            auto devices = s->devices().devices_of(user);
            ASSERT_TRUE(devices) << devices.error().message();
            for (auto& d : *devices)
                out.devices[user].emplace(d.device_id, std::move(d));
        }
        // No consumer acknowledges in these tests, so nothing was pruned.
        auto events = s->outbox().read_after(0, 100000);
        ASSERT_TRUE(events) << events.error().message();
        out.outbox = std::move(*events);
    }

    // The store after a clean stop equals the homeserver: the tracked set, and for every
    // tracked user the live devices and their keys as /keys/query serves them; nobody is left
    // outdated; each device was announced to local consumers exactly once.
    void expect_store_matches_homeserver() {
        store_snapshot s;
        ASSERT_NO_FATAL_FAILURE(read_store(s));
        id_set tracked;
        for (const auto& [user, record] : s.tracked)
            tracked.insert(user);
        EXPECT_EQ(tracked, sharing);
        for (const auto& user : sharing) {
            EXPECT_TRUE(s.fresh(user)) << user << " is not fresh";
            auto stored = s.devices[user];
            if (user == bot) {
                // The own device is in the store only if devlistd had uploaded its keys before
                // it queried its own user (the homeserver announces a user's own device to
                // that user's other devices only); if it is, its keys must be the served ones.
                if (auto own = stored.find(bot_device); own != stored.end()) {
                    auto served = hs.served_device_keys(bot, bot_device);
                    ASSERT_TRUE(served);
                    EXPECT_EQ(own->second.ed25519,
                              (*served)["keys"]["ed25519:" + std::string(bot_device)].as_string());
                    stored.erase(own);
                }
            }
            id_set stored_ids;
            for (const auto& [id, record] : stored)
                stored_ids.insert(id);
            EXPECT_EQ(stored_ids, expected_devices[user]) << "devices of " << user;
            for (const auto& [id, record] : stored) {
                auto served = hs.served_device_keys(user, id);
                ASSERT_TRUE(served) << user << " " << id;
                EXPECT_EQ(record.ed25519, (*served)["keys"]["ed25519:" + id].as_string())
                    << user << " " << id;
                EXPECT_EQ(record.curve25519, (*served)["keys"]["curve25519:" + id].as_string())
                    << user << " " << id;
            }
            for (const auto& id : expected_devices[user]) {
                EXPECT_EQ(s.device_events(storage::outbox_type::device_added, user, id), 1)
                    << user << " " << id;
            }
            for (const auto& id : removed_devices[user]) {
                EXPECT_EQ(s.device_events(storage::outbox_type::device_added, user, id), 1)
                    << user << " " << id;
                EXPECT_EQ(s.device_events(storage::outbox_type::device_removed, user, id), 1)
                    << user << " " << id;
            }
        }
        for (const auto& user : left_users) {
            EXPECT_TRUE(s.device_ids(user).empty()) << user << " left but kept devices";
        }
        EXPECT_TRUE(s.device_ids(carol).empty());
        // And everything the store checker (tests/support) knows to ask.
        const auto problems = check_store_file(dir / "devlistd.db", hs);
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }
};

TEST_F(crash_restart_test, a_sync_batch_killed_before_commit_is_replayed) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    store_snapshot before;
    ASSERT_NO_FATAL_FAILURE(read_store(before));
    ASSERT_TRUE(before.fresh(alice));
    ASSERT_EQ(before.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));

    add_device(alice, "ALICE3");
    ASSERT_NO_FATAL_FAILURE(run_until_killed_in_first_sync_batch());
    // It died on the batch that carried the change: the one /sync answered in that run.
    auto syncs = requests_to("/sync", run_started.back());
    ASSERT_EQ(syncs.size(), 1u);
    EXPECT_TRUE(changed_in(syncs[0]).contains(alice));
    EXPECT_EQ(runs.back()->output().find("info: sync s"), std::string::npos);
    // Nothing of that batch is in the store, not even its token: the server sends it again.
    store_snapshot crashed;
    ASSERT_NO_FATAL_FAILURE(read_store(crashed));
    EXPECT_EQ(crashed.sync.next_batch, before.sync.next_batch);
    EXPECT_TRUE(crashed.fresh(alice));
    EXPECT_EQ(crashed.generation(alice), before.generation(alice));
    EXPECT_EQ(crashed.device_ids(alice), before.device_ids(alice));

    add_device(bob, "BOB2");
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

TEST_F(crash_restart_test, a_user_marked_outdated_by_a_batch_killed_after_commit_is_queried) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    store_snapshot before;
    ASSERT_NO_FATAL_FAILURE(read_store(before));
    ASSERT_TRUE(before.fresh(alice));

    add_device(alice, "ALICE3");
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("sync.apply.after_commit"));
    auto syncs = requests_to("/sync", run_started.back());
    ASSERT_EQ(syncs.size(), 1u);
    EXPECT_TRUE(changed_in(syncs[0]).contains(alice));
    // It died before the query workers were woken: no /keys/query in that run, so only the
    // outdated flag committed with the batch can bring alice's new device.
    EXPECT_TRUE(queries_of(alice, run_started.back(), false).empty());
    store_snapshot crashed;
    ASSERT_NO_FATAL_FAILURE(read_store(crashed));
    EXPECT_EQ(crashed.sync.next_batch, next_batch_of(syncs[0]));
    EXPECT_TRUE(crashed.outdated(alice));
    EXPECT_GT(crashed.generation(alice), before.generation(alice));
    EXPECT_EQ(crashed.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));

    // More changes, none of them alice's: nothing else marks her outdated again.
    leave(bob);
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    EXPECT_FALSE(queries_of(alice, run_started.back()).empty());
    expect_store_matches_homeserver();
}

TEST_F(crash_restart_test, a_query_answer_received_but_not_stored_is_asked_again) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    store_snapshot before;
    ASSERT_NO_FATAL_FAILURE(read_store(before));
    ASSERT_TRUE(before.fresh(alice));

    add_device(alice, "ALICE3");
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("query.answer.received"));
    // The answer that died with the process carried the new device.
    auto queries = queries_of(alice, run_started.back());
    ASSERT_EQ(queries.size(), 1u);
    EXPECT_TRUE(answered_devices(queries[0], alice).contains("ALICE3"));
    store_snapshot crashed;
    ASSERT_NO_FATAL_FAILURE(read_store(crashed));
    EXPECT_NE(crashed.sync.next_batch, before.sync.next_batch);  // the batch was committed
    EXPECT_TRUE(crashed.outdated(alice));
    EXPECT_EQ(crashed.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));

    remove_device(bob, "BOB1");
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

TEST_F(crash_restart_test, a_query_answer_killed_before_commit_is_rolled_back_and_asked_again) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    store_snapshot before;
    ASSERT_NO_FATAL_FAILURE(read_store(before));
    ASSERT_TRUE(before.fresh(alice));

    add_device(alice, "ALICE3");
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("query.apply.before_commit"));
    auto queries = queries_of(alice, run_started.back());
    ASSERT_EQ(queries.size(), 1u);
    EXPECT_TRUE(answered_devices(queries[0], alice).contains("ALICE3"));
    // The transaction had written the device, its outbox event and the cleared flag; none of
    // it survived.
    store_snapshot crashed;
    ASSERT_NO_FATAL_FAILURE(read_store(crashed));
    EXPECT_TRUE(crashed.outdated(alice));
    EXPECT_EQ(crashed.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));
    EXPECT_EQ(crashed.device_events(storage::outbox_type::device_added, alice, "ALICE3"), 0);

    add_device(bob, "BOB2");
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

TEST_F(crash_restart_test, a_kill_while_a_query_hangs_loses_nothing) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());

    auto& d = start_devlistd();
    // Once devlistd says it is tracking, its start-up (which reads the own device's keys with a
    // /keys/query) is over, and nobody is outdated: the next /keys/query is the one that the
    // change below causes, and it hangs. The change is made while devlistd long-polls.
    ASSERT_TRUE(d.wait_for_output("tracking device lists for", clock::now() + patience));
    hs.inject(testing::fault{"/_matrix/client/v3/keys/query", fault_action::hang{}, "POST", 1});
    const auto since = run_started.back();
    add_device(alice, "ALICE3");
    // A hanging request is recorded (status 0) when the server decides not to answer it.
    auto hung = hs.wait_for_request(
        [since](const request_record& r) {
            return r.received >= since && is_endpoint(r, "/keys/query") && r.status == 0 &&
                   queried_users(r).contains(alice);
        },
        clock::now() + patience);
    ASSERT_TRUE(hung) << "devlistd never asked for alice's keys";
    auto e = d.kill();
    EXPECT_TRUE(e.killed_by(SIGKILL)) << e;
    store_snapshot crashed;
    ASSERT_NO_FATAL_FAILURE(read_store(crashed));
    EXPECT_TRUE(crashed.outdated(alice));
    EXPECT_EQ(crashed.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));

    hs.clear_faults();
    add_device(bob, "BOB2");
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

TEST_F(crash_restart_test, two_crashes_in_a_row_at_different_points_lose_nothing) {
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    store_snapshot before;
    ASSERT_NO_FATAL_FAILURE(read_store(before));

    add_device(alice, "ALICE3");
    ASSERT_NO_FATAL_FAILURE(run_until_killed_in_first_sync_batch());
    auto syncs = requests_to("/sync", run_started.back());
    ASSERT_EQ(syncs.size(), 1u);
    EXPECT_TRUE(changed_in(syncs[0]).contains(alice));
    store_snapshot first;
    ASSERT_NO_FATAL_FAILURE(read_store(first));
    EXPECT_EQ(first.sync.next_batch, before.sync.next_batch);

    // Replayed with bob's leave on top; this time the batch commits and the query dies.
    leave(bob);
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("query.apply.before_commit"));
    store_snapshot second;
    ASSERT_NO_FATAL_FAILURE(read_store(second));
    EXPECT_NE(second.sync.next_batch, before.sync.next_batch);
    EXPECT_FALSE(second.tracked.contains(bob));
    EXPECT_TRUE(second.outdated(alice));
    EXPECT_EQ(second.device_ids(alice), (id_set{"ALICE1", "ALICE2"}));

    remove_device(alice, "ALICE1");
    ASSERT_NO_FATAL_FAILURE(run_until_converged_and_stop());
    expect_store_matches_homeserver();
}

}  // namespace
}  // namespace devlist::test
