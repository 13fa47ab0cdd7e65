#include "crypto/secure_bytes.hpp"

#include "crypto/sodium_init.hpp"

#include <sodium.h>

#include <algorithm>
#include <utility>

namespace devlist::crypto {

secure_bytes::secure_bytes(std::size_t n)
    : data_(n == 0 ? nullptr : std::make_unique<std::uint8_t[]>(n)), size_(n) {}

secure_bytes::secure_bytes(std::span<const std::uint8_t> bytes) : secure_bytes(bytes.size()) {
    std::copy(bytes.begin(), bytes.end(), data_.get());
}

secure_bytes secure_bytes::random(std::size_t n) {
    ensure_sodium_initialized();
    secure_bytes bytes(n);
    if (n != 0) randombytes_buf(bytes.data(), n);
    return bytes;
}

secure_bytes::secure_bytes(secure_bytes&& other) noexcept
    : data_(std::move(other.data_)), size_(std::exchange(other.size_, 0)) {}

secure_bytes& secure_bytes::operator=(secure_bytes&& other) noexcept {
    if (this != &other) {
        wipe();
        data_ = std::move(other.data_);
        size_ = std::exchange(other.size_, 0);
    }
    return *this;
}

secure_bytes::~secure_bytes() {
    wipe();
}

void secure_bytes::wipe() noexcept {
    if (data_) sodium_memzero(data_.get(), size_);
}

}  // namespace devlist::crypto
