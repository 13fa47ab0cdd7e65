#pragma once

#include <string>

#include "devlist/error.hpp"
#include "sync/keys_query_response.hpp"
#include "sync/parse_context.hpp"

namespace devlist::sync {

// Parses a /keys/query answer. Fails only when the body as a whole is unusable; a malformed
// device or key is kept with `problem` set (so that it can be recorded as rejected), and an
// entry that cannot even be attributed (an invalid user ID as map key) is dropped and counted.
result<keys_query_response> parse_keys_query_response(parse_context& ctx, const std::string& body);

// Parses a /keys/changes answer; invalid user IDs are skipped.
result<keys_changes_response> parse_keys_changes_response(parse_context& ctx,
                                                          const std::string& body);

}  // namespace devlist::sync
