// Issue 4, end to end: the real devlistd killed with SIGKILL while it maintains its own keys —
// between committing keys and uploading them, and between an upload and recording it — then
// restarted. Afterwards no published key lacks its private part, no key ID was used for two
// keys, and nothing was uploaded twice in a way the server refused. Also the sealing key file:
// created at the first start, and a missing or wrong one refused with a clear message.
//
// Points are failpoints (include/devlist/failpoint.hpp) selected with DEVLIST_FAILPOINT; the
// test waits on devlistd's log and the homeserver's request log, never by sleeping.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/json_value.hpp"
#include "storage/store.hpp"
#include "tests/e2e/daemon_process.hpp"
#include "tests/e2e/temp_dir.hpp"
#include "tests/homeserver/test_homeserver.hpp"
#include "tests/support/store_checker.hpp"

namespace devlist::test {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr const char* bot = "@bot:localhost";
constexpr const char* device = "BOTDEVICE";
constexpr auto patience = 10s;
constexpr std::string_view keys_upload = "/_matrix/client/v3/keys/upload";
constexpr std::string_view device_signing = "/_matrix/client/v3/keys/device_signing/upload";

class key_crash_test : public ::testing::Test {
  protected:
    testing::test_homeserver hs;
    temp_dir dir{"devlist-key-crash"};
    std::vector<std::unique_ptr<daemon_process>> runs;

    void SetUp() override {
        testing::server_behaviour b;
        b.uia_for_first_cross_signing_upload = true;
        hs.set_behaviour(b);
        ASSERT_TRUE(hs.start());
        hs.add_user(bot, "bot-password");
        dir.write_file("password", "bot-password\n");
        write_config("");
    }

    void TearDown() override {
        if (HasFailure()) {
            for (std::size_t i = 0; i < runs.size(); ++i) {
                std::cerr << "---- devlistd run " << i + 1 << " ----\n" << runs[i]->output();
            }
            dir.keep();
            std::cerr << "---- kept in " << dir.path().string() << "\n";
        }
        runs.clear();
        hs.stop();
    }

    void write_config(const std::string& extra) {
        dir.write_file("devlistd.toml", "homeserver = \"" + hs.base_url() + "\"\n" +
                                            "user_id = \"@bot:localhost\"\n"
                                            "device_id = \"BOTDEVICE\"\n"
                                            "password_file = \"password\"\n"
                                            "database = \"devlistd.db\"\n"
                                            "socket = \"devlistd.sock\"\n"
                                            "sync_timeout_ms = 2000\n" +
                                            extra);
    }

    daemon_process& start(std::optional<std::string> failpoint = std::nullopt) {
        process_options o = devlistd_options(
            DEVLISTD_PATH, (dir / "devlistd.toml").string(),
            dir / ("devlistd-" + std::to_string(runs.size() + 1) + ".log"), std::move(failpoint));
        runs.push_back(std::make_unique<daemon_process>(std::move(o)));
        return *runs.back();
    }

    void run_until_killed_at(const std::string& point) {
        auto& d = start(point);
        auto e = d.wait_exit(clock::now() + patience);
        ASSERT_TRUE(e) << "devlistd did not reach failpoint " << point;
        ASSERT_TRUE(e->killed_by(SIGKILL)) << *e;
        ASSERT_NE(d.output().find("devlist: failpoint " + point + " reached"), std::string::npos);
        expect_checker_passes();
    }

    // The store checker (tests/support) on the store at rest; the own user may still be
    // outdated (these runs wait for key maintenance only).
    void expect_checker_passes() {
        store_checker_options o;
        o.expect_all_fresh = false;
        const auto problems = check_store_file(dir / "devlistd.db", hs, o);
        EXPECT_TRUE(problems.empty()) << describe(problems);
    }

    // Starts devlistd cleanly, waits for every needle in its log, and stops it.
    void run_until_logged(const std::vector<std::string>& needles) {
        auto& d = start();
        for (const auto& n : needles)
            ASSERT_TRUE(d.wait_for_output(n, clock::now() + patience)) << "never logged: " << n;
        auto e = d.terminate(clock::now() + patience);
        ASSERT_TRUE(e);
        EXPECT_TRUE(e->exited_with(0)) << *e;
        expect_checker_passes();
    }

