#pragma once

#include <span>
#include <string>

#include "devlist/error.hpp"
#include "sync/keys_query_response.hpp"
#include "sync/parse_context.hpp"

namespace devlist::sync {

// The first step of reading a /keys/query answer: checks the body as a whole, locates each
// user's part and digests it (see keys_query_response.hpp). Fails when the body as a whole is
// unusable (not JSON, a map of the wrong type, a user or server named twice…); an entry that
// cannot even be attributed (an invalid user ID as map key) is dropped and counted.
result<keys_query_answer> index_keys_query_answer(parse_context& ctx, std::string body);

// The second step: parses the parts of `users` (sections of `answer`) into owned values. Fails
// when one of them is not what a /keys/query answer may contain (a device named twice, broken
// JSON): the whole answer is then refused, as if the first step had found it. A malformed device
// or key is kept with `problem` set (so that it can be recorded as rejected); a device with an
// invalid device ID is dropped and counted.
result<keys_query_response> parse_user_parts(parse_context& ctx, const keys_query_answer& answer,
                                             std::span<const user_section* const> users);

// Both steps for every user of the answer.
result<keys_query_response> parse_keys_query_response(parse_context& ctx, const std::string& body);

// Parses a /keys/changes answer; invalid user IDs are skipped.
result<keys_changes_response> parse_keys_changes_response(parse_context& ctx,
                                                          const std::string& body);

}  // namespace devlist::sync
