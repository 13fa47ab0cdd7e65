// Signing and verifying JSON objects the Matrix way (spec appendix "Signing JSON"): an Ed25519
// signature over the canonical JSON of the object without its "signatures" and "unsigned"
// members, stored as unpadded base64 at signatures[entity][key_id].
//
// Verification always works on the object as received: the raw text is canonicalised, so
// members this program does not know are covered too.
//
// Thread-safety: pure functions; concurrent calls are safe (with distinct scratch strings).
#pragma once

#include "crypto/ed25519.hpp"
#include "crypto/json_value.hpp"

#include <devlist/error.hpp>

#include <string>
#include <string_view>

namespace devlist::crypto {

// The canonical JSON of raw_object with the signature added at signatures[entity][key_id]
// (other signatures kept, "unsigned" kept). Errors: json_* for malformed input, json_type if it
// is not an object or its "signatures" (or signatures[entity]) is not an object.
result<std::string> sign_json(std::string_view raw_object, std::string_view entity,
                              std::string_view key_id, const ed25519_key_pair& key);

// The same, in place. object must be an object; a "signatures" member (or signatures[entity])
// that is not an object is replaced.
void sign_json(json::value& object, std::string_view entity, std::string_view key_id,
               const ed25519_key_pair& key);

// Checks the signature at signatures[entity][key_id] of raw_object with key.
// Errors: json_* if raw_object is malformed (json_type if it is not an object);
// signature_missing if there is no such signature (or "signatures" or its entry for entity is
// not an object); signature_invalid if it is not a string, not base64 of 64 bytes, or does not
// verify.
result<void> verify_json(std::string_view raw_object, std::string_view entity,
                         std::string_view key_id, const ed25519_public_key& key);

// Checks signature_base64 against the canonical form of raw_object without "signatures" and
// "unsigned", for callers that have already found the signature (the /keys/query hot path).
// scratch, if given, is the canonicalisation buffer: reuse one per thread to avoid allocation.
// Errors: signature_invalid, or json_* if raw_object is malformed.
result<void> verify_json_signature(std::string_view raw_object, std::string_view signature_base64,
                                   const ed25519_public_key& key, std::string* scratch = nullptr);

}  // namespace devlist::crypto
