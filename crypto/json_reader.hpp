// The one JSON reader of devlist_crypto, shared by json::parse (which builds a json::value) and
// canonicalize (which writes canonical bytes as it reads, without building a tree).
//
// It accepts exactly what Matrix canonical JSON can represent and refuses the rest with an error
// that says what and at which byte offset:
//  - RFC 8259 syntax; nothing but whitespace after the value; no empty input (json_syntax);
//  - strings must be valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF),
//    with no raw control characters; \u escapes are decoded and must not leave a lone
//    surrogate (json_syntax);
//  - numbers must have an integral value within +-(2^53-1) whatever their spelling: -0 is 0,
//    1e10 is 10000000000, 1.50e1 is 15, but 1.5 and 2^53 are refused (json_number). The value
//    is decided with decimal digits, never through a double;
//  - depth and size beyond json::limits (json_limit).
// Duplicate keys are left to the handler, which sees every key.
//
// A handler receives, in document order:
//   void begin_object();  bool key(std::string_view k, bool needs_escape, std::size_t offset);
//   bool end_object();    void begin_array();  void end_array();
//   void separator();     (a ',' between members or elements)
//   void string(std::string_view s, bool needs_escape);  void integer(std::int64_t);
//   void boolean(bool);   void null();
//   error take_error();   (called once after key() or end_object() returned false)
// Strings and keys arrive decoded (raw UTF-8) and are valid only during the call;
// needs_escape is false when the string holds no '"', '\' or control character, so a canonical
// writer can copy it verbatim. offset is the byte offset of the key's opening quote.
//
// Thread-safety: read() keeps its state on the stack; concurrent calls are independent.
#pragma once

#include "crypto/json_limits.hpp"

#include <devlist/error.hpp>

#include <boost/container/small_vector.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

namespace devlist::json {

template <class H>
concept reader_handler = requires(H& h, std::string_view s, bool b, std::int64_t i,
                                  std::size_t offset) {
    h.begin_object();
    { h.key(s, b, offset) } -> std::same_as<bool>;
    { h.end_object() } -> std::same_as<bool>;
    h.begin_array();
    h.end_array();
    h.separator();
    h.string(s, b);
    h.integer(i);
    h.boolean(b);
    h.null();
    { h.take_error() } -> std::same_as<error>;
};

namespace detail {

// Whether any of the 8 bytes of w needs a closer look inside a string: '"', '\\', a control
// character or non-ASCII. Word-at-a-time scanning keeps long base64 keys and signatures cheap.
constexpr bool has_special_byte(std::uint64_t w) noexcept {
    constexpr std::uint64_t ones = 0x0101010101010101u;
    constexpr std::uint64_t highs = 0x8080808080808080u;
    const auto zero_bytes = [](std::uint64_t v) { return (v - ones) & ~v & highs; };
    const std::uint64_t below_space = (w - ones * 0x20) & ~w & highs;
    return (zero_bytes(w ^ (ones * '"')) | zero_bytes(w ^ (ones * '\\')) | below_space |
            (w & highs)) != 0;
}

constexpr bool is_plain_string_byte(char c) noexcept {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x80 && u != '"' && u != '\\';
}

// The token level of the reader, driven by read<Handler>(); its hot path is inline here, the
// rest is compiled once in json_reader.cpp.
// Every function that fails records the error and returns false.
class scanner {
  public:
    explicit scanner(std::string_view text) noexcept
        : begin_(text.data()), p_(text.data()), end_(text.data() + text.size()) {}

    void skip_whitespace() noexcept {
        while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t'))
            ++p_;
    }
    bool at_end() const noexcept { return p_ == end_; }
    char peek() const noexcept { return *p_; }
    void advance() noexcept { ++p_; }
    std::size_t offset() const noexcept { return static_cast<std::size_t>(p_ - begin_); }

    // At an opening quote: reads the string; s is decoded and valid until the next call.
    // The common case (ASCII without escapes) is inline; the rest is read_string_slow.
    bool read_string(std::string_view& s, bool& needs_escape) {
        const char* start = ++p_;
        while (end_ - p_ >= 8) {
            std::uint64_t w;
            std::memcpy(&w, p_, sizeof w);
            if (has_special_byte(w)) break;
            p_ += 8;
        }
        while (p_ != end_ && is_plain_string_byte(*p_))
            ++p_;
        if (p_ != end_ && *p_ == '"') {
            s = {start, static_cast<std::size_t>(p_ - start)};
            needs_escape = false;
            ++p_;
            return true;
        }
        return read_string_slow(start, s, needs_escape);
    }
    // At a character that starts no other value: reads a number or reports what is there.
    bool read_number(std::int64_t& v);
    // At 't', 'f' or 'n'.
    bool read_literal(std::string_view word);

