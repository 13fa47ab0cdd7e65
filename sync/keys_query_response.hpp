// What devlistd takes from a /keys/query response, as owned values (parser: sync/parse_keys).
//
// Every signed object keeps its bytes exactly as received (raw_json): signatures are verified
// over the canonical form of those bytes, never over anything rebuilt from the fields below,
// so unknown fields stay covered by the signature.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace devlist::sync {

struct signature_entry {
    std::string signer;     // the user ID under "signatures"
    std::string key_id;     // e.g. "ed25519:DEVICEID"
    std::string signature;  // unpadded base64, not yet decoded
};

struct queried_device {
    std::string user_id;    // the map key in device_keys
    std::string device_id;  // the map key under the user
    std::string raw_json;
    // Fields read from raw_json; empty when missing (verification then rejects the device).
    std::string claimed_user_id;
    std::string claimed_device_id;
    std::vector<std::string> algorithms;
    std::string ed25519;     // keys["ed25519:<device_id>"]
    std::string curve25519;  // keys["curve25519:<device_id>"]
    std::vector<signature_entry> signatures;
    std::optional<std::string> display_name;  // unsigned.device_display_name
    // Set when the object's shape is wrong (not an object, a field of the wrong type…).
    std::optional<std::string> problem;
};

struct queried_cross_signing_key {
    std::string user_id;  // the map key
    std::string raw_json;
    std::string claimed_user_id;
    std::vector<std::string> usage;
    // keys: "ed25519:<pub>" -> "<pub>"; valid keys have exactly one entry.
    std::vector<std::pair<std::string, std::string>> keys;
    std::vector<signature_entry> signatures;
    std::optional<std::string> problem;
};

struct keys_query_response {
    // Users that appear under device_keys (even with no device): the answer covers them.
    std::vector<std::string> users;
    std::vector<queried_device> devices;
    // Servers that could not be reached, with their failure object as received.
    std::map<std::string, std::string, std::less<>> failures;
    std::vector<queried_cross_signing_key> master_keys;
    std::vector<queried_cross_signing_key> self_signing_keys;
    std::vector<queried_cross_signing_key> user_signing_keys;
    // Entries that could not be used at all (invalid user ID as map key, …).
    std::size_t dropped = 0;
    std::vector<std::string> drop_reasons;
};

struct keys_changes_response {
    std::vector<std::string> changed;
    std::vector<std::string> left;
};

}  // namespace devlist::sync
