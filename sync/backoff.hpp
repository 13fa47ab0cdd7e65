// Exponential backoff with jitter, as a pure function of the failure count and a random draw,
// so that tests choose both.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace devlist::sync {

class backoff_policy {
  public:
    constexpr backoff_policy(std::chrono::milliseconds base, std::chrono::milliseconds max)
        : base_(base), max_(max) {}

    // The wait after the `failures`-th consecutive failure (1 for the first): base doubling up
    // to max, then scaled by a factor in [0.8, 1.2) taken from `random` so that many clients
    // (or many servers' backoffs) do not retry in step.
    std::chrono::milliseconds delay(std::int64_t failures, std::uint64_t random) const {
        std::int64_t ms = base_.count();
        for (std::int64_t i = 1; i < failures && ms < max_.count(); ++i)
            ms *= 2;
        ms = std::min(ms, max_.count());
        // 2^-53 resolution is plenty; keeps the arithmetic in doubles exact.
        double unit =
            static_cast<double>(random >> 11) / static_cast<double>(std::uint64_t{1} << 53);
        return std::chrono::milliseconds(
            static_cast<std::int64_t>(static_cast<double>(ms) * (0.8 + 0.4 * unit)));
    }

    std::chrono::milliseconds base() const { return base_; }
    std::chrono::milliseconds max() const { return max_; }

  private:
    std::chrono::milliseconds base_;
    std::chrono::milliseconds max_;
};

}  // namespace devlist::sync