    storage::store open_store() {
        auto s = storage::store::open(dir / "devlistd.db");
        EXPECT_TRUE(s) << s.error().message();
        return std::move(*s);
    }

    std::vector<testing::request_record> requests_to(std::string_view path) const {
        std::vector<testing::request_record> out;
        for (auto& r : hs.requests()) {
            if (r.path == path) out.push_back(std::move(r));
        }
        return out;
    }

    // Every key the server holds for the device has its private part in the store under the
    // same ID, and the server got no key ID twice: claims them all and looks each up.
    void expect_every_server_key_has_its_private_part(std::size_t expected) {
        auto store = open_store();
        std::set<std::string> ids;
        for (std::size_t i = 0; i < expected; ++i) {
            auto claimed = hs.claim_one_time_key(bot, device);
            ASSERT_TRUE(claimed);
            const auto& [full_id, key] = *claimed->as_object().begin();
            if (key.find("fallback")) {
                ADD_FAILURE() << "fewer one-time keys than " << expected << " on the server";
                return;
            }
            const std::string id = full_id.substr(full_id.find(':') + 1);
            EXPECT_TRUE(ids.insert(id).second) << "key ID " << id << " twice";
            auto mine = store.one_time_keys().find(id);
            ASSERT_TRUE(mine);
            ASSERT_TRUE(*mine) << "no private part for published key " << id;
            EXPECT_EQ((*mine)->public_key, key.find("key")->as_string());
            EXPECT_EQ((*mine)->state, storage::key_state::published);
        }
        auto events = store.security().recent(100);
        ASSERT_TRUE(events);
        for (const auto& e : *events)
            EXPECT_NE(e.kind, "one_time_key_conflict") << e.detail_json;
    }
};

TEST_F(key_crash_test, killed_between_committing_and_uploading_one_time_keys) {
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("keys.one_time.after_persist"));
    std::vector<std::string> pending_public;
    {
        auto store = open_store();
        auto pending = store.one_time_keys().pending();
        ASSERT_TRUE(pending);
        ASSERT_EQ(pending->size(), 50u);
        for (const auto& k : *pending)
            pending_public.push_back(k.public_key);
    }
    EXPECT_EQ(hs.one_time_key_count(bot, device), 0u);  // nothing went out
    ASSERT_NO_FATAL_FAILURE(run_until_logged({"published 50 one-time keys"}));
    {
        // The very keys committed before the crash were published, not new ones.
        auto store = open_store();
        EXPECT_EQ(*store.one_time_keys().count(storage::key_state::pending), 0);
        EXPECT_EQ(*store.one_time_keys().count(storage::key_state::published), 50);
        for (const auto& pub : pending_public) {
            auto k = store.one_time_keys().find_by_public_key(pub);
            ASSERT_TRUE(k && *k) << pub;
            EXPECT_EQ((*k)->state, storage::key_state::published);
        }
    }
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);
    expect_every_server_key_has_its_private_part(50);
}

TEST_F(key_crash_test, killed_after_the_server_took_the_keys_but_before_recording_it) {
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("keys.one_time.after_upload"));
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);  // the server has them
    {
        auto store = open_store();
        EXPECT_EQ(*store.one_time_keys().count(storage::key_state::pending), 50);  // not marked
    }
    const auto before = requests_to(keys_upload);
    ASSERT_NO_FATAL_FAILURE(run_until_logged({"published 50 one-time keys"}));
    // The same bytes again, which the server accepts: no conflict, no second set of keys.
    const auto after = requests_to(keys_upload);
    std::optional<std::string> first_upload;
    for (const auto& r : before) {
        if (r.request_body.find("one_time_keys") != std::string::npos)
            first_upload = r.request_body;
    }
    ASSERT_TRUE(first_upload);
    bool resent = false;
    for (std::size_t i = before.size(); i < after.size(); ++i) {
        EXPECT_EQ(after[i].status, 200u) << after[i].response_body;
        if (after[i].request_body == *first_upload) resent = true;
    }
    EXPECT_TRUE(resent) << "the keys were not sent again byte for byte";
    EXPECT_EQ(hs.one_time_key_count(bot, device), 50u);
    expect_every_server_key_has_its_private_part(50);
}

