#include "crypto/json_reader.hpp"

#include "crypto/canonical_writer.hpp"
#include "crypto/describe_byte.hpp"

#include <array>
#include <cstring>

namespace devlist::json::detail {
namespace {

// How a byte inside a string is handled.
enum byte_class : std::uint8_t { plain, quote, backslash, control, non_ascii };

constexpr std::array<std::uint8_t, 256> make_string_classes() {
    std::array<std::uint8_t, 256> t{};
    for (std::size_t c = 0; c < 256; ++c) {
        t[c] = c < 0x20 ? control : c >= 0x80 ? non_ascii : plain;
    }
    t['"'] = quote;
    t['\\'] = backslash;
    return t;
}
constexpr std::array<std::uint8_t, 256> string_classes = make_string_classes();

constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

constexpr bool is_continuation(unsigned char c) {
    return (c & 0xc0) == 0x80;
}

// Length of the well-formed UTF-8 sequence at p (RFC 3629 table), or 0 if it is ill-formed:
// overlong, a surrogate, beyond U+10FFFF or cut short.
std::size_t utf8_sequence_length(const char* p, const char* end) {
    const auto at = [p](std::size_t i) { return static_cast<unsigned char>(p[i]); };
    const auto avail = static_cast<std::size_t>(end - p);
    const unsigned char c0 = at(0);
    if (c0 < 0xc2 || c0 > 0xf4) return 0;
    if (c0 < 0xe0) return avail >= 2 && is_continuation(at(1)) ? 2 : 0;
    if (c0 < 0xf0) {
        const unsigned char lo = c0 == 0xe0 ? 0xa0 : 0x80;
        const unsigned char hi = c0 == 0xed ? 0x9f : 0xbf;
        return avail >= 3 && at(1) >= lo && at(1) <= hi && is_continuation(at(2)) ? 3 : 0;
    }
    const unsigned char lo = c0 == 0xf0 ? 0x90 : 0x80;
    const unsigned char hi = c0 == 0xf4 ? 0x8f : 0xbf;
    return avail >= 4 && at(1) >= lo && at(1) <= hi && is_continuation(at(2)) &&
                   is_continuation(at(3))
               ? 4
               : 0;
}

void append_utf8(std::uint32_t cp, std::string& out) {
    if (cp < 0x80) {
        out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
        out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
        out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
        out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
}

// A number's text for an error detail, cut short if it is long.
std::string quote_number(const char* start, const char* end) {
    constexpr std::size_t max_shown = 40;
    const auto n = static_cast<std::size_t>(end - start);
    return n <= max_shown ? std::string(start, n) : std::string(start, max_shown) + "...";
}

constexpr std::uint64_t max_safe = (std::uint64_t{1} << 53) - 1;

}  // namespace

bool scanner::fail_at(errc code, const char* where, std::string what) {
    return fail({code, std::move(what) + " at byte " + std::to_string(where - begin_)});
}

bool scanner::fail_unexpected(std::string_view expected) {
    if (at_end()) {
        return fail_at(errc::json_syntax, p_,
                       p_ == begin_ ? "empty input: expected " + std::string(expected)
                                    : "unexpected end of input: expected " + std::string(expected));
    }
    return fail_at(
        errc::json_syntax, p_,
        "unexpected " + crypto::describe_byte(*p_) + ": expected " + std::string(expected));
}

bool scanner::fail_too_deep(std::size_t max_depth) {
    return fail_at(errc::json_limit, p_,
                   "nesting deeper than the limit of " + std::to_string(max_depth));
}

bool scanner::fail_trailing() {
    return fail_at(errc::json_syntax, p_,
                   "unexpected " + crypto::describe_byte(*p_) + " after the end of the JSON value");
}

bool scanner::read_literal(std::string_view word) {
    if (static_cast<std::size_t>(end_ - p_) >= word.size() &&
        std::memcmp(p_, word.data(), word.size()) == 0) {
        p_ += word.size();
        return true;
    }
    return fail_at(errc::json_syntax, p_, "invalid literal: expected '" + std::string(word) + "'");
}

// Strings with non-ASCII text or escapes. Unescaped runs are copied only once an escape shows
// that the decoded string differs from the input.
bool scanner::read_string_slow(const char* start, std::string_view& s, bool& needs_escape) {
    needs_escape = false;
    bool decoded = false;
    const char* run = start;  // first byte not yet copied to scratch_ (when decoded)
    for (;;) {
        if (p_ == end_) return fail_at(errc::json_syntax, start - 1, "unterminated string");
        switch (string_classes[static_cast<unsigned char>(*p_)]) {
            case plain:
                ++p_;
                break;
            case quote:
                if (decoded) {
                    scratch_.append(run, p_);
                    s = scratch_;
                } else {
                    s = {start, static_cast<std::size_t>(p_ - start)};
                }
                ++p_;
                return true;
            case control:
                return fail_at(errc::json_syntax, p_,
                               "unescaped control character " +
                                   crypto::hex_byte(static_cast<unsigned char>(*p_)) +
                                   " in a string");
            case non_ascii: {
                const std::size_t n = utf8_sequence_length(p_, end_);
                if (n == 0) {
                    return fail_at(
                        errc::json_syntax, p_,
                        "invalid UTF-8 (" + crypto::describe_byte(*p_) + ") in a string");
                }
                p_ += n;
                break;
            }
            case backslash:
                if (!decoded) {
                    scratch_.clear();
                    decoded = true;
                }
                scratch_.append(run, p_);
                if (!read_escape(needs_escape)) return false;
                run = p_;
                break;
        }
    }
}

bool scanner::read_hex4(std::uint32_t& cp) {
    if (end_ - p_ < 4) return fail_at(errc::json_syntax, p_, "truncated \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
        const char c = *p_;
        std::uint32_t digit = 0;
        if (c >= '0' && c <= '9') {
            digit = static_cast<std::uint32_t>(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            digit = static_cast<std::uint32_t>(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            digit = static_cast<std::uint32_t>(c - 'A' + 10);
        } else {
            return fail_at(
                errc::json_syntax, p_,
                "invalid \\u escape: " + crypto::describe_byte(c) + " is not a hex digit");
        }
        cp = cp << 4 | digit;
    }
    return true;
}

// At a backslash: appends the decoded character to scratch_.
bool scanner::read_escape(bool& needs_escape) {
    const char* at = p_;
    if (end_ - p_ < 2) return fail_at(errc::json_syntax, at, "unterminated escape");
    const char c = p_[1];
    p_ += 2;
    char simple = 0;
    switch (c) {
        case '"':
            simple = '"';
            break;
        case '\\':
            simple = '\\';
            break;
        case '/':
            simple = '/';
            break;
        case 'b':
            simple = '\b';
            break;
        case 'f':
            simple = '\f';
            break;
        case 'n':
            simple = '\n';
            break;
        case 'r':
            simple = '\r';
            break;
        case 't':
            simple = '\t';
            break;
        case 'u':
            break;
        default:
            return fail_at(errc::json_syntax, at, "invalid escape \\" + std::string(1, c));
    }
    if (simple != 0) {
        needs_escape = needs_escape || simple != '/';
        scratch_.push_back(simple);
        return true;
    }
    std::uint32_t cp = 0;
    if (!read_hex4(cp)) return false;
    if (cp >= 0xdc00 && cp <= 0xdfff) {
        return fail_at(errc::json_syntax, at, "lone low surrogate in a \\u escape");
    }
    if (cp >= 0xd800 && cp <= 0xdbff) {
        std::uint32_t low = 0;
        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') {
            return fail_at(errc::json_syntax, at, "lone high surrogate in a \\u escape");
        }
        p_ += 2;
        if (!read_hex4(low)) return false;
        if (low < 0xdc00 || low > 0xdfff) {
            return fail_at(errc::json_syntax, at,
                           "high surrogate not followed by a low surrogate in a \\u escape");
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
    }
    needs_escape = needs_escape || cp < 0x20 || cp == '"' || cp == '\\';
    append_utf8(cp, scratch_);
    return true;
}

bool scanner::read_number(std::int64_t& v) {
    const char* start = p_;
    const bool negative = *p_ == '-';
    if (negative) ++p_;
    if (p_ == end_ || !is_digit(*p_)) {
        if (!negative) return fail_unexpected("a value");
        return fail_at(errc::json_syntax, start, "'-' not followed by a digit");
    }
    const char* int_begin = p_;
    if (*p_ == '0') {
        ++p_;
        if (p_ != end_ && is_digit(*p_)) {
            return fail_at(errc::json_syntax, start, "number with a leading zero");
        }
    } else {
        while (p_ != end_ && is_digit(*p_))
            ++p_;
    }
    const std::string_view int_digits(int_begin, static_cast<std::size_t>(p_ - int_begin));
    const bool plain_integer = p_ == end_ || (*p_ != '.' && *p_ != 'e' && *p_ != 'E');
    if (plain_integer && int_digits.size() <= 16) {
        std::uint64_t u = 0;
        for (const char c : int_digits)
            u = u * 10 + static_cast<std::uint64_t>(c - '0');
        if (u <= max_safe) {
            v = negative ? -static_cast<std::int64_t>(u) : static_cast<std::int64_t>(u);
            return true;
        }
    }
    std::string_view frac_digits;
    if (p_ != end_ && *p_ == '.') {
        const char* frac_begin = ++p_;
        while (p_ != end_ && is_digit(*p_))
            ++p_;
        if (p_ == frac_begin) {
            return fail_at(errc::json_syntax, start, "number with no digit after '.'");
        }
        frac_digits = {frac_begin, static_cast<std::size_t>(p_ - frac_begin)};
    }
    std::int64_t exponent = 0;
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
        ++p_;
        const bool exponent_negative = p_ != end_ && *p_ == '-';
        if (p_ != end_ && (*p_ == '-' || *p_ == '+')) ++p_;
        if (p_ == end_ || !is_digit(*p_)) {
            return fail_at(errc::json_syntax, start, "number with no digit in its exponent");
        }
        // Saturating is exact enough: past 10^15 no input of any possible size can bring the
        // value back into range or make it integral again.
        constexpr std::int64_t saturation = 1'000'000'000'000'000;
        for (; p_ != end_ && is_digit(*p_); ++p_) {
            if (exponent < saturation) exponent = exponent * 10 + (*p_ - '0');
        }
        if (exponent_negative) exponent = -exponent;
    }
    return exact_integer(start, int_digits, frac_digits, exponent, negative, v);
}

// The value of digits (int_digits then frac_digits) * 10^(exponent - frac_digits.size()), if it
// is an integer within +-(2^53-1).
bool scanner::exact_integer(const char* start, std::string_view int_digits,
                            std::string_view frac_digits, std::int64_t exponent, bool negative,
                            std::int64_t& v) {
    const std::size_t total = int_digits.size() + frac_digits.size();
    const auto digit = [&](std::size_t i) {
        return i < int_digits.size() ? int_digits[i] : frac_digits[i - int_digits.size()];
    };
    std::size_t first = 0;
    while (first < total && digit(first) == '0')
        ++first;
    if (first == total) {  // every digit is zero: -0, 0.0, 0e7 are all plain 0
        v = 0;
        return true;
    }
    std::size_t last = total - 1;
    while (digit(last) == '0')
        --last;
    // value = digits[first..last] * 10^scale
    const std::int64_t scale = exponent - static_cast<std::int64_t>(frac_digits.size()) +
                               static_cast<std::int64_t>(total - 1 - last);
    const std::string shown = quote_number(start, p_);
    if (scale < 0) {
        return fail_at(errc::json_number, start,
                       "number " + shown + " is not an integer (canonical JSON has no fractions)");
    }
    const auto significant = static_cast<std::int64_t>(last - first + 1);
    std::uint64_t u = 0;
    if (significant + scale <= 16) {
        for (std::size_t i = first; i <= last; ++i) {
            u = u * 10 + static_cast<std::uint64_t>(digit(i) - '0');
        }
        for (std::int64_t i = 0; i < scale; ++i)
            u *= 10;
    }
    if (u == 0 || u > max_safe) {
        return fail_at(errc::json_number, start,
                       "number " + shown + " is outside the range +-(2^53-1) of canonical JSON");
    }
    v = negative ? -static_cast<std::int64_t>(u) : static_cast<std::int64_t>(u);
    return true;
}

error duplicate_key_error(std::string_view key, std::size_t offset) {
    std::string detail = "duplicate key ";
    append_canonical_string(key, detail);
    detail += " at byte " + std::to_string(offset);
    return {errc::json_duplicate_key, std::move(detail)};
}

error too_large_error(std::size_t size, std::size_t max_bytes) {
    return {errc::json_limit, "JSON text of " + std::to_string(size) +
                                  " bytes is larger than the limit of " +
                                  std::to_string(max_bytes) + " bytes"};
}

}  // namespace devlist::json::detail
