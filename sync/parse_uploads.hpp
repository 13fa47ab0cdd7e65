// Parsers for the answers to devlistd's own key uploads: /keys/upload, the User-Interactive
// Auth challenge of /keys/device_signing/upload, and /keys/signatures/upload. The bodies are
// small, so they are read with the project's strict JSON reader (duplicates, bad UTF-8 and
// numbers beyond 2^53 refused) rather than simdjson.
#pragma once

#include "devlist/error.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::sync {

// /keys/upload: one_time_key_counts (required; a count must be a non-negative integer).
result<std::map<std::string, std::int64_t>> parse_keys_upload_response(std::string_view body);

// A 401 answer that asks for User-Interactive Auth.
struct uia_challenge {
    std::string session;                          // empty if the server gave none
    std::vector<std::vector<std::string>> flows;  // each flow's stages
    std::vector<std::string> completed;
    std::optional<std::string> errcode;  // set when a stage was tried and failed
    std::string error;
};
// nullopt unless body is an object with a "flows" array of objects with "stages" string arrays.
std::optional<uia_challenge> parse_uia_challenge(std::string_view body);

// /keys/signatures/upload: the "failures" entries as "user_id/key_id: reason" lines (empty:
// every signature was accepted).
result<std::vector<std::string>> parse_signatures_upload_response(std::string_view body);

// The key ID a Synapse-style one-time key conflict names ("One time key signed_curve25519:ID
// already exists. ..."), without the algorithm; nullopt if the message is not one.
std::optional<std::string> one_time_key_conflict_id(std::string_view message);

}  // namespace devlist::sync
