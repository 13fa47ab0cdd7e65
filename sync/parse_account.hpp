// Parsers for the small account answers: /login, /account/whoami and filter creation.
#pragma once

#include <optional>
#include <string>

#include "devlist/error.hpp"
#include "sync/parse_context.hpp"

namespace devlist::sync {

struct account_answer {
    std::string user_id;
    std::string access_token;  // /login only
    std::string device_id;     // /login always, /whoami when the server tells
};

// /login: user_id, access_token and device_id are all required.
result<account_answer> parse_login_response(parse_context& ctx, const std::string& body);
// /account/whoami: user_id required, device_id optional.
result<account_answer> parse_whoami_response(parse_context& ctx, const std::string& body);
// POST /user/{userId}/filter: the filter_id.
result<std::string> parse_filter_response(parse_context& ctx, const std::string& body);

}  // namespace devlist::sync
