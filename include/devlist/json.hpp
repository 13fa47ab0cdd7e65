// The engine's answers as JSON: exactly the documents of the socket API (README, "Socket
// API"), which renders them with these same functions. For bots that forward answers, and for
// the C API. Keys of objects are sorted; an event's data is spliced in verbatim.
//
// Thread-safety: pure functions of their argument.
#pragma once

#include <string>
#include <vector>

#include "devlist/export.h"
#include "devlist/types.hpp"

namespace devlist {

// GET /v1/status.
DEVLIST_API std::string to_json(const status& s);
// GET /v1/users/{user_id}/devices.
DEVLIST_API std::string to_json(const user_devices& u);
// GET /v1/devices/by-curve25519/{key}: the device with user_id, deleted and deleted_at.
DEVLIST_API std::string to_json(const device& d);
// GET /v1/tracked: {"users": [...]}.
DEVLIST_API std::string to_json(const std::vector<tracked_user>& users);
// GET /v1/events: {"events": [...], "next": cursor}.
DEVLIST_API std::string to_json(const event_batch& batch);
// POST /v1/keys/one-time/take.
DEVLIST_API std::string to_json(const one_time_key& key);
// GET /v1/keys/fallback: {"keys": [...]}.
DEVLIST_API std::string to_json(const std::vector<fallback_key>& keys);

}  // namespace devlist
