#include "sync/http_retry_after.hpp"

#include <array>
#include <charconv>
#include <cstdint>

namespace devlist::sync {
namespace {

using std::chrono::milliseconds;

// Larger delays are not plausible and would overflow the arithmetic below.
constexpr std::uint64_t max_delay_seconds = std::uint64_t{1} << 40;

// A non-empty run of ASCII digits that fits in T; no sign, no spaces.
template <class T>
std::optional<T> parse_digits(std::string_view digits) {
    if (digits.empty()) return std::nullopt;
    for (const char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
    }
    T value{};
    if (std::from_chars(digits.data(), digits.data() + digits.size(), value).ec != std::errc{}) {
        return std::nullopt;  // too large for T
    }
    return value;
}

// IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" (fixed width, 29 characters).
std::optional<std::chrono::system_clock::time_point> parse_imf_fixdate(std::string_view value) {
    static constexpr std::array<std::string_view, 7> day_names{"Mon", "Tue", "Wed", "Thu",
                                                               "Fri", "Sat", "Sun"};
    static constexpr std::array<std::string_view, 12> month_names{
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    if (value.size() != 29 || value.substr(3, 2) != ", " || value[7] != ' ' || value[11] != ' ' ||
        value[16] != ' ' || value[19] != ':' || value[22] != ':' || value.substr(25) != " GMT") {
        return std::nullopt;
    }
    bool known_day = false;
    for (const auto name : day_names)
        known_day = known_day || value.substr(0, 3) == name;
    unsigned month = 0;
    for (unsigned i = 0; i < month_names.size(); ++i) {
        if (value.substr(8, 3) == month_names[i]) month = i + 1;
    }
    const auto day = parse_digits<unsigned>(value.substr(5, 2));
    const auto year = parse_digits<unsigned>(value.substr(12, 4));
    const auto hour = parse_digits<unsigned>(value.substr(17, 2));
    const auto minute = parse_digits<unsigned>(value.substr(20, 2));
    const auto second = parse_digits<unsigned>(value.substr(23, 2));
    if (!known_day || month == 0 || !day || !year || !hour || !minute || !second || *hour > 23 ||
        *minute > 59 || *second > 60) {
        return std::nullopt;
    }
    // system_clock counts nanoseconds in 64 bits: about 1678 to 2261. A date outside a sane
    // range would overflow it (a fuzzer found "Wed, 15 Nov 4046 00:00:00 GMT").
    if (*year < 1970 || *year > 2200) return std::nullopt;
    const std::chrono::year_month_day date{std::chrono::year{static_cast<int>(*year)},
                                           std::chrono::month{month}, std::chrono::day{*day}};
    if (!date.ok()) return std::nullopt;
    return std::chrono::sys_days{date} + std::chrono::hours{*hour} + std::chrono::minutes{*minute} +
           std::chrono::seconds{*second};
}

}  // namespace

std::optional<milliseconds> parse_retry_after(std::string_view value,
                                              std::chrono::system_clock::time_point now) {
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
    }
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t'))
        value.remove_suffix(1);

    if (const auto seconds = parse_digits<std::uint64_t>(value)) {
        if (*seconds > max_delay_seconds) return std::nullopt;
        return std::chrono::duration_cast<milliseconds>(
            std::chrono::seconds{static_cast<std::int64_t>(*seconds)});
    }
    const auto date = parse_imf_fixdate(value);
    if (!date) return std::nullopt;
    if (*date <= now) return milliseconds{0};
    // Round up: retrying a moment early would only earn another 429.
    return std::chrono::ceil<milliseconds>(*date - now);
}

}  // namespace devlist::sync
