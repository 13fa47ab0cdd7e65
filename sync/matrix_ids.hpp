// Validation of the identifiers that arrive from the network before they reach the store.
//
// User IDs follow the spec's grammar, leniently for historical localparts (any printable ASCII
// but ':'), strictly for the server name (a host name, IPv4 or bracketed IPv6, optional port).
#pragma once

#include <optional>
#include <string_view>

namespace devlist::sync {

// Longest user ID the spec allows, in bytes.
inline constexpr std::size_t max_user_id_bytes = 255;
// Device IDs are opaque; we cap them so hostile data cannot bloat the store.
inline constexpr std::size_t max_device_id_bytes = 255;

bool is_valid_server_name(std::string_view server_name);
bool is_valid_user_id(std::string_view user_id);
// Non-empty, at most max_device_id_bytes, printable ASCII (what every server hands out).
bool is_valid_device_id(std::string_view device_id);
// A room ID: '!' then printable ASCII. Room IDs are opaque to device tracking, and newer room
// versions drop the ':server' part, so nothing more is required.
bool is_valid_room_id(std::string_view room_id);

// The server name of a valid user ID ("@a:example.org:8448" -> "example.org:8448").
std::optional<std::string_view> server_name_of(std::string_view user_id);

}  // namespace devlist::sync
