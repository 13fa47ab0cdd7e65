#include "sync/query_ingest.hpp"

#include <gtest/gtest.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/thread_pool.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <future>
#include <random>

#include "storage/store.hpp"
#include "sync/device_list_tracker.hpp"
#include "sync/parse_keys.hpp"
#include "tests/unit/sync/signed_keys_fixture.hpp"

namespace devlist::sync {
namespace {

namespace asio = boost::asio;

std::string user_name(int i) {
    return "@u" + std::to_string(i) + ":example.org";
}

// Users with two cross-signed devices each, tracked and outdated in a real store.
class query_ingest_test : public ::testing::Test {
  protected:
    static constexpr int users = 12;

    std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                ("devlist-ingest-" + std::to_string(std::random_device{}()));
    std::optional<storage::store> store;
    device_list_tracker tracker{"@bot:localhost"};
    asio::io_context io{1};
    parse_context ctx;
    std::map<std::string, std::map<std::string, std::string>> devices;
    std::vector<cross_signing> cross;
    std::string extra;  // master_keys and self_signing_keys members of the body
    std::map<std::string, std::string> masters, self_signings;  // by user, as in `extra`
    std::vector<query_ticket> tickets;                          // of the last ingest
    storage::timestamp_ms now = 5000;                           // of the next ingest

    void SetUp() override {
        std::filesystem::create_directories(dir);
        auto s = storage::store::open(dir / "ingest.db");
        ASSERT_TRUE(s) << s.error().message();
        store.emplace(std::move(*s));
        storage::sync_batch batch;
        for (int i = 0; i < users; ++i)
            tracker.track_explicitly(user_name(i), batch);
        ASSERT_TRUE(store->sync().apply_sync_batch(batch));

        for (int i = 0; i < users; ++i) {
            auto& cs = cross.emplace_back(cross_signing{user_name(i)});
            for (const char* id : {"DEV1", "DEV2"}) {
                fake_device d{user_name(i), id};
                devices[user_name(i)][id] = cs.cross_sign(d.signed_json());
            }
            this->masters[user_name(i)] = cs.key_json(cs.master, "master", nullptr);
            self_signings[user_name(i)] = cs.key_json(cs.self_signing, "self_signing", &cs.master);
        }
        extra = cross_signing_members();
    }

