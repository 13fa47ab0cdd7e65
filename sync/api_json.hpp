// The pieces of include/devlist/json.hpp as JSON values, for the socket API's answers that add
// fields of their own to them (the tracking state after track/untrack/refresh).
#pragma once

#include "crypto/json_value.hpp"
#include "devlist/json.hpp"
#include "devlist/types.hpp"

#include <string_view>

namespace devlist::sync {

// The names the socket API, the metrics and the logs use.
std::string_view name_of(devlist::engine_phase p);
std::string_view name_of(devlist::cross_signing_state s);
std::string_view name_of(devlist::key_usage u);  // the keys of "cross_signing_keys"

// ["own", "encrypted_room", "explicit"], those that apply.
json::value reasons_value(const devlist::tracking_reasons& r);

}  // namespace devlist::sync
