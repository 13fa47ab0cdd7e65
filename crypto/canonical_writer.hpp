// The output half of Matrix canonical JSON, shared by json::to_canonical (request bodies,
// signing) and canonicalize (verification): how strings and integers are written.
// Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace devlist::json {

// The size of s, which must be valid UTF-8, written as a quoted canonical JSON string: raw
// UTF-8, with only '"', '\' and U+0000..U+001F escaped (\b \t \n \f \r \" \\, else \u00xx in
// lowercase hex).
std::size_t canonical_string_size(std::string_view s) noexcept;
// Writes exactly canonical_string_size(s) bytes at out; returns the end.
char* write_canonical_string(std::string_view s, char* out) noexcept;
void append_canonical_string(std::string_view s, std::string& out);

// An integer in plain decimal: at most this many bytes.
inline constexpr std::size_t max_canonical_integer_size = 20;
char* write_canonical_integer(std::int64_t v, char* out) noexcept;
void append_canonical_integer(std::int64_t v, std::string& out);

}  // namespace devlist::json
