#include "sync/key_planner.hpp"

#include <gtest/gtest.h>

namespace devlist::sync {
namespace {

using namespace std::chrono_literals;
using clock_point = key_planner::clock_point;

const clock_point t0 = clock_point{} + 1000s;

key_planner::sync_report report(std::int64_t count, std::optional<std::vector<std::string>> unused,
                                clock_point sent) {
    key_planner::sync_report r;
    r.one_time_key_counts = {{"signed_curve25519", count}};
    r.unused_fallback_key_types = std::move(unused);
    r.sent_at = sent;
    return r;
}

storage::fallback_key published_fallback(storage::timestamp_ms at) {
    storage::fallback_key k;
    k.key_id = "AAAAAQ";
    k.state = storage::key_state::published;
    k.published_at = at;
    return k;
}

TEST(key_planner_test, nothing_is_generated_before_the_server_count_is_known) {
    key_planner p(50);
    EXPECT_FALSE(p.server_count());
    EXPECT_EQ(p.one_time_keys_to_generate(0), 0u);
}

TEST(key_planner_test, generates_target_minus_count_minus_pending_and_never_negative) {
    key_planner p(50);
    p.note_sync(report(38, std::nullopt, t0));
    EXPECT_EQ(p.one_time_keys_to_generate(0), 12u);
    EXPECT_EQ(p.one_time_keys_to_generate(5), 7u);
    EXPECT_EQ(p.one_time_keys_to_generate(20), 0u);
    p.note_sync(report(70, std::nullopt, t0 + 1s));  // more than the target: nothing
    EXPECT_EQ(p.one_time_keys_to_generate(0), 0u);
}

TEST(key_planner_test, a_missing_count_is_zero) {
    key_planner p(50);
    key_planner::sync_report r;
    r.sent_at = t0;
    p.note_sync(r);
    ASSERT_TRUE(p.server_count());
    EXPECT_EQ(*p.server_count(), 0);
    EXPECT_EQ(p.one_time_keys_to_generate(0), 50u);
}

TEST(key_planner_test, a_sync_sent_before_the_last_upload_answer_is_not_believed) {
    key_planner p(50);
    p.note_sync(report(0, std::nullopt, t0));
    p.note_upload_answer({{"signed_curve25519", 50}}, t0 + 5s);
    // A long-poll sent before the upload comes back with the old count.
    p.note_sync(report(0, std::nullopt, t0 + 1s));
    EXPECT_EQ(*p.server_count(), 50);
    EXPECT_EQ(p.one_time_keys_to_generate(0), 0u);
    // A later one is the truth again.
    p.note_sync(report(45, std::nullopt, t0 + 6s));
    EXPECT_EQ(p.one_time_keys_to_generate(0), 5u);
}

TEST(key_planner_test, fallback_support_comes_from_the_server_reporting_unused_types) {
    key_planner p(50);
    EXPECT_EQ(p.fallback_next(std::nullopt, 0, 168h), key_planner::fallback_step::none);
    p.note_sync(report(50, std::vector<std::string>{}, t0));
    EXPECT_TRUE(p.fallback_supported());
    EXPECT_EQ(p.fallback_next(std::nullopt, 0, 168h), key_planner::fallback_step::create);
    storage::fallback_key pending;
    pending.state = storage::key_state::pending;
    EXPECT_EQ(p.fallback_next(pending, 0, 168h), key_planner::fallback_step::upload);
}

TEST(key_planner_test, a_used_fallback_key_is_reported_once_and_a_replay_after_rotation_is_not) {
    key_planner p(50);
    p.note_sync(report(50, std::vector<std::string>{"signed_curve25519"}, t0));
    EXPECT_FALSE(p.fallback_reported_used());
    p.note_sync(report(0, std::vector<std::string>{}, t0 + 1s));
    EXPECT_TRUE(p.fallback_reported_used());
    // The rotation's upload answer arrives; the same "used" sync replayed (sent before it)
    // must not make the new key look used.
    p.note_upload_answer({{"signed_curve25519", 50}}, t0 + 3s);
    EXPECT_FALSE(p.fallback_reported_used());
    p.note_sync(report(0, std::vector<std::string>{}, t0 + 2s));
    EXPECT_FALSE(p.fallback_reported_used());
    // Only a report requested after the new key was published counts.
    p.note_sync(report(50, std::vector<std::string>{}, t0 + 4s));
    EXPECT_TRUE(p.fallback_reported_used());
}

TEST(key_planner_test, the_fallback_key_is_rotated_when_used_or_a_week_old) {
    key_planner p(50);
    p.note_sync(report(50, std::vector<std::string>{"signed_curve25519"}, t0));
    const storage::timestamp_ms week = 7LL * 24 * 3600 * 1000;
    auto key = published_fallback(1000);
    EXPECT_EQ(p.fallback_next(key, 1000 + week - 1, 168h), key_planner::fallback_step::none);
    EXPECT_EQ(p.fallback_next(key, 1000 + week, 168h), key_planner::fallback_step::rotate);
    key.used_at = 2000;
    EXPECT_EQ(p.fallback_next(key, 2000, 168h), key_planner::fallback_step::rotate);
}

// Issue 7: the first /sync of a run is usually sent before the first upload is answered. Its
// counts are stale then, but not its word that the server takes fallback keys; ignoring that
// held the first fallback key back for up to two long-polls (a minute with the default 30 s).
TEST(key_planner_test, fallback_support_is_taken_even_from_a_report_older_than_an_upload) {
    key_planner p(50);
    p.note_upload_answer({{"signed_curve25519", 0}}, t0 + 1s);
    p.note_sync(report(7, std::vector<std::string>{}, t0));
    EXPECT_TRUE(p.fallback_supported());
    EXPECT_EQ(p.server_count(), 0);  // the stale count is still ignored
}

}  // namespace
}  // namespace devlist::sync