    // The master_keys and self_signing_keys members of a body, from `masters` and
    // `self_signings`.
    std::string cross_signing_members() const {
        std::string masters_json, self_signing_json;
        for (const auto& [user, json] : masters)
            masters_json += (masters_json.empty() ? "\"" : ",\"") + user + "\":" + json;
        for (const auto& [user, json] : self_signings)
            self_signing_json += (self_signing_json.empty() ? "\"" : ",\"") + user + "\":" + json;
        return ",\"master_keys\":{" + masters_json + "},\"self_signing_keys\":{" +
               self_signing_json + "}";
    }
    void TearDown() override {
        store.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    keys_query_answer parsed(const std::string& body) {
        auto r = index_keys_query_answer(ctx, body);
        EXPECT_TRUE(r) << r.error().message();
        return r ? std::move(*r) : keys_query_answer{};
    }

    // Runs one ingest to its end on this thread's io_context.
    ingest_totals ingest(const keys_query_answer& answer, ingest_options options,
                         std::function<void(storage::query_result&)> prepare = {},
                         asio::cancellation_signal* cancel = nullptr) {
        tickets = tracker.take_outdated(1000);
        std::optional<ingest_totals> totals;
        auto done = [&](std::exception_ptr e, ingest_totals t) {
            EXPECT_FALSE(e);
            totals = std::move(t);
        };
        auto op = ingest_query_answer(*store, answer, tickets, now, options, std::move(prepare));
        if (cancel) {
            asio::co_spawn(io, std::move(op), asio::bind_cancellation_slot(cancel->slot(), done));
        } else {
            asio::co_spawn(io, std::move(op), done);
        }
        io.run();
        io.restart();
        EXPECT_TRUE(totals);
        if (!totals) return {};
        tracker.finish_query(tickets, totals->outcome.cleared);
        return std::move(*totals);
    }

    // Every user outdated again, as after a /sync that named them all in device_lists.changed.
    void mark_all_outdated() {
        storage::sync_batch batch;
        std::vector<std::string> all;
        for (int i = 0; i < users; ++i)
            all.push_back(user_name(i));
        tracker.mark_outdated(all, batch);
        ASSERT_TRUE(store->sync().apply_sync_batch(batch));
    }

    std::optional<storage::answer_digest> stored_digest(const std::string& user_id) {
        auto d = store->devices().answer_digest_of(user_id);
        EXPECT_TRUE(d);
        return d ? *d : std::nullopt;
    }

    std::size_t outdated_in_store() {
        auto o = store->tracking().outdated_users(1000);
        EXPECT_TRUE(o);
        return o ? o->size() : 0;
    }
    std::size_t cross_signed_devices() {
        std::size_t n = 0;
        for (int i = 0; i < users; ++i) {
            auto d = store->devices().devices_of(user_name(i));
            EXPECT_TRUE(d);
            for (const auto& dev : *d)
                n += dev.cross_signed ? 1 : 0;
        }
        return n;
    }
};

TEST_F(query_ingest_test, every_user_is_its_own_slice_with_no_budget_and_all_is_stored) {
    ingest_options options;
    options.slice_budget = std::chrono::microseconds(0);
    options.commit_users = 1;
    auto totals = ingest(parsed(answer_body(devices, extra)), options);
    EXPECT_FALSE(totals.store_error);
    EXPECT_EQ(totals.slices, std::size_t{users});
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(totals.outcome.device_changes.size(), std::size_t{2 * users});
    EXPECT_EQ(totals.stats.devices_accepted, std::size_t{2 * users});
    EXPECT_EQ(outdated_in_store(), 0u);
    EXPECT_EQ(cross_signed_devices(), std::size_t{2 * users});
    EXPECT_EQ(totals.answered_servers, std::vector<std::string>{"example.org"});
}

TEST_F(query_ingest_test, small_slices_are_gathered_into_commits_of_a_few_users) {
    ingest_options options;
    options.slice_budget = std::chrono::microseconds(0);
    options.commit_users = 5;
    auto totals = ingest(parsed(answer_body(devices, extra)), options);
    EXPECT_EQ(totals.slices, std::size_t{(users + 4) / 5});
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(outdated_in_store(), 0u);
}

TEST_F(query_ingest_test, a_large_budget_commits_one_slice) {
    ingest_options options;
    options.slice_budget = std::chrono::seconds(60);
    auto totals = ingest(parsed(answer_body(devices, extra)), options);
    EXPECT_EQ(totals.slices, 1u);
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
}

TEST_F(query_ingest_test, a_pool_verifies_the_same_and_commits_in_order) {
    asio::thread_pool pool(2);
    ingest_options options;
    options.pool = &pool;
    options.pool_threads = 2;
    auto totals = ingest(parsed(answer_body(devices, extra)), options);
    pool.join();
    EXPECT_FALSE(totals.store_error);
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(totals.stats.devices_accepted, std::size_t{2 * users});
    EXPECT_EQ(cross_signed_devices(), std::size_t{2 * users});
    // Slices verified at once are committed in the order they were cut: ticket order.
    std::vector<std::string> order;
    for (const auto& t : tickets)
        order.push_back(t.user_id);
    EXPECT_EQ(totals.outcome.cleared, order);
}

TEST_F(query_ingest_test, the_pool_threads_lower_their_priority_once_and_the_caller_keeps_its) {
    const auto nice_of_this_thread = [] {
        errno = 0;
        return ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
    };
    const int caller = nice_of_this_thread();
    if (caller > 16) GTEST_SKIP() << "this test runs at nice " << caller << " already";
    asio::thread_pool pool(1);
    ingest_options options;
    options.pool = &pool;
    options.pool_threads = 1;
    options.pool_nice = 3;
    auto totals = ingest(parsed(answer_body(devices, extra)), options);
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
    std::promise<int> seen;
    asio::post(pool, [&] { seen.set_value(nice_of_this_thread()); });
    EXPECT_EQ(seen.get_future().get(), caller + 3);
    EXPECT_EQ(nice_of_this_thread(), caller);
    pool.join();
}

TEST_F(query_ingest_test, a_repeated_answer_is_neither_parsed_nor_verified_again) {
    ingest_options options;
    auto body = answer_body(devices, extra);
    auto first = ingest(parsed(body), options);
    EXPECT_EQ(first.stats.signatures_checked, std::size_t{users * (2 * 2 + 1)});
    EXPECT_EQ(first.stats.users_repeated, 0u);
    for (int i = 0; i < users; ++i)
        EXPECT_TRUE(stored_digest(user_name(i))) << user_name(i);
    mark_all_outdated();

    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.users_repeated, std::size_t{users});
    EXPECT_EQ(again.stats.signatures_checked, 0u);
    // Not parsed: no device was even compared.
    EXPECT_EQ(again.stats.devices_unchanged + again.stats.devices_accepted, 0u);
    EXPECT_TRUE(again.outcome.device_changes.empty());
    EXPECT_EQ(again.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(outdated_in_store(), 0u);
    EXPECT_EQ(cross_signed_devices(), std::size_t{2 * users});
}

// A store from before answer digests (or one whose digests were cleared): the devices are
// compared with the stored ones, no signature is checked, and the digests are written then.
TEST_F(query_ingest_test, an_unchanged_answer_without_stored_digests_checks_no_signature_again) {
    ingest_options options;
    auto body = answer_body(devices, extra);
    ingest(parsed(body), options);
    ASSERT_TRUE(
        store->database().exec("UPDATE tracked_users SET answer_digest = NULL, "
                               "answer_seen_at = NULL"));
    mark_all_outdated();

    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.users_repeated, 0u);
    EXPECT_EQ(again.stats.signatures_checked, 0u);
    EXPECT_EQ(again.stats.devices_unchanged, std::size_t{2 * users});
    EXPECT_TRUE(again.outcome.device_changes.empty());
    EXPECT_EQ(again.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(cross_signed_devices(), std::size_t{2 * users});
    for (int i = 0; i < users; ++i)
        EXPECT_TRUE(stored_digest(user_name(i))) << user_name(i);

    mark_all_outdated();
    EXPECT_EQ(ingest(parsed(body), options).stats.users_repeated, std::size_t{users});
}

TEST_F(query_ingest_test, a_changed_byte_anywhere_in_a_users_part_takes_the_full_way) {
    ingest_options options;
    ingest(parsed(answer_body(devices, extra)), options);
    // Five users' parts differ in one place each; no signature is broken by it.
    auto changed = devices;
    // An unsigned display name (outside the signature).
    auto& renamed = changed[user_name(1)]["DEV1"];
    renamed.insert(renamed.size() - 1, R"(,"unsigned":{"device_display_name":"new phone"})");
    // Insignificant whitespace in a master key and in a self-signing key.
    masters[user_name(2)].insert(1, " ");
    self_signings[user_name(3)].insert(1, " ");
    // A new device.
    fake_device added{user_name(4), "DEV3"};
    changed[user_name(4)]["DEV3"] = cross[4].cross_sign(added.signed_json());
    // A device's signed content.
    fake_device replaced{user_name(5), "DEV2"};
    changed[user_name(5)]["DEV2"] = cross[5].cross_sign(replaced.signed_json());
    const std::string body = answer_body(changed, cross_signing_members());
    mark_all_outdated();

    auto totals = ingest(parsed(body), options);
    EXPECT_EQ(totals.stats.users_repeated, std::size_t{users - 5});
    // Checked: the renamed device's two signatures, none for the master key (nothing signs
    // it), the master's on the self-signing key, the new device's two, and the self-signature
    // of the device whose key changed (refused).
    EXPECT_EQ(totals.stats.signatures_checked, 6u);
    EXPECT_EQ(totals.stats.devices_rejected, 1u);
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users});
    auto renamed_device = store->devices().find(user_name(1), "DEV1");
    ASSERT_TRUE(renamed_device && *renamed_device);
    EXPECT_EQ((*renamed_device)->display_name, std::optional<std::string>("new phone"));
    ASSERT_TRUE(store->devices().find(user_name(4), "DEV3").value());

