// Base64 as Matrix uses it (spec appendix "Unpadded Base64"): the RFC 4648 standard and URL-safe
// alphabets, written without '=' padding.
//
// Decoding is lenient where the spec asks for it and strict elsewhere:
//  - padded and unpadded input are both accepted (the spec: decoders SHOULD accept both);
//  - non-zero unused bits in the last character are accepted (the spec's own test seed has
//    them, and every Python/libolm decoder ignores them);
//  - anything else is refused with errc::base64_invalid and the position of the fault:
//    characters outside the alphabet (including whitespace and the other alphabet's 62/63),
//    '=' anywhere but as the correct padding of the last group, and lengths that cannot come
//    from an encoder (length % 4 == 1).
//
// All functions are pure and thread-safe.
#pragma once

#include <devlist/error.hpp>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace devlist::crypto {

std::string base64_encode(std::span<const std::uint8_t> bytes);
std::string base64url_encode(std::span<const std::uint8_t> bytes);

result<std::vector<std::uint8_t>> base64_decode(std::string_view text);
result<std::vector<std::uint8_t>> base64url_decode(std::string_view text);

// Decodes text into exactly out.size() bytes without allocating (keys, signatures, nonces);
// input that decodes to another length is errc::base64_invalid. On error out is unspecified.
result<void> base64_decode_into(std::string_view text, std::span<std::uint8_t> out);
result<void> base64url_decode_into(std::string_view text, std::span<std::uint8_t> out);

// The unpadded encoded length of n bytes.
constexpr std::size_t base64_encoded_size(std::size_t n) noexcept {
    return (n * 4 + 2) / 3;
}

}  // namespace devlist::crypto
