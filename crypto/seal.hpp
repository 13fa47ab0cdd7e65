// Sealing of private keys at rest (XChaCha20-Poly1305-IETF from libsodium).
//
// A sealed blob is: version byte (1) || 24-byte random nonce || ciphertext and tag. The version
// byte and a caller-chosen context string (e.g. "otk:AAAAAQ") are authenticated as associated
// data, so a blob copied into another row, or under another context, does not open.
//
// The sealing key lives in a file outside the database: either exactly 32 raw bytes, or their
// base64 (padded or not) with an optional trailing newline.
//
// Thread-safety: a sealing_key is immutable; seal() and open() may be called concurrently.
#pragma once

#include "crypto/secure_bytes.hpp"

#include <devlist/error.hpp>

#include <cstdint>
#include <filesystem>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace devlist::crypto {

class sealing_key {
  public:
    static constexpr std::size_t key_size = 32;
    static constexpr std::uint8_t blob_version = 1;

    // errc::seal_key_invalid, naming the file, if it cannot be read or holds anything but a key.
    static result<sealing_key> load_file(const std::filesystem::path& path);
    // errc::seal_key_invalid unless key is 32 bytes.
    static result<sealing_key> from_bytes(std::span<const std::uint8_t> key);
    static sealing_key generate();

    // Creates path (which must not exist) with mode 0600 and writes the key's base64 and a
    // newline, synced to disk. errc::io_error if the file exists or cannot be written; a file
    // left half-written is removed.
    result<void> write_new_file(const std::filesystem::path& path) const;

    std::vector<std::uint8_t> seal(std::span<const std::uint8_t> plaintext,
                                   std::string_view context) const;
    // errc::seal_open_failed for a wrong key, a wrong context, or a truncated, tampered or
    // unknown-version blob. Never returns unauthenticated bytes.
    result<secure_bytes> open(std::span<const std::uint8_t> sealed, std::string_view context) const;

  private:
    explicit sealing_key(secure_bytes key) : key_(std::move(key)) {}

    secure_bytes key_;
};

}  // namespace devlist::crypto