    // The parts accepted whole now repeat; the one with the refused device does not.
    mark_all_outdated();
    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.users_repeated, std::size_t{users - 1});
    EXPECT_EQ(stored_digest(user_name(5)), std::nullopt);
}

TEST_F(query_ingest_test, a_user_with_a_refused_device_keeps_no_digest_and_is_verified_again) {
    ingest_options options;
    auto changed = devices;
    // A device whose self-signature does not match its content.
    fake_device forged{user_name(0), "DEV9"};
    std::string forged_json = cross[0].cross_sign(forged.signed_json());
    forged_json.replace(forged_json.find("\"DEV9\""), 6, "\"DEV9\",\"x\":1");
    changed[user_name(0)]["DEV9"] = forged_json;
    const std::string body = answer_body(changed, extra);
    auto first = ingest(parsed(body), options);
    EXPECT_EQ(first.stats.devices_rejected, 1u);
    EXPECT_EQ(stored_digest(user_name(0)), std::nullopt);
    EXPECT_TRUE(stored_digest(user_name(1)));
    mark_all_outdated();

    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.users_repeated, std::size_t{users - 1});
    EXPECT_EQ(again.stats.devices_rejected, 1u);
    EXPECT_EQ(again.stats.signatures_checked, 1u);  // the forged device's self-signature
    EXPECT_EQ(again.security_events.size(), 1u);
    EXPECT_EQ(again.outcome.cleared.size(), std::size_t{users});
}

