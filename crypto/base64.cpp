#include "crypto/base64.hpp"

#include "crypto/describe_byte.hpp"

#include <array>

namespace devlist::crypto {
namespace {

constexpr std::uint8_t invalid = 0xff;

struct alphabet {
    std::array<char, 64> encode{};
    std::array<std::uint8_t, 256> decode{};
    const char* name = "";
};

constexpr alphabet make_alphabet(char c62, char c63, const char* name) {
    alphabet a;
    constexpr std::string_view first62 =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for (std::size_t i = 0; i < first62.size(); ++i)
        a.encode[i] = first62[i];
    a.encode[62] = c62;
    a.encode[63] = c63;
    for (auto& d : a.decode)
        d = invalid;
    for (std::size_t i = 0; i < 64; ++i) {
        a.decode[static_cast<unsigned char>(a.encode[i])] = static_cast<std::uint8_t>(i);
    }
    a.name = name;
    return a;
}

constexpr alphabet standard = make_alphabet('+', '/', "base64");
constexpr alphabet url_safe = make_alphabet('-', '_', "URL-safe base64");

std::string encode(std::span<const std::uint8_t> in, const alphabet& a) {
    std::string out(base64_encoded_size(in.size()), '\0');
    const auto& e = a.encode;
    std::size_t i = 0;
    std::size_t o = 0;
    for (; i + 3 <= in.size(); i += 3, o += 4) {
        const std::uint32_t v =
            std::uint32_t{in[i]} << 16 | std::uint32_t{in[i + 1]} << 8 | in[i + 2];
        out[o] = e[v >> 18];
        out[o + 1] = e[(v >> 12) & 63];
        out[o + 2] = e[(v >> 6) & 63];
        out[o + 3] = e[v & 63];
    }
    const std::size_t rest = in.size() - i;
    if (rest > 0) {
        const std::uint32_t v =
            std::uint32_t{in[i]} << 16 | (rest == 2 ? std::uint32_t{in[i + 1]} << 8 : 0u);
        out[o] = e[v >> 18];
        out[o + 1] = e[(v >> 12) & 63];
        if (rest == 2) out[o + 2] = e[(v >> 6) & 63];
    }
    return out;
}

error invalid_char(std::string_view text, std::size_t pos, const alphabet& a) {
    if (text[pos] == '=') {
        return {errc::base64_invalid, "invalid " + std::string(a.name) +
                                          ": padding '=' at position " + std::to_string(pos) +
                                          " before the end"};
    }
    return {errc::base64_invalid, "invalid " + std::string(a.name) + ": " +
                                      describe_byte(text[pos]) + " at position " +
                                      std::to_string(pos) + " is not in the alphabet"};
}

// The characters that carry data (padding removed) or the reason the padding is wrong.
result<std::string_view> strip_padding(std::string_view text, const alphabet& a) {
    std::size_t pad = 0;
    while (pad < text.size() && pad < 3 && text[text.size() - 1 - pad] == '=')
        ++pad;
    const std::string_view body = text.substr(0, text.size() - pad);
    if (pad > 0) {
        // Padding must complete the last group: "xx==" or "xxx=".
        const bool complete = text.size() % 4 == 0 && pad <= 2 && body.size() % 4 == 4 - pad;
        if (!complete) {
            return error{errc::base64_invalid, "invalid " + std::string(a.name) +
                                                   ": padding at position " +
                                                   std::to_string(body.size()) +
                                                   " does not complete a 4-character group"};
        }
    }
    if (body.size() % 4 == 1) {
        return error{errc::base64_invalid,
                     "invalid " + std::string(a.name) + ": length " + std::to_string(body.size()) +
                         " leaves a lone character at position " + std::to_string(body.size() - 1)};
    }
    return body;
}

constexpr std::size_t decoded_size(std::size_t body_size) noexcept {
    return body_size / 4 * 3 + (body_size % 4 == 0 ? 0 : body_size % 4 - 1);
}

// Decodes a body checked by strip_padding into out (exactly decoded_size(body.size()) bytes).
// Unused low bits of the last character are ignored on purpose (see the header).
result<void> decode_body(std::string_view body, std::uint8_t* out, const alphabet& a) {
    const auto& d = a.decode;
    const auto at = [&](std::size_t i) { return d[static_cast<unsigned char>(body[i])]; };
    std::size_t i = 0;
    for (; i + 4 <= body.size(); i += 4, out += 3) {
        const std::uint32_t c0 = at(i), c1 = at(i + 1), c2 = at(i + 2), c3 = at(i + 3);
        if (((c0 | c1 | c2 | c3) & 0x80) != 0) {
            while (at(i) != invalid)
                ++i;
            return invalid_char(body, i, a);
        }
        const std::uint32_t v = c0 << 18 | c1 << 12 | c2 << 6 | c3;
        out[0] = static_cast<std::uint8_t>(v >> 16);
        out[1] = static_cast<std::uint8_t>(v >> 8);
        out[2] = static_cast<std::uint8_t>(v);
    }
    const std::size_t rest = body.size() - i;
    if (rest == 0) return {};
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < rest; ++k) {
        const std::uint32_t c = at(i + k);
        if (c == invalid) return invalid_char(body, i + k, a);
        v |= c << (18 - 6 * k);
    }
    out[0] = static_cast<std::uint8_t>(v >> 16);
    if (rest == 3) out[1] = static_cast<std::uint8_t>(v >> 8);
    return {};
}

result<std::vector<std::uint8_t>> decode(std::string_view text, const alphabet& a) {
    auto body = strip_padding(text, a);
    if (!body) return body.error();
    std::vector<std::uint8_t> out(decoded_size(body->size()));
    if (auto r = decode_body(*body, out.data(), a); !r) return r.error();
    return out;
}

result<void> decode_into(std::string_view text, std::span<std::uint8_t> out, const alphabet& a) {
    auto body = strip_padding(text, a);
    if (!body) return body.error();
    const std::size_t size = decoded_size(body->size());
    if (size != out.size()) {
        return error{errc::base64_invalid, "invalid " + std::string(a.name) + ": expected " +
                                               std::to_string(out.size()) + " bytes, got " +
                                               std::to_string(size) + " (" +
                                               std::to_string(text.size()) + " characters)"};
    }
    return decode_body(*body, out.data(), a);
}

}  // namespace

std::string base64_encode(std::span<const std::uint8_t> bytes) {
    return encode(bytes, standard);
}
std::string base64url_encode(std::span<const std::uint8_t> bytes) {
    return encode(bytes, url_safe);
}

result<std::vector<std::uint8_t>> base64_decode(std::string_view text) {
    return decode(text, standard);
}
result<std::vector<std::uint8_t>> base64url_decode(std::string_view text) {
    return decode(text, url_safe);
}

result<void> base64_decode_into(std::string_view text, std::span<std::uint8_t> out) {
    return decode_into(text, out, standard);
}
result<void> base64url_decode_into(std::string_view text, std::span<std::uint8_t> out) {
    return decode_into(text, out, url_safe);
}

}  // namespace devlist::crypto
