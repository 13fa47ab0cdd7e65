// An owned JSON value, for building request bodies and for signing.
//
// It holds exactly what canonical JSON can hold: null, booleans, integers within +-(2^53-1),
// UTF-8 strings, arrays and objects. Objects are std::map ordered by the UTF-8 bytes of their
// keys, which is the code-point order canonical JSON sorts by, so writing one out needs no sort.
//
// Received JSON that must be verified is NOT rebuilt from a value: verify over its raw bytes with
// verify_json / verify_json_signature (signed_json.hpp), which canonicalise what was received.
//
// Thread-safety: a value is like a standard container; concurrent const access is safe.
#pragma once

#include "crypto/json_limits.hpp"

#include <devlist/error.hpp>

#include <cassert>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace devlist::json {

class value;
using array = std::vector<value>;
using object = std::map<std::string, value, std::less<>>;

// The largest magnitude canonical JSON allows: 2^53 - 1.
inline constexpr std::int64_t max_safe_integer = (std::int64_t{1} << 53) - 1;

namespace detail {
// Integer types a value takes as a number; bool and the character types are left out so that
// value('a') or value(true) cannot quietly become numbers.
template <class T>
concept integer_like =
    std::integral<T> && !std::same_as<T, bool> && !std::same_as<T, char> &&
    !std::same_as<T, signed char> && !std::same_as<T, unsigned char> && !std::same_as<T, wchar_t> &&
    !std::same_as<T, char8_t> && !std::same_as<T, char16_t> && !std::same_as<T, char32_t>;
}  // namespace detail

class value {
  public:
    value() noexcept = default;
    value(std::nullptr_t) noexcept {}
    // A template, so that a pointer (other than const char*) does not silently become a bool.
    template <std::same_as<bool> B>
    value(B b) noexcept : v_(static_cast<bool>(b)) {}
    // Integers outside +-(2^53-1) cannot be written as canonical JSON; passing one is a bug.
    template <detail::integer_like I>
    value(I i) noexcept : v_(to_int64(i)) {}
    value(std::string s) noexcept : v_(std::move(s)) {}
    value(std::string_view s) : v_(std::string(s)) {}
    value(const char* s) : v_(std::string(s)) {}
    value(array a) noexcept : v_(std::move(a)) {}
    value(object o) noexcept : v_(std::move(o)) {}

    bool is_null() const noexcept { return std::holds_alternative<std::nullptr_t>(v_); }
    bool is_bool() const noexcept { return std::holds_alternative<bool>(v_); }
    bool is_integer() const noexcept { return std::holds_alternative<std::int64_t>(v_); }
    bool is_string() const noexcept { return std::holds_alternative<std::string>(v_); }
    bool is_array() const noexcept { return std::holds_alternative<array>(v_); }
    bool is_object() const noexcept { return std::holds_alternative<object>(v_); }

    // Calls f with the held std::nullptr_t, bool, std::int64_t, std::string, array or object.
    template <class F>
    decltype(auto) visit(F&& f) const {
        return std::visit(std::forward<F>(f), v_);
    }

    // Accessors of the held type; asking for another type throws std::bad_variant_access.
    bool as_bool() const { return std::get<bool>(v_); }
    std::int64_t as_integer() const { return std::get<std::int64_t>(v_); }
    const std::string& as_string() const { return std::get<std::string>(v_); }
    std::string& as_string() { return std::get<std::string>(v_); }
    const array& as_array() const { return std::get<array>(v_); }
    array& as_array() { return std::get<array>(v_); }
    const object& as_object() const { return std::get<object>(v_); }
    object& as_object() { return std::get<object>(v_); }

    // The member named key, created as null if absent. A null value first becomes an empty
    // object; any other non-object throws std::bad_variant_access.
    value& operator[](std::string_view key);
    // The member named key, or nullptr if absent or if this is not an object.
    const value* find(std::string_view key) const noexcept;
    value* find(std::string_view key) noexcept;
    // Removes the member named key; false if there was none (or this is not an object).
    bool erase(std::string_view key);

    friend bool operator==(const value& a, const value& b);

  private:
    template <class I>
    static std::int64_t to_int64(I i) noexcept;

    std::variant<std::nullptr_t, bool, std::int64_t, std::string, array, object> v_;
};

template <class I>
std::int64_t value::to_int64(I i) noexcept {
    assert(std::cmp_greater_equal(i, -max_safe_integer) &&
           std::cmp_less_equal(i, max_safe_integer) && "JSON integers must lie within +-(2^53-1)");
    return static_cast<std::int64_t>(i);
}

// Parses text: see json_reader.hpp for what is accepted. Duplicate keys are
// errc::json_duplicate_key.
result<value> parse(std::string_view text, const limits& lim = {});

// The canonical JSON of v (Matrix spec appendix "Canonical JSON"). Strings must be valid UTF-8.
std::string to_canonical(const value& v);
void append_canonical(const value& v, std::string& out);

}  // namespace devlist::json
