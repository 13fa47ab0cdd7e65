// The own device's keys: identity, one-time, fallback and cross-signing keys made, signed and
// sealed for the store, opened again from it, and the request bodies that publish them.
//
// Pure functions over crypto/ and storage records: no I/O, no clock (callers pass `now`).
// Every signed object is built once, as canonical JSON, and stored byte for byte, so a retried
// upload sends exactly the same bytes.
#pragma once

#include "crypto/curve25519.hpp"
#include "crypto/ed25519.hpp"
#include "crypto/seal.hpp"
#include "devlist/error.hpp"
#include "storage/records.hpp"

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::sync {

// Associated data of each sealed private key, followed by its public key (base64): a blob
// moved to another row or another kind of key does not open.
namespace seal_context {
inline constexpr std::string_view identity_ed25519 = "identity-ed25519:";
inline constexpr std::string_view identity_curve25519 = "identity-curve25519:";
inline constexpr std::string_view one_time_key = "otk:";
inline constexpr std::string_view fallback_key = "fallback:";
inline constexpr std::string_view cross_signing = "cross-signing:";  // then usage, ':', key
}  // namespace seal_context

// The Olm algorithms devlistd announces for its device.
inline constexpr std::string_view olm_algorithm = "m.olm.v1.curve25519-aes-sha2";
inline constexpr std::string_view megolm_algorithm = "m.megolm.v1.aes-sha2";
inline constexpr std::string_view signed_curve25519 = "signed_curve25519";

// "master", "self_signing", "user_signing": the names the spec gives the usages.
std::string_view usage_name(storage::key_usage usage);

// The own device identity with its private halves, in memory.
struct device_identity_keys {
    std::string user_id;
    std::string device_id;
    crypto::ed25519_key_pair signing;
    crypto::curve25519_key_pair exchange;
};

// New identity keys: the record to store (private parts sealed) and the keys themselves.
struct new_identity {
    storage::account_identity record;
    device_identity_keys keys;
};
new_identity create_identity(std::string user_id, std::string device_id,
                             const crypto::sealing_key& sealing, storage::timestamp_ms now);

// Opens a stored identity. errc::seal_open_failed (the sealing key is not the one the identity
// was sealed with) or key_invalid, with a message that says so.
result<device_identity_keys> open_identity(const storage::account_identity& record,
                                           const crypto::sealing_key& sealing);

// The signed device_keys object for /keys/upload, as canonical JSON.
std::string signed_device_keys(const device_identity_keys& identity);

// A one-time or fallback key: a fresh Curve25519 key pair, signed by the device (with
// "fallback": true for a fallback key), its secret sealed under `context` + public key.
storage::new_key make_signed_curve25519_key(const device_identity_keys& identity, bool fallback,
                                            const crypto::sealing_key& sealing);

// Key IDs as libolm makes them: the unpadded base64 of the counter as 4 (or, past 2^32, 8)
// big-endian bytes, e.g. 1 -> "AAAAAQ".
std::string format_key_id(std::int64_t counter);

// The body of a /keys/upload with these one-time keys ({"one_time_keys": {...}}) or this
// fallback key (stable and unstable field names, which servers treat alike).
std::string one_time_keys_upload_body(std::span<const storage::one_time_key> keys);
std::string fallback_key_upload_body(const storage::fallback_key& key);
std::string device_keys_upload_body(std::string_view signed_device_keys);

// New cross-signing keys for the own user: master (also signed by the device), self-signing
// and user-signing (signed by the master key), secrets sealed, all pending.
std::vector<storage::own_cross_signing_key> create_cross_signing_keys(
    const device_identity_keys& identity, const crypto::sealing_key& sealing,
    storage::timestamp_ms now);

// The /keys/device_signing/upload body for the stored keys, without "auth".
std::string cross_signing_upload_body(std::span<const storage::own_cross_signing_key> keys);

// The /keys/signatures/upload body that signs the own device with the self-signing key.
// errc::seal_open_failed or key_invalid if the self-signing key cannot be opened.
result<std::string> device_signature_upload_body(const device_identity_keys& identity,
                                                 const storage::own_cross_signing_key& self_signing,
                                                 const crypto::sealing_key& sealing);

std::string seal_context_of(const storage::own_cross_signing_key& key);

}  // namespace devlist::sync
