// A std::size_t limit as the signed 64-bit value SQLite's LIMIT takes. Internal to storage/.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>

namespace devlist::storage {

inline std::int64_t sql_limit(std::size_t limit) noexcept {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(limit < max ? limit : max);
}

}  // namespace devlist::storage
