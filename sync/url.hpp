// The homeserver's base URL, and the percent-encoding of what goes into request targets.
#pragma once

#include "devlist/error.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace devlist::sync {

// An http(s) base URL split into what a connection needs. Only what a homeserver base URL may
// hold is accepted: no user info, no query, no fragment.
struct url {
    std::string scheme;      // "http" or "https", lower case
    std::string host;        // a DNS name (lower case) or an IP literal; IPv6 without brackets
    std::uint16_t port = 0;  // the explicit port, else 80 or 443
    std::string base_path;   // "" or "/prefix" (never a trailing '/'), still percent-encoded

    friend bool operator==(const url&, const url&) = default;
};

// Parses "https://matrix.example.org", "http://127.0.0.1:8008/prefix", "https://[::1]:8448".
// Errors (errc::invalid_argument) name the part that is wrong.
result<url> parse_url(std::string_view text);

// "host:port" with an IPv6 host in brackets: "[::1]:8448", "matrix.org:443".
std::string host_and_port(const url& u);

// The value of a Host header for `u`: like host_and_port() without a default port.
std::string host_header(const url& u);

// Percent-encodes everything but RFC 3986 unreserved characters (ALPHA DIGIT - . _ ~), with
// upper-case hex digits: "@alice:example.org" -> "%40alice%3Aexample.org". Safe for one path
// segment; '/' is encoded too.
std::string percent_encode_path_segment(std::string_view segment);

// Percent-encodes a query parameter value by the same rule, so '&', '=', '+' and '#' in a
// value (a filter JSON, a since token) can never split or end the query.
std::string percent_encode_query_value(std::string_view value);

}  // namespace devlist::sync
