// The standard Matrix error body: {"errcode": "M_...", "error": "...", "retry_after_ms": n}.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace devlist::sync {

struct matrix_error {
    std::string errcode;  // "M_LIMIT_EXCEEDED", "M_UNKNOWN_TOKEN", ...
    std::string error;    // for people; may be empty, cut to a bounded length
    std::optional<std::int64_t> retry_after_ms;  // present and >= 0 when the server sent one
};

// The error in an HTTP error response's body, or nullopt if the body is not a JSON object with
// a string "errcode" (not JSON, truncated, too large, errcode missing or not a string). Other
// members are ignored; a retry_after_ms that is not a non-negative integer is left out.
std::optional<matrix_error> parse_matrix_error(std::string_view body);

}  // namespace devlist::sync