    bool fail_unexpected(std::string_view expected);
    bool fail_too_deep(std::size_t max_depth);
    bool fail_trailing();
    bool fail(error e) {
        error_ = std::move(e);
        return false;
    }
    error take_error() { return std::move(error_); }

  private:
    bool read_string_slow(const char* start, std::string_view& s, bool& needs_escape);
    bool read_escape(bool& needs_escape);
    bool read_hex4(std::uint32_t& cp);
    bool exact_integer(const char* start, std::string_view int_digits, std::string_view frac_digits,
                       std::int64_t exponent, bool negative, std::int64_t& v);
    bool fail_at(errc code, const char* where, std::string what);

    const char* begin_;
    const char* p_;
    const char* end_;
    std::string scratch_;  // decoded strings that had escapes
    error error_;
};

// For handlers: the error for a key seen twice in one object.
error duplicate_key_error(std::string_view key, std::size_t offset);
error too_large_error(std::size_t size, std::size_t max_bytes);

// After '{' or ',' in an object: reads `"key" :` and hands the key over.
template <class Handler>
bool read_member_key(scanner& s, Handler& h) {
    s.skip_whitespace();
    if (s.at_end() || s.peek() != '"') return s.fail_unexpected("a string key");
    const std::size_t offset = s.offset();
    std::string_view k;
    bool needs_escape = false;
    if (!s.read_string(k, needs_escape)) return false;
    if (!h.key(k, needs_escape, offset)) return s.fail(h.take_error());
    s.skip_whitespace();
    if (s.at_end() || s.peek() != ':') return s.fail_unexpected("':'");
    s.advance();
    return true;
}

template <class Handler>
bool drive(scanner& s, std::size_t max_depth, Handler& h) {
    // The open containers, innermost last: true for an object, false for an array. An explicit
    // stack instead of recursion keeps deep input from exhausting the thread's stack.
    boost::container::small_vector<bool, 64> in_object;
    s.skip_whitespace();
    if (s.at_end()) return s.fail_unexpected("a JSON value");
    for (;;) {
        bool opened = false;  // a non-empty container was entered: a value follows directly
        switch (s.peek()) {
            case '{':
            case '[': {
                const bool is_object = s.peek() == '{';
                if (in_object.size() >= max_depth) return s.fail_too_deep(max_depth);
                s.advance();
                if (is_object) {
                    h.begin_object();
                } else {
                    h.begin_array();
                }
                s.skip_whitespace();
                if (!s.at_end() && s.peek() == (is_object ? '}' : ']')) {
                    s.advance();
                    if (!is_object) {
                        h.end_array();
                    } else if (!h.end_object()) {
                        return s.fail(h.take_error());
                    }
                    break;
                }
                in_object.push_back(is_object);
                if (is_object && !read_member_key(s, h)) return false;
                opened = true;
                break;
            }
            case '"': {
                std::string_view v;
                bool needs_escape = false;
                if (!s.read_string(v, needs_escape)) return false;
                h.string(v, needs_escape);
                break;
            }
            case 't':
                if (!s.read_literal("true")) return false;
                h.boolean(true);
                break;
            case 'f':
                if (!s.read_literal("false")) return false;
                h.boolean(false);
                break;
            case 'n':
                if (!s.read_literal("null")) return false;
                h.null();
                break;
            default: {
                std::int64_t v = 0;
                if (!s.read_number(v)) return false;
                h.integer(v);
            }
        }
        // After a complete value: close what it completes and move to the next value.
        while (!opened) {
            s.skip_whitespace();
            if (in_object.empty()) return s.at_end() || s.fail_trailing();
            const bool is_object = in_object.back();
            if (s.at_end()) return s.fail_unexpected(is_object ? "',' or '}'" : "',' or ']'");
            const char c = s.peek();
            if (c == ',') {
                s.advance();
                h.separator();
                if (is_object && !read_member_key(s, h)) return false;
                break;
            }
            if (c != (is_object ? '}' : ']')) {
                return s.fail_unexpected(is_object ? "',' or '}'" : "',' or ']'");
            }
            s.advance();
            in_object.pop_back();
            if (!is_object) {
                h.end_array();
            } else if (!h.end_object()) {
                return s.fail(h.take_error());
            }
        }
        s.skip_whitespace();
        if (s.at_end()) return s.fail_unexpected("a value");
    }
}

}  // namespace detail

// Reads text, calling the handler for each event. Stops at the first error.
template <reader_handler Handler>
result<void> read(std::string_view text, const limits& lim, Handler& handler) {
    if (text.size() > lim.max_bytes) return detail::too_large_error(text.size(), lim.max_bytes);
    detail::scanner s(text);
    if (!detail::drive(s, lim.max_depth, handler)) return s.take_error();
    return {};
}

}  // namespace devlist::json
