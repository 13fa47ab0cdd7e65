#pragma once

#include <string>

#include "devlist/error.hpp"
#include "sync/parse_context.hpp"
#include "sync/sync_response.hpp"

namespace devlist::sync {

// Parses a /sync response body. Fails (errc::json_syntax / json_type) only when the body as a
// whole is unusable — not JSON, or no next_batch; malformed entries inside are dropped and
// counted in sync_response::dropped, so one bad event cannot stall the sync loop.
result<sync_response> parse_sync_response(parse_context& ctx, const std::string& body);

}  // namespace devlist::sync
