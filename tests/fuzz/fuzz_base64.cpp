// libFuzzer target: base64 and URL-safe base64, the decoders every key and signature from the
// network goes through. Checks, besides memory safety:
//  - the input decodes (padded or not) the same through every entry point, and
//    encode(decode(x)) gives x back, unpadded, with only the unused low bits of the last
//    character cleared (they are ignored on purpose: see crypto/base64.hpp);
//  - the input taken as bytes survives encode → decode, both unpadded and padded.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "crypto/base64.hpp"

namespace {

using devlist::result;
using bytes = std::vector<std::uint8_t>;
using decode_fn = result<bytes> (*)(std::string_view);
using decode_into_fn = result<void> (*)(std::string_view, std::span<std::uint8_t>);
using encode_fn = std::string (*)(std::span<const std::uint8_t>);

void check(bool ok) {
    if (!ok) std::abort();
}

// The 6-bit value of an encoded character (the input decoded, so it is in the alphabet).
unsigned sextet(char c) {
    if (c >= 'A' && c <= 'Z') return static_cast<unsigned>(c - 'A');
    if (c >= 'a' && c <= 'z') return static_cast<unsigned>(c - 'a') + 26;
    if (c >= '0' && c <= '9') return static_cast<unsigned>(c - '0') + 52;
    return (c == '+' || c == '-') ? 62 : 63;
}

void check_text(std::string_view text, decode_fn decode, decode_into_fn decode_into,
                encode_fn encode) {
    auto decoded = decode(text);
    // decode_into agrees with decode, and refuses any other length.
    if (decoded) {
        bytes exact(decoded->size());
        check(decode_into(text, exact).has_value() && exact == *decoded);
        bytes longer(decoded->size() + 1);
        check(!decode_into(text, longer));
        if (!decoded->empty()) {
            bytes shorter(decoded->size() - 1);
            check(!decode_into(text, shorter));
        }
    } else {
        bytes out(text.size());
        check(!decode_into(text, std::span<std::uint8_t>(out.data(), text.size() / 4 * 3)));
        check(decoded.error() == devlist::errc::base64_invalid);
        return;
    }

    std::string_view body = text;
    while (!body.empty() && body.back() == '=')
        body.remove_suffix(1);
    const std::string again = encode(*decoded);
    check(again.size() == body.size());
    if (body.empty()) return;
    check(again.substr(0, body.size() - 1) == body.substr(0, body.size() - 1));
    // The last character of a partial group carries 4 (one byte) or 2 (two bytes) unused bits.
    const unsigned unused_mask = body.size() % 4 == 2 ? 0x0f : body.size() % 4 == 3 ? 0x03 : 0;
    check(sextet(again.back()) == (sextet(body.back()) & ~unused_mask));
    auto round = decode(again);
    check(round && *round == *decoded);
}

void check_bytes(std::span<const std::uint8_t> data, decode_fn decode, encode_fn encode) {
    std::string text = encode(data);
    check(text.size() == devlist::crypto::base64_encoded_size(data.size()));
    auto back = decode(text);
    check(back && std::equal(back->begin(), back->end(), data.begin(), data.end()));
    while (text.size() % 4 != 0)
        text.push_back('=');
    auto padded = decode(text);
    check(padded && *padded == *back);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    namespace c = devlist::crypto;
    std::string_view text(reinterpret_cast<const char*>(data), size);
    check_text(text, c::base64_decode, c::base64_decode_into, c::base64_encode);
    check_text(text, c::base64url_decode, c::base64url_decode_into, c::base64url_encode);
    std::span<const std::uint8_t> raw(data, size);
    check_bytes(raw, c::base64_decode, c::base64_encode);
    check_bytes(raw, c::base64url_decode, c::base64url_encode);
    return 0;
}
