#include "sync/key_planner.hpp"

#include <algorithm>

namespace devlist::sync {

namespace {
constexpr std::string_view algorithm = "signed_curve25519";
}

void key_planner::note_sync(const sync_report& report) {
    // That the server takes fallback keys does not go stale with an upload: taken from every
    // report, else the first /sync (sent before the first upload's answer) would not count and
    // the fallback key would wait for a long-poll sent after it.
    if (report.unused_fallback_key_types) fallback_supported_ = true;
    if (report.sent_at < last_upload_answer_) return;
    auto it = report.one_time_key_counts.find(std::string(algorithm));
    count_ = it == report.one_time_key_counts.end() ? 0 : it->second;
    if (report.unused_fallback_key_types) {
        const auto& types = *report.unused_fallback_key_types;
        fallback_unused_ = std::find(types.begin(), types.end(), algorithm) != types.end();
    }
}

void key_planner::note_upload_answer(const std::map<std::string, std::int64_t>& counts,
                                     clock_point now) {
    auto it = counts.find(std::string(algorithm));
    count_ = it == counts.end() ? 0 : it->second;
    last_upload_answer_ = now;
    // Forget what older reports said about the fallback key: after a fallback upload the old
    // "used" is about the replaced key, and otherwise the server keeps saying "used" in every
    // answer, so the next trusted /sync tells again.
    fallback_unused_ = true;
}

std::size_t key_planner::one_time_keys_to_generate(std::int64_t pending) const {
    if (!count_) return 0;
    const auto want = static_cast<std::int64_t>(target_) - *count_ - pending;
    return want > 0 ? static_cast<std::size_t>(want) : 0;
}

bool key_planner::fallback_reported_used() const {
    return fallback_supported_ && !fallback_unused_;
}

key_planner::fallback_step key_planner::fallback_next(
    const std::optional<storage::fallback_key>& current, storage::timestamp_ms now,
    std::chrono::milliseconds rotation) const {
    if (!fallback_supported_) return fallback_step::none;
    if (!current) return fallback_step::create;
    if (current->state == storage::key_state::pending) return fallback_step::upload;
    if (current->used_at) return fallback_step::rotate;
    if (current->published_at && now - *current->published_at >= rotation.count()) {
        return fallback_step::rotate;
    }
    return fallback_step::none;
}

}  // namespace devlist::sync
