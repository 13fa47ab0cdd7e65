// An answer of the socket API as HTTP/1.x bytes: the status line, the few fields the server
// sends and the body, exactly as Beast's serializer writes the same response. Appending to one
// string lets the server answer several pipelined requests with one write.
//
// Pure function; thread-safe.
#pragma once

#include <string>

#include "daemon/socket_api.hpp"

namespace devlist::daemon {

// Appends the answer to a request of HTTP version `version` (10 for HTTP/1.0, 11 for HTTP/1.1,
// as Beast numbers them). keep_alive false adds "Connection: close" for HTTP/1.1; true adds
// "Connection: keep-alive" for HTTP/1.0.
void append_http_answer(std::string& out, const api_response& response, unsigned version,
                        bool keep_alive);

}  // namespace devlist::daemon
