// An owned byte buffer for secret material (private keys, seeds, decrypted plaintext).
//
// The bytes are wiped with sodium_memzero when the buffer is destroyed or assigned over. A move
// hands the bytes over and leaves the source empty, so no copy of the secret stays behind.
// Copies are explicit (clone()) so that secrets are never duplicated by accident.
//
// Thread-safety: like std::vector — concurrent const access is safe, mutation is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

namespace devlist::crypto {

class secure_bytes {
  public:
    secure_bytes() noexcept = default;
    // n zero bytes.
    explicit secure_bytes(std::size_t n);
    // A copy of bytes.
    explicit secure_bytes(std::span<const std::uint8_t> bytes);

    secure_bytes(secure_bytes&& other) noexcept;
    secure_bytes& operator=(secure_bytes&& other) noexcept;
    secure_bytes(const secure_bytes&) = delete;
    secure_bytes& operator=(const secure_bytes&) = delete;
    ~secure_bytes();

    // n bytes from the operating system's random generator (libsodium's randombytes).
    static secure_bytes random(std::size_t n);

    secure_bytes clone() const { return secure_bytes(span()); }

    std::uint8_t* data() noexcept { return data_.get(); }
    const std::uint8_t* data() const noexcept { return data_.get(); }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    std::span<const std::uint8_t> span() const noexcept { return {data_.get(), size_}; }
    std::span<std::uint8_t> writable_span() noexcept { return {data_.get(), size_}; }

  private:
    void wipe() noexcept;

    std::unique_ptr<std::uint8_t[]> data_;
    std::size_t size_ = 0;
};

}  // namespace devlist::crypto
