// The pieces of include/devlist/json.hpp as JSON values, for the socket API's answers that add
// fields of their own to them (the tracking state after track/untrack/refresh).
#pragma once

#include "crypto/json_value.hpp"
#include "devlist/json.hpp"
#include "devlist/types.hpp"

namespace devlist::sync {

// ["own", "encrypted_room", "explicit"], those that apply.
json::value reasons_value(const devlist::tracking_reasons& r);

}  // namespace devlist::sync
