// How error details name a byte found where it does not belong.
#pragma once

#include <string>

namespace devlist::crypto {

// "0x0a".
std::string hex_byte(unsigned char byte);
// "'x'" for printable ASCII, "whitespace (0x0a)" for ASCII whitespace, else "byte 0xc3".
std::string describe_byte(char c);

}  // namespace devlist::crypto
