// The target of a socket API request ("/v1/users/%40a%3Ab/devices?fresh=true"), split into
// percent-decoded path segments and query parameters. Each segment is decoded on its own, so
// "%2F" inside a segment (a base64 key) never splits the path.
//
// Pure functions; thread-safe. Reads bytes from any local peer, so it is fuzzed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "devlist/error.hpp"

namespace devlist::daemon {

struct request_target {
    // "/v1/status" -> {"v1", "status"}; "/" -> {""}; a trailing '/' gives an empty last segment.
    std::vector<std::string> segments;
    // In order of appearance; "a" without '=' has an empty value.
    std::vector<std::pair<std::string, std::string>> query;

    // The value of a query parameter; nullptr if absent.
    const std::string* param(std::string_view name) const;
};

// errc::invalid_argument, saying why, for a target that is not origin-form ("/..."), a bad
// percent escape, or a query parameter given twice (which one would win is not obvious).
// '+' is a plus sign, not a space: values here are cursors, names and Matrix IDs, never form
// text.
result<request_target> parse_request_target(std::string_view target);

// "%40alice%3Aexample.org" -> "@alice:example.org"; nullopt for '%' without two hex digits.
std::optional<std::string> percent_decode(std::string_view text);

}  // namespace devlist::daemon
