// The digest of one user's part of a /keys/query answer, over its bytes as received.
//
// A user's part is the user's entries under device_keys, master_keys, self_signing_keys and
// user_signing_keys. The store keeps the digest of a part whose every device and key was
// accepted; a later part with the same digest repeats, byte for byte, what was verified and
// stored then, so it needs neither a parse nor a verification.
//
// SHA-256, from OpenSSL's libcrypto: a homeserver must not be able to build a second part with
// the digest of one it sent before. (libcrypto uses the CPU's SHA instructions where there are
// some: about 10 ms of CPU for a 13 MB answer on the development machine, against 22 ms for
// libsodium's BLAKE2b.)
//
// Not thread-safe: one digester per thread.
#pragma once

#include <array>
#include <memory>
#include <optional>
#include <string_view>

#include "storage/query_result.hpp"

namespace devlist::sync {

// A user's part, as spans of the answer's bytes; nullopt where the answer has no such entry.
struct user_part_bytes {
    std::string_view user_id;
    std::optional<std::string_view> device_keys;
    std::optional<std::string_view> master;
    std::optional<std::string_view> self_signing;
    std::optional<std::string_view> user_signing;
};

class answer_digester {
  public:
    answer_digester();
    ~answer_digester();
    answer_digester(const answer_digester&) = delete;
    answer_digester& operator=(const answer_digester&) = delete;

    // The digest of `part`, or nullopt when libcrypto fails (out of memory): the part then
    // simply goes the full way.
    std::optional<storage::answer_digest> digest(const user_part_bytes& part);

  private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace devlist::sync
