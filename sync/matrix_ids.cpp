#include "sync/matrix_ids.hpp"

#include <cstddef>

namespace devlist::sync {
namespace {

bool is_printable_ascii(char c) {
    return c >= 0x21 && c <= 0x7e;
}
bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool is_valid_port(std::string_view port) {
    if (port.empty() || port.size() > 5) return false;
    unsigned value = 0;
    for (char c : port) {
        if (!is_digit(c)) return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    return value >= 1 && value <= 65535;
}

// dns-name = 1*255 dns-char, dns-char = DIGIT / ALPHA / "-" / "." (the spec's grammar; IPv4
// literals are a subset of it).
bool is_valid_dns_name(std::string_view host) {
    if (host.empty() || host.size() > 255) return false;
    for (char c : host) {
        if (!is_alnum(c) && c != '-' && c != '.') return false;
    }
    return true;
}

// IPv6 literal between brackets: hex digits, ':' and '.', 2..45 characters.
bool is_valid_ipv6_literal(std::string_view inside) {
    if (inside.size() < 2 || inside.size() > 45) return false;
    for (char c : inside) {
        bool hex = is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != ':' && c != '.') return false;
    }
    return true;
}

}  // namespace

bool is_valid_server_name(std::string_view name) {
    if (name.empty()) return false;
    std::string_view host = name;
    std::string_view port;
    if (name.front() == '[') {
        auto close = name.find(']');
        if (close == std::string_view::npos) return false;
        if (!is_valid_ipv6_literal(name.substr(1, close - 1))) return false;
        std::string_view rest = name.substr(close + 1);
        if (rest.empty()) return true;
        if (rest.front() != ':') return false;
        return is_valid_port(rest.substr(1));
    }
    if (auto colon = name.rfind(':'); colon != std::string_view::npos) {
        host = name.substr(0, colon);
        port = name.substr(colon + 1);
        if (!is_valid_port(port)) return false;
    }
    return is_valid_dns_name(host);
}

bool is_valid_user_id(std::string_view user_id) {
    if (user_id.size() < 4 || user_id.size() > max_user_id_bytes) return false;
    if (user_id.front() != '@') return false;
    auto colon = user_id.find(':');
    if (colon == std::string_view::npos || colon == 1) return false;
    for (char c : user_id.substr(1, colon - 1)) {
        if (!is_printable_ascii(c)) return false;
    }
    return is_valid_server_name(user_id.substr(colon + 1));
}

bool is_valid_device_id(std::string_view device_id) {
    if (device_id.empty() || device_id.size() > max_device_id_bytes) return false;
    for (char c : device_id) {
        if (!is_printable_ascii(c)) return false;
    }
    return true;
}

bool is_valid_room_id(std::string_view room_id) {
    if (room_id.size() < 2 || room_id.size() > 255 || room_id.front() != '!') return false;
    for (char c : room_id) {
        if (!is_printable_ascii(c)) return false;
    }
    return true;
}

std::optional<std::string_view> server_name_of(std::string_view user_id) {
    if (!is_valid_user_id(user_id)) return std::nullopt;
    return user_id.substr(user_id.find(':') + 1);
}

}  // namespace devlist::sync