TEST_F(query_ingest_test, devices_written_from_elsewhere_clear_the_digest) {
    ingest_options options;
    const std::string body = answer_body(devices, extra);
    ingest(parsed(body), options);
    ASSERT_TRUE(stored_digest(user_name(0)));
    // A result for the user that is not one accepted part (here: DEV2 missing).
    auto kept = store->devices().devices_of(user_name(0));
    ASSERT_TRUE(kept);
    storage::query_result other;
    other.at = now;
    storage::user_query_result user;
    user.user_id = user_name(0);
    user.devices = {kept->front()};
    other.users.push_back(user);
    ASSERT_TRUE(store->devices().apply_query_result(other));
    EXPECT_EQ(stored_digest(user_name(0)), std::nullopt);
    mark_all_outdated();

    // The same answer again: the user's part is looked at whole, and DEV2 comes back.
    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.users_repeated, std::size_t{users - 1});
    ASSERT_EQ(again.outcome.device_changes.size(), 1u);
    EXPECT_EQ(again.outcome.device_changes[0].device_id, "DEV2");
    EXPECT_TRUE(stored_digest(user_name(0)));
}

TEST_F(query_ingest_test, a_part_that_does_not_parse_refuses_the_answer_and_commits_nothing) {
    ingest_options options;
    ingest(parsed(answer_body(devices, extra)), options);
    mark_all_outdated();
    // Every part but one repeats; that one names a device twice, which the first step does not
    // look for.
    std::string body = answer_body(devices, extra);
    const std::string dev1 = "\"DEV1\":" + devices[user_name(7)]["DEV1"];
    const auto at = body.find(dev1);
    ASSERT_NE(at, std::string::npos);
    body.insert(at, dev1 + ",");
    auto totals = ingest(parsed(body), options);
    ASSERT_TRUE(totals.refused);
    EXPECT_NE(totals.refused->message().find("duplicate key \"DEV1\""), std::string::npos)
        << totals.refused->message();
    EXPECT_EQ(totals.slices, 0u);
    EXPECT_TRUE(totals.outcome.cleared.empty());
    EXPECT_EQ(outdated_in_store(), std::size_t{users});
}

