#include "crypto/describe_byte.hpp"

#include <string_view>

namespace devlist::crypto {

std::string hex_byte(unsigned char byte) {
    constexpr std::string_view digits = "0123456789abcdef";
    return {'0', 'x', digits[byte >> 4], digits[byte & 0xf]};
}

std::string describe_byte(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (u == ' ' || u == '\t' || u == '\n' || u == '\r' || u == '\f' || u == '\v') {
        return "whitespace (" + hex_byte(u) + ")";
    }
    if (u > 0x20 && u < 0x7f) return {'\'', c, '\''};
    return "byte " + hex_byte(u);
}

}  // namespace devlist::crypto
