// The Retry-After response header (RFC 9110, section 10.2.3).
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace devlist::sync {

// The delay a Retry-After value asks for: delay-seconds ("120") or an IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT", later than `now` or else zero). Anything else, including
// the obsolete RFC 850 and asctime date forms, is nullopt: the caller then uses its own backoff.
std::optional<std::chrono::milliseconds> parse_retry_after(
    std::string_view value, std::chrono::system_clock::time_point now);

}  // namespace devlist::sync
