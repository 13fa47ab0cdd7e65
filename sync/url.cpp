#include "sync/url.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <optional>

namespace devlist::sync {
namespace {

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex_digit(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_unreserved(char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_' || c == '~';
}
bool is_sub_delim(char c) {
    return c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
           c == '+' || c == ',' || c == ';' || c == '=';
}
constexpr char hex_digits[] = "0123456789ABCDEF";

char to_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = to_lower(c);
    return out;
}

error bad_url(std::string detail) {
    return {errc::invalid_argument, std::move(detail)};
}

// A printable form of one offending character for error messages.
std::string quoted(char c) {
    if (c >= 0x20 && c <= 0x7e) return std::string{'\'', c, '\''};
    const auto byte = static_cast<unsigned char>(c);
    return std::string{"byte 0x"} + hex_digits[byte >> 4] + hex_digits[byte & 0xf];
}

// `host` is a reg-name, or an IPv6 literal with both its brackets.
result<std::string> parse_host(std::string_view host) {
    if (host.empty()) return bad_url("URL has no host");
    if (host.front() == '[') {
        const std::string literal(host.substr(1, host.size() - 2));
        in6_addr address{};
        if (inet_pton(AF_INET6, literal.c_str(), &address) != 1) {
            return bad_url("URL host '" + std::string(host) + "' is not an IPv6 address");
        }
        return lower(literal);
    }
    for (const char c : host) {
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_') {
            return bad_url("invalid character " + quoted(c) + " in URL host");
        }
    }
    return lower(host);
}

result<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const auto* const end = text.data() + text.size();
    const auto [stop, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc{} || stop != end || value == 0 || value > 65535) {
        return bad_url("URL port '" + std::string(text) + "' is not a number from 1 to 65535");
    }
    return static_cast<std::uint16_t>(value);
}

// RFC 3986 path characters: pchar and '/'; '%' must start a %XX escape.
result<std::string> parse_base_path(std::string_view path) {
    for (std::size_t i = 0; i < path.size(); ++i) {
        const char c = path[i];
        if (c == '%') {
            if (i + 2 >= path.size() || !is_hex_digit(path[i + 1]) || !is_hex_digit(path[i + 2])) {
                return bad_url("invalid %-escape in URL path");
            }
            i += 2;
        } else if (!is_unreserved(c) && !is_sub_delim(c) && c != ':' && c != '@' && c != '/') {
            return bad_url("invalid character " + quoted(c) + " in URL path");
        }
    }
    // "https://host/" and "https://host" mean the same; targets bring their own leading '/'.
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    return std::string(path);
}

std::string percent_encode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (const char c : text) {
        if (is_unreserved(c)) {
            out += c;
        } else {
            const auto byte = static_cast<unsigned char>(c);
            out += '%';
            out += hex_digits[byte >> 4];
            out += hex_digits[byte & 0xf];
        }
    }
    return out;
}

std::uint16_t default_port(std::string_view scheme) {
    return scheme == "https" ? 443 : 80;
}

std::string bracketed_host(const url& u) {
    return u.host.find(':') != std::string::npos ? "[" + u.host + "]" : u.host;
}

}  // namespace

result<url> parse_url(std::string_view text) {
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        // Not echoed: the text might be a credential pasted by mistake.
        return bad_url("URL has no scheme (expected https://...)");
    }
    url out;
    out.scheme = lower(text.substr(0, scheme_end));
    if (out.scheme != "http" && out.scheme != "https") {
        return bad_url("unsupported URL scheme '" + out.scheme + "' (expected http or https)");
    }
    std::string_view rest = text.substr(scheme_end + 3);

    if (const auto at = rest.find_first_of("?#"); at != std::string_view::npos) {
        return bad_url(rest[at] == '?' ? "a base URL must not have a query"
                                       : "a base URL must not have a fragment");
    }
    const auto authority_end = rest.find('/');
    const std::string_view authority = rest.substr(0, authority_end);
    const std::string_view path =
        authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
    if (authority.find('@') != std::string_view::npos) {
        return bad_url("user info in URLs is not supported (credentials belong in files)");
    }

    std::string_view host = authority;
    std::optional<std::string_view> port;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos) {
            return bad_url("URL host '" + std::string(authority) + "' lacks ']'");
        }
        host = authority.substr(0, close + 1);
        const auto after = authority.substr(close + 1);
        if (!after.empty() && after.front() != ':') {
            return bad_url("unexpected " + quoted(after.front()) + " after the URL's IPv6 address");
        }
        if (!after.empty()) port = after.substr(1);
    } else if (const auto colon = authority.find(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port->find(':') != std::string_view::npos) {
            return bad_url("URL host '" + std::string(authority) +
                           "' looks like an IPv6 address without brackets");
        }
    }

    auto parsed_host = parse_host(host);
    if (!parsed_host) return parsed_host.error();
    out.host = std::move(*parsed_host);

    if (port) {
        auto parsed_port = parse_port(*port);
        if (!parsed_port) return parsed_port.error();
        out.port = *parsed_port;
    } else {
        out.port = default_port(out.scheme);
    }

    auto parsed_path = parse_base_path(path);
    if (!parsed_path) return parsed_path.error();
    out.base_path = std::move(*parsed_path);
    return out;
}

std::string host_and_port(const url& u) {
    return bracketed_host(u) + ":" + std::to_string(u.port);
}

std::string host_header(const url& u) {
    return u.port == default_port(u.scheme) ? bracketed_host(u) : host_and_port(u);
}

std::string percent_encode_path_segment(std::string_view segment) {
    return percent_encode(segment);
}

std::string percent_encode_query_value(std::string_view value) {
    return percent_encode(value);
}

}  // namespace devlist::sync