TEST_F(query_ingest_test, a_repeated_part_refreshes_last_seen_once_it_is_due) {
    ingest_options options;
    const std::string body = answer_body(devices, extra);
    ingest(parsed(body), options);
    auto last_seen = [&] {
        auto d = store->devices().find(user_name(0), "DEV1");
        auto k = store->devices().cross_signing_keys_of(user_name(0));
        EXPECT_TRUE(d && *d && k && !k->empty());
        return std::pair((*d)->last_seen, k->front().last_seen);
    };
    mark_all_outdated();
    now = 5000 + storage::last_seen_resolution_ms - 1;
    EXPECT_EQ(ingest(parsed(body), options).stats.users_repeated, std::size_t{users});
    EXPECT_EQ(last_seen(), std::pair(storage::timestamp_ms{5000}, storage::timestamp_ms{5000}));

    mark_all_outdated();
    now = 5000 + storage::last_seen_resolution_ms;
    auto due = ingest(parsed(body), options);
    EXPECT_EQ(due.stats.users_repeated, std::size_t{users});
    EXPECT_EQ(due.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(last_seen(), std::pair(now, now));
}

TEST_F(query_ingest_test, a_repeated_part_keeps_the_race_guard) {
    ingest_options options;
    const std::string body = answer_body(devices, extra);
    ingest(parsed(body), options);
    mark_all_outdated();
    const std::string late = user_name(3);
    auto totals = ingest(parsed(body), options, [&](storage::query_result&) {
        // A /sync marks a user outdated again while the answer is being stored.
        storage::sync_batch batch;
        tracker.mark_outdated({late}, batch);
        ASSERT_TRUE(store->sync().apply_sync_batch(batch));
    });
    EXPECT_EQ(totals.stats.users_repeated, std::size_t{users});
    EXPECT_EQ(totals.outcome.still_outdated, std::vector<std::string>{late});
    EXPECT_EQ(outdated_in_store(), 1u);
}

TEST_F(query_ingest_test, a_user_marked_outdated_between_slices_stays_outdated) {
    ingest_options options;
    options.slice_budget = std::chrono::microseconds(0);
    options.commit_users = 1;
    const std::string late = user_name(users - 1);
    int slice = 0;
    // After the first slice is committed, a /sync marks the last user outdated again.
    auto totals = ingest(parsed(answer_body(devices, extra)), options, [&](storage::query_result&) {
        if (++slice != 2) return;
        storage::sync_batch batch;
        tracker.mark_outdated({late}, batch);
        ASSERT_TRUE(store->sync().apply_sync_batch(batch));
    });
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users - 1});
    EXPECT_EQ(totals.outcome.still_outdated, std::vector<std::string>{late});
    EXPECT_EQ(outdated_in_store(), 1u);
}

TEST_F(query_ingest_test, cancellation_between_slices_keeps_what_was_committed) {
    ingest_options options;
    options.slice_budget = std::chrono::microseconds(0);
    options.commit_users = 1;
    asio::cancellation_signal cancel;
    int slice = 0;
    auto totals = ingest(
        parsed(answer_body(devices, extra)), options,
        [&](storage::query_result&) {
            if (++slice == 3) {
                asio::post(io, [&] { cancel.emit(asio::cancellation_type::terminal); });
            }
        },
        &cancel);
    EXPECT_FALSE(totals.store_error);
    EXPECT_GE(totals.slices, 3u);
    EXPECT_LT(totals.slices, std::size_t{users});
    EXPECT_EQ(totals.outcome.cleared.size(), totals.slices);
    EXPECT_EQ(outdated_in_store(), users - totals.slices);
}

TEST_F(query_ingest_test, failed_servers_and_absent_users_are_left_outdated) {
    // Only the first half of the users is in the answer; a second server failed.
    std::map<std::string, std::map<std::string, std::string>> half;
    for (int i = 0; i < users / 2; ++i)
        half[user_name(i)] = devices[user_name(i)];
    storage::sync_batch batch;
    tracker.track_explicitly("@far:elsewhere.example", batch);
    ASSERT_TRUE(store->sync().apply_sync_batch(batch));
    bool first = true;
    auto totals = ingest(parsed(answer_body(half, ",\"failures\":{\"elsewhere.example\":{}}")), {},
                         [&](storage::query_result& r) {
                             EXPECT_EQ(r.answered_servers.empty(), !first);
                             first = false;
                         });
    EXPECT_EQ(totals.outcome.cleared.size(), std::size_t{users / 2});
    EXPECT_EQ(totals.absent.size(), std::size_t{users - users / 2});
    EXPECT_EQ(totals.answered_servers, std::vector<std::string>{"example.org"});
    EXPECT_EQ(outdated_in_store(), std::size_t{users - users / 2 + 1});
}

}  // namespace
}  // namespace devlist::sync
