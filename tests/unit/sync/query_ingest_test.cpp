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
    std::string extra;                  // master_keys and self_signing_keys members of the body
    std::vector<query_ticket> tickets;  // of the last ingest

    void SetUp() override {
        std::filesystem::create_directories(dir);
        auto s = storage::store::open(dir / "ingest.db");
        ASSERT_TRUE(s) << s.error().message();
        store.emplace(std::move(*s));
        storage::sync_batch batch;
        for (int i = 0; i < users; ++i)
            tracker.track_explicitly(user_name(i), batch);
        ASSERT_TRUE(store->sync().apply_sync_batch(batch));

        std::string masters, self_signing;
        for (int i = 0; i < users; ++i) {
            auto& cs = cross.emplace_back(cross_signing{user_name(i)});
            for (const char* id : {"DEV1", "DEV2"}) {
                fake_device d{user_name(i), id};
                devices[user_name(i)][id] = cs.cross_sign(d.signed_json());
            }
            if (i) masters += ",", self_signing += ",";
            masters += "\"" + user_name(i) + "\":" + cs.key_json(cs.master, "master", nullptr);
            self_signing += "\"" + user_name(i) +
                            "\":" + cs.key_json(cs.self_signing, "self_signing", &cs.master);
        }
        extra = ",\"master_keys\":{" + masters + "},\"self_signing_keys\":{" + self_signing + "}";
    }
    void TearDown() override {
        store.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    keys_query_response parsed(const std::string& body) {
        auto r = parse_keys_query_response(ctx, body);
        EXPECT_TRUE(r) << r.error().message();
        return r ? std::move(*r) : keys_query_response{};
    }

    // Runs one ingest to its end on this thread's io_context.
    ingest_totals ingest(const keys_query_response& answer, ingest_options options,
                         std::function<void(storage::query_result&)> prepare = {},
                         asio::cancellation_signal* cancel = nullptr) {
        tickets = tracker.take_outdated(1000);
        std::optional<ingest_totals> totals;
        auto done = [&](std::exception_ptr e, ingest_totals t) {
            EXPECT_FALSE(e);
            totals = std::move(t);
        };
        auto op = ingest_query_answer(*store, answer, tickets, 5000, options, std::move(prepare));
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

TEST_F(query_ingest_test, an_unchanged_answer_checks_no_signature_again) {
    ingest_options options;
    auto body = answer_body(devices, extra);
    auto first = ingest(parsed(body), options);
    EXPECT_GT(first.stats.signatures_checked, 0u);
    storage::sync_batch batch;
    std::vector<std::string> all;
    for (int i = 0; i < users; ++i)
        all.push_back(user_name(i));
    tracker.mark_outdated(all, batch);
    ASSERT_TRUE(store->sync().apply_sync_batch(batch));

    auto again = ingest(parsed(body), options);
    EXPECT_EQ(again.stats.signatures_checked, 0u);
    EXPECT_EQ(again.stats.devices_unchanged, std::size_t{2 * users});
    EXPECT_TRUE(again.outcome.device_changes.empty());
    EXPECT_EQ(again.outcome.cleared.size(), std::size_t{users});
    EXPECT_EQ(cross_signed_devices(), std::size_t{2 * users});
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
