// What devlistd takes from a /keys/query response (parser: sync/parse_keys).
//
// An answer is read in two steps. The first locates each user's part (its entries under
// device_keys, master_keys, self_signing_keys and user_signing_keys) and digests its bytes: a
// keys_query_answer. The second parses the parts whose digest differs from the stored one into
// owned values: a keys_query_response. A user whose part is byte-identical to the one whose
// verdicts are stored is neither parsed again nor verified again.
//
// Every signed object keeps its bytes exactly as received (raw_json): signatures are verified
// over the canonical form of those bytes, never over anything rebuilt from the fields below,
// so unknown fields stay covered by the signature.
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/query_result.hpp"

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

// A byte range of an answer's body.
struct answer_span {
    std::size_t offset = 0;
    std::size_t size = 0;
};

// A user's entry in one of the cross-signing maps.
struct cross_signing_entry {
    answer_span bytes;  // the object; empty when the entry is not an object
    bool is_object = false;
};

// One user's part of an answer, located and digested but not parsed.
struct user_section {
    std::string user_id;
    answer_span device_keys;  // the user's object of devices
    std::optional<cross_signing_entry> master;
    std::optional<cross_signing_entry> self_signing;
    std::optional<cross_signing_entry> user_signing;
    // Over all of the above as received; nullopt when the part can never be stored with one
    // (an entry that is not an object is refused) or the digest could not be made.
    std::optional<storage::answer_digest> digest;
};

// An answer after the first step. The body is checked as a whole (JSON, UTF-8, nesting, the
// maps' types and keys); what is inside a user's object of devices and inside a cross-signing
// key is parsed by the second step.
struct keys_query_answer {
    std::string body;
    // Users that appear under device_keys (even with no device): the answer covers them.
    std::vector<user_section> users;
    // Servers that could not be reached, with their failure object as received.
    std::map<std::string, std::string, std::less<>> failures;
    // Entries that could not be used at all (invalid user ID as map key, …).
    std::size_t dropped = 0;
    std::vector<std::string> drop_reasons;

    std::string_view bytes(answer_span s) const {
        return std::string_view(body).substr(s.offset, s.size);
    }
};

// User parts in owned values (all of an answer's, or the few the second step parsed).
struct keys_query_response {
    std::vector<std::string> users;
    // Parallel to users: the digest the part may be stored with once all of it is accepted;
    // nullopt when an entry of it was dropped (it then is never taken as verified before).
    std::vector<std::optional<storage::answer_digest>> digests;
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