TEST_F(key_crash_test, killed_between_committing_and_uploading_a_fallback_key) {
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("keys.fallback.after_persist"));
    EXPECT_TRUE(hs.unused_fallback_key_types(bot, device).empty());
    std::string committed;
    {
        auto store = open_store();
        auto current = store.fallback_keys().current();
        ASSERT_TRUE(current && *current);
        EXPECT_EQ((*current)->state, storage::key_state::pending);
        committed = (*current)->public_key;
    }
    ASSERT_NO_FATAL_FAILURE(run_until_logged({"published fallback key"}));
    EXPECT_EQ(hs.unused_fallback_key_types(bot, device),
              std::vector<std::string>{"signed_curve25519"});
    // Exhaust the one-time keys: the next claim is the fallback key, the one committed.
    for (int i = 0; i < 50; ++i)
        ASSERT_TRUE(hs.claim_one_time_key(bot, device));
    auto fallback = hs.claim_one_time_key(bot, device);
    ASSERT_TRUE(fallback);
    EXPECT_EQ(fallback->as_object().begin()->second.find("key")->as_string(), committed);
}

TEST_F(key_crash_test, killed_around_the_cross_signing_upload) {
    write_config("cross_signing = \"bootstrap\"\n");
    // Committed but not uploaded: the same keys go up after the restart.
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("keys.cross_signing.after_persist"));
    std::string master;
    {
        auto store = open_store();
        auto own = store.own_cross_signing().load();
        ASSERT_TRUE(own);
        ASSERT_EQ(own->size(), 3u);
        master = (*own)[0].public_key;
    }
    EXPECT_FALSE(hs.cross_signing_key(bot, testing::cross_signing_key_kind::master));
    // Uploaded (with UIA) but not recorded: the identical upload needs no UIA and is accepted.
    ASSERT_NO_FATAL_FAILURE(run_until_killed_at("keys.cross_signing.after_upload"));
    auto on_server = hs.cross_signing_key(bot, testing::cross_signing_key_kind::master);
    ASSERT_TRUE(on_server);
    EXPECT_TRUE(on_server->find("keys")->find("ed25519:" + master));
    const auto before = requests_to(device_signing).size();
    ASSERT_NO_FATAL_FAILURE(run_until_logged(
        {"uploaded the cross-signing keys", "signed device BOTDEVICE with the self-signing key"}));
    const auto after = requests_to(device_signing);
    ASSERT_EQ(after.size(), before + 1);
    EXPECT_EQ(after.back().status, 200u);
    EXPECT_EQ(after.back().request_body.find("auth"), std::string::npos);
    EXPECT_EQ(hs.cross_signing_key(bot, testing::cross_signing_key_kind::master), on_server);
    auto store = open_store();
    auto own = store.own_cross_signing().load();
    ASSERT_TRUE(own);
    EXPECT_EQ((*own)[0].public_key, master);
    EXPECT_EQ((*own)[0].state, storage::upload_state::uploaded);
}

TEST_F(key_crash_test, the_sealing_key_is_created_once_and_a_missing_or_wrong_one_refused) {
    ASSERT_NO_FATAL_FAILURE(run_until_logged({"created the sealing key", "published 50"}));
    const auto key_file = dir / "devlistd.db.key";
    struct stat st {};
    ASSERT_EQ(::stat(key_file.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    // Lost: devlistd must not make a new key for a database that holds sealed keys.
    std::filesystem::rename(key_file, dir / "saved.key");
    auto& missing = start();
    auto e = missing.wait_exit(clock::now() + patience);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->exited_with(78)) << *e;
    EXPECT_NE(missing.output().find("sealing key " + key_file.string() + " is missing"),
              std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(key_file));

    // Another key: the identity does not open, and devlistd says so.
    dir.write_file("other.key", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY\n");
    write_config("sealing_key_file = \"other.key\"\n");
    auto& wrong = start();
    e = wrong.wait_exit(clock::now() + patience);
    ASSERT_TRUE(e);
    EXPECT_TRUE(e->exited_with(1)) << *e;
    EXPECT_NE(wrong.output().find("do not open with the configured sealing key"),
              std::string::npos);

    // The right key, configured explicitly, works again.
    write_config("sealing_key_file = \"saved.key\"\n");
    ASSERT_NO_FATAL_FAILURE(run_until_logged({"tracking device lists for"}));
}

}  // namespace
}  // namespace devlist::test
