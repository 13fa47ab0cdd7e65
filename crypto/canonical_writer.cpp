#include "crypto/canonical_writer.hpp"

#include <array>
#include <charconv>
#include <cstring>

namespace devlist::json {
namespace {

// For each byte: 0 if it is written as is, else the character after the backslash.
constexpr std::array<char, 256> make_escapes() {
    std::array<char, 256> t{};
    for (std::size_t c = 0; c < 0x20; ++c)
        t[c] = 'u';
    t['\b'] = 'b';
    t['\t'] = 't';
    t['\n'] = 'n';
    t['\f'] = 'f';
    t['\r'] = 'r';
    t['"'] = '"';
    t['\\'] = '\\';
    return t;
}
constexpr std::array<char, 256> escapes = make_escapes();

constexpr std::size_t written_size(char escape) {
    return escape == 0 ? 1 : escape == 'u' ? 6 : 2;
}

}  // namespace

std::size_t canonical_string_size(std::string_view s) noexcept {
    std::size_t size = 2;
    for (const char c : s)
        size += written_size(escapes[static_cast<unsigned char>(c)]);
    return size;
}

char* write_canonical_string(std::string_view s, char* out) noexcept {
    *out++ = '"';
    const char* run = s.data();
    const char* const end = s.data() + s.size();
    const auto flush = [&](const char* to) {
        if (to == run) return;
        std::memcpy(out, run, static_cast<std::size_t>(to - run));
        out += to - run;
    };
    for (const char* p = run; p != end; ++p) {
        const auto byte = static_cast<unsigned char>(*p);
        const char e = escapes[byte];
        if (e == 0) continue;
        flush(p);
        *out++ = '\\';
        *out++ = e;
        if (e == 'u') {
            constexpr std::string_view hex = "0123456789abcdef";
            *out++ = '0';
            *out++ = '0';
            *out++ = hex[byte >> 4];
            *out++ = hex[byte & 0xf];
        }
        run = p + 1;
    }
    flush(end);
    *out++ = '"';
    return out;
}

void append_canonical_string(std::string_view s, std::string& out) {
    const std::size_t old_size = out.size();
    out.resize(old_size + canonical_string_size(s));
    write_canonical_string(s, out.data() + old_size);
}

char* write_canonical_integer(std::int64_t v, char* out) noexcept {
    return std::to_chars(out, out + max_canonical_integer_size, v).ptr;
}

void append_canonical_integer(std::int64_t v, std::string& out) {
    char buf[max_canonical_integer_size];
    out.append(buf, write_canonical_integer(v, buf));
}

}  // namespace devlist::json
