// The key-maintenance planner: what the own device's keys need next, decided from plain facts
// (what the server last said, what the store holds, the time). No I/O and no clock of its own,
// so tests drive every rule directly.
//
// The one subtle rule is which server reports to believe. A /sync answer that was requested
// before an upload finished may carry counts from before the upload: believing it would
// generate keys twice, or rotate a fallback key that was just replaced. So a report counts only
// if its request was sent after the last upload was answered; an upload's own answer is always
// current.
#pragma once

#include "storage/records.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace devlist::sync {

class key_planner {
  public:
    using clock_point = std::chrono::steady_clock::time_point;

    // What a /sync answer said about the own keys.
    struct sync_report {
        std::map<std::string, std::int64_t> one_time_key_counts;  // absent algorithm: 0
        // nullopt: the answer did not carry the field (a server without fallback keys).
        std::optional<std::vector<std::string>> unused_fallback_key_types;
        clock_point sent_at{};
    };

    explicit key_planner(std::size_t one_time_key_target) : target_(one_time_key_target) {}

    // A /sync answer. Ignored when its request predates the last upload answer, but for its
    // word that the server supports fallback keys.
    void note_sync(const sync_report& report);
    // The counts a /keys/upload answer carried, received at `now`.
    void note_upload_answer(const std::map<std::string, std::int64_t>& counts, clock_point now);

    // The signed_curve25519 count the planner believes, or nullopt before any trusted report.
    std::optional<std::int64_t> server_count() const noexcept { return count_; }
    // Whether the server ever reported unused fallback key types (it supports fallback keys).
    bool fallback_supported() const noexcept { return fallback_supported_; }

    // How many one-time keys to generate: target - server count - keys already pending, never
    // negative; 0 while the server count is unknown.
    std::size_t one_time_keys_to_generate(std::int64_t pending) const;

    // Whether the server's last trusted report says the signed_curve25519 fallback key was used
    // (supported, and the type is missing from the unused list). Reports older than the
    // current key's publication are not trusted, so a replayed answer cannot rotate twice.
    bool fallback_reported_used() const;

    enum class fallback_step { none, create, upload, rotate };
    // What to do with the fallback key: create the first one, upload a pending one, rotate a
    // used or old one (`rotation` after its publication), or nothing.
    fallback_step fallback_next(const std::optional<storage::fallback_key>& current,
                                storage::timestamp_ms now,
                                std::chrono::milliseconds rotation) const;

    std::size_t target() const noexcept { return target_; }
    void set_target(std::size_t target) noexcept { target_ = target; }

  private:
    std::size_t target_;
    std::optional<std::int64_t> count_;
    bool fallback_supported_ = false;
    bool fallback_unused_ = true;  // the last trusted report listed signed_curve25519
    clock_point last_upload_answer_{};
};

}  // namespace devlist::sync
